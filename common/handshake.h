/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kex.h"
#include "proto.h"
#include "record.h"
#include "vault.h"
#include "wire.h"

/*
 * The two sides of the handshake (protocol §4–5) as pure code: each step takes the
 * received frame and returns the frame to send, or a negative errno. A step that fails
 * leaves its state machine exactly as it was; the caller ends the handshake. The session
 * key and the next vault exist only after the step that proves the peer.
 *
 * Randomness is injected so that test vectors drive the real code paths.
 */
enum hs_value {
        HS_SESSION_ID,
        HS_R1,
        HS_C1,
        HS_T1,
        HS_R2,
        HS_C2,
        HS_T2,
        HS_E_DEV,       /* revision 1.1 §10: the ephemeral X25519 scalars, as drawn */
        HS_E_SRV,
};

struct hs_random {
        int (*bytes)(void *userdata, enum hs_value what, uint8_t *out, size_t len);
        /* p indices below n, none in avoid (NULL for none). Checked again by the caller. */
        int (*challenge)(void *userdata, enum hs_value what, uint16_t n, uint8_t p,
                         const struct challenge *avoid, struct challenge *ret);
        void *userdata;
};

/* The OS CSPRNG. */
extern const struct hs_random hs_random_os;

/* The framed messages seen so far, as sent: the input of TH2..TH4 and the paper update. */
struct hs_transcript {
        uint8_t m1[SV_HELLO_FRAME_MAX];
        uint8_t m2[SV_CHALLENGE_FRAME_MAX];
        uint8_t m3[SV_RESPONSE_FRAME_MAX];
        uint8_t m4[SV_CONFIRM_FRAME_LEN];
        size_t m1_len, m2_len, m3_len, m4_len;
};

/* Intermediate values, recorded only when a test asks for them. */
struct hs_trace {
        uint8_t th2[SV_HASH_LEN], th3[SV_HASH_LEN], th4[SV_HASH_LEN];
        uint8_t x1[SV_KEY_MAX], x2[SV_KEY_MAX];
        uint8_t k3[SV_KEY_LEN], k4[SV_KEY_LEN], k5[SV_KEY_LEN];
        size_t k3_len, k4_len;
        uint8_t share_dev[SV_X25519_LEN], share_srv[SV_X25519_LEN], z[SV_X25519_LEN];   /* kex x25519 */
};

enum hs_device_state {
        HS_DEVICE_INIT,
        HS_DEVICE_HELLO_SENT,
        HS_DEVICE_RESPONSE_SENT,
        HS_DEVICE_DONE,
};

struct hs_device {
        enum hs_device_state state;
        struct vault_params params;
        const uint8_t *keys;            /* borrowed, n·m bytes */
        const struct hs_random *rng;
        struct hs_trace *trace;
        struct hs_transcript ts;
        struct challenge c1;
        struct kex kex;                 /* e_dev from M1 until Z is computed at M2 (kex x25519) */
        uint8_t z[SV_X25519_LEN];       /* from M2 until S is derived at M4 */
        uint8_t t1[SV_T_LEN];
        uint8_t r2[SV_NONCE_LEN];
        uint8_t k4[SV_KEY_LEN];
        size_t k4_len;
        uint8_t session_key[SV_KEY_LEN];
        uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN];    /* A_0 of each direction (§11) */
        uint8_t peer_error;             /* ERROR code the server sent, 0 if none */
};

void hs_device_init(struct hs_device *hs, const struct vault_params *params, const uint8_t *keys,
                    const struct hs_random *rng);
void hs_device_wipe(struct hs_device *hs);
/* M1. -EOVERFLOW if the vault's epoch cannot advance. */
int hs_device_hello(struct hs_device *hs, uint8_t *out, size_t cap, size_t *ret_len);
/* M2 -> M3. -ECONNREFUSED if the server sent ERROR (see peer_error); -EKEYREJECTED if the
 * server's share is a small-order point (§10: Z would be all zeros), which aborts the handshake. */
int hs_device_respond(struct hs_device *hs, const uint8_t *m2, size_t len,
                      uint8_t *out, size_t cap, size_t *ret_len);
/* M4 -> M5 and the next vault (n·m bytes into next_vault). -EACCES if the server failed to prove itself.
 * The caller makes next_vault durable before it sends M5. */
int hs_device_confirm(struct hs_device *hs, const uint8_t *m4, size_t len, uint8_t *next_vault,
                      uint8_t *out, size_t cap, size_t *ret_len);
