/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "buf.h"
#include "profile.h"
#include "vault.h"

/*
 * Encoders and decoders for the framed messages of protocol §3–4. Every decoder takes
 * one whole frame, checks the header before it looks at the body, and consumes the body
 * exactly. Errors:
 *   -EPROTONOSUPPORT  version other than 1
 *   -EMSGSIZE         declared body over SV_BODY_MAX
 *   -EPROTO           a message type not expected here
 *   -EBADMSG          anything else malformed: length, field value, trailing bytes
 */
struct wire_header {
        uint8_t version;
        uint8_t type;
        uint16_t length;
};

struct msg_hello {
        uint8_t profile;
        uint8_t id_len;
        char device_id[SV_ID_MAX + 1];
        uint8_t session_id[SV_SESSION_ID_LEN];
        uint64_t epoch;
        uint8_t kex;                            /* SV_KEX_*: whether share is on the wire (§10) */
        uint8_t share[SV_X25519_LEN];           /* share_dev, with SV_KEX_X25519 */
};

struct msg_challenge {
        uint8_t r1[SV_NONCE_LEN];
        struct challenge c1;
        uint8_t kex;                            /* SV_KEX_*: whether share is on the wire (§10) */
        uint8_t share[SV_X25519_LEN];           /* share_srv, with SV_KEX_X25519 */
};

/* The plaintext of M3. */
struct msg_response {
        uint8_t r1[SV_NONCE_LEN];
        uint8_t t1[SV_T_LEN];
        uint8_t r2[SV_NONCE_LEN];
        struct challenge c2;
};

/* The plaintext of M4. */
struct msg_confirm {
        uint8_t r2[SV_NONCE_LEN];
        uint8_t t2[SV_T_LEN];
};

/* Reads the 4-byte header of a frame that may still be incomplete (len >= 4). */
int wire_header_decode(const uint8_t *frame, size_t len, struct wire_header *ret);
/* The type of a frame whose header is valid, or a negative errno as above. */
int wire_frame_type(const uint8_t *frame, size_t len);
/* Checks a whole frame's header against what is expected; `body_len` 0 means any length. */
int wire_frame_check(const uint8_t *frame, size_t len, uint8_t type, size_t body_len);

/* M1 with or without the share, as m->kex says; the decoder sets kex from the body's length,
 * the one thing that tells the two apart (§10). */
int wire_encode_hello(const struct msg_hello *m, uint8_t *out, size_t cap, size_t *ret_len);
int wire_decode_hello(const uint8_t *frame, size_t len, struct msg_hello *ret);

int wire_encode_challenge(const struct msg_challenge *m, uint8_t *out, size_t cap, size_t *ret_len);
/* `v` is the receiver's vault: a challenge must fit its n, p and kex (and length, profile.h) exactly. */
int wire_decode_challenge(const uint8_t *frame, size_t len, const struct vault_params *v, struct msg_challenge *ret);

/* M3, M4, M5 carry one AEAD blob each; these frame it and check its exact size. */
int wire_encode_sealed(uint8_t type, const uint8_t *body, size_t body_len, uint8_t *out, size_t cap, size_t *ret_len);
int wire_decode_sealed(const uint8_t *frame, size_t len, uint8_t type, size_t body_len, const uint8_t **ret_body);

int wire_encode_response_pt(const struct msg_response *m, uint8_t *out, size_t cap, size_t *ret_len);
int wire_decode_response_pt(const uint8_t *pt, size_t len, uint16_t n, uint8_t p, struct msg_response *ret);
int wire_encode_confirm_pt(const struct msg_confirm *m, uint8_t *out, size_t cap, size_t *ret_len);
int wire_decode_confirm_pt(const uint8_t *pt, size_t len, struct msg_confirm *ret);

int wire_encode_error(uint8_t code, uint8_t *out, size_t cap, size_t *ret_len);
int wire_decode_error(const uint8_t *frame, size_t len, uint8_t *ret_code);
/* The ERROR code a receiver sends for a negative errno from a decoder or state machine. */
uint8_t wire_error_code(int err);
const char *wire_error_name(uint8_t code);

/* Challenges on their own (u8 p || u16 c1 .. cp), for the M2 body and the M3 plaintext. */
int wire_put_challenge(struct buf *b, const struct challenge *c);
int wire_get_challenge(struct buf *b, uint16_t n, uint8_t p, struct challenge *ret);