/* NULL until hs_device_confirm() succeeded. */
const uint8_t *hs_device_session_key(const struct hs_device *hs);
/* Copies A_0 of both directions of the data channel (§11): the device seals with c2s and
 * opens with s2c. -EBUSY until hs_device_confirm() succeeded; nothing written then. */
int hs_device_channel_secrets(const struct hs_device *hs, uint8_t ret_c2s[RECORD_SECRET_LEN],
                              uint8_t ret_s2c[RECORD_SECRET_LEN]);

enum hs_server_state {
        HS_SERVER_INIT,
        HS_SERVER_HELLO_RECEIVED,
        HS_SERVER_CHALLENGE_SENT,
        HS_SERVER_CONFIRM_SENT,
        HS_SERVER_DONE,
};

struct hs_server {
        enum hs_server_state state;
        bool decoy;                     /* no device: M3 is refused (checked against keys if given) */
        uint16_t decoy_n;
        uint8_t decoy_p;
        struct msg_hello hello;
        struct vault_params params;
        const uint8_t *keys;            /* borrowed, n·m bytes; NULL for a decoy */
        const struct hs_random *rng;
        struct hs_trace *trace;
        struct hs_transcript ts;
        struct challenge c1;
        uint8_t z[SV_X25519_LEN];       /* kex x25519: from M2 until S is derived at M3 (e_srv never kept) */
        uint8_t r1[SV_NONCE_LEN];
        uint8_t k5[SV_KEY_LEN];
        uint8_t session_key[SV_KEY_LEN];
        uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN];    /* A_0 of each direction (§11) */
};

/* decoy_n and decoy_p shape the decoy challenge sent when no vault is given. */
void hs_server_init(struct hs_server *hs, const struct hs_random *rng, uint16_t decoy_n, uint8_t decoy_p);
void hs_server_wipe(struct hs_server *hs);
/* Parses M1; the caller looks the device up before calling hs_server_challenge(). */
int hs_server_hello(struct hs_server *hs, const uint8_t *m1, size_t len, struct msg_hello *ret);
/* M2 from the vault generation the caller chose (its params must match M1: id, profile,
 * epoch), or a decoy when params is NULL. Revision 1.1 §10: M2 carries a share exactly when
 * M1 does; if that is not the vault's kex, or M1's share is a small-order point, the M2 is a
 * decoy (well-formed, of M1's shape) and M3 is refused. */
int hs_server_challenge(struct hs_server *hs, const struct vault_params *params, const uint8_t *keys,
                        uint8_t *out, size_t cap, size_t *ret_len);
/* A decoy M2 of shape's profile (M1's), n, m and p, checked at M3 against keys, n·m bytes that
 * no device holds, with a device's work; the M3 is always refused. */
int hs_server_challenge_decoy(struct hs_server *hs, const struct vault_params *shape, const uint8_t *keys,
                              uint8_t *out, size_t cap, size_t *ret_len);
/* M3 -> M4 and the next vault. -EACCES for anything wrong inside M3 (and always for a decoy).
 * The caller makes next_vault durable before it sends M4. */
int hs_server_respond(struct hs_server *hs, const uint8_t *m3, size_t len, uint8_t *next_vault,
                      uint8_t *out, size_t cap, size_t *ret_len);
/* M5: the device proved it holds the next vault; the caller commits it. */
int hs_server_commit(struct hs_server *hs, const uint8_t *m5, size_t len);
const uint8_t *hs_server_session_key(const struct hs_server *hs);
/* Copies A_0 of both directions (§11): the server opens with c2s and seals with s2c. -EBUSY
 * until hs_server_commit() verified M5, so nothing is acted on before M5; nothing written then. */
int hs_server_channel_secrets(const struct hs_server *hs, uint8_t ret_c2s[RECORD_SECRET_LEN],
                              uint8_t ret_s2c[RECORD_SECRET_LEN]);

/* Shared by both sides (handshake.c). */
int hs_transcript_hash(const struct hs_transcript *ts, unsigned upto, uint8_t out[SV_HASH_LEN]);
int hs_next_vault(const struct vault_params *params, const uint8_t *keys, const struct hs_transcript *ts,
                  const uint8_t u[SV_KEY_LEN], uint8_t *next_vault);
int hs_draw_bytes(const struct hs_random *rng, enum hs_value what, uint8_t *out, size_t len);
int hs_draw_challenge(const struct hs_random *rng, enum hs_value what, uint16_t n, uint8_t p,
                      const struct challenge *avoid, struct challenge *ret);
