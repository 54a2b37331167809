/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared helpers of the Check unit suites: a TAP runner, a reproducible random
 * generator, an injectable hs_random that replays chosen values, and a driver that
 * walks a device and a server through one handshake, recording every frame.
 */

#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"

/* Runs the suite with TAP on stdout; the exit status of a test program. */
int unit_run(Suite *s);

/*
 * The seed of this run: $UNIT_SEED if set, else drawn once per run. unit_run() prints
 * it as a TAP comment, and unit_assert() puts it into every failure message, so that
 * `UNIT_SEED=<seed> ./check_x` replays a failing run.
 */
uint64_t unit_seed(void);

#define unit_assert(expr, fmt, ...) \
        ck_assert_msg(expr, "UNIT_SEED=%" PRIu64 ": " fmt, unit_seed(), ##__VA_ARGS__)

/* Counter-mode SHA-256 keyed by the run seed and a label, one stream per test. */
struct unit_rng {
        uint8_t key[32];
        uint64_t counter;
        uint8_t block[32];
        size_t pos;
};

void unit_rng_init(struct unit_rng *g, const char *label);
void unit_rng_bytes(struct unit_rng *g, void *out, size_t len);
/* Uniform in [0, bound), bound > 0. */
uint32_t unit_rng_below(struct unit_rng *g, uint32_t bound);
/* Uniform in [lo, hi]. */
uint32_t unit_rng_range(struct unit_rng *g, uint32_t lo, uint32_t hi);
/* Like challenge_generate(), but from g. */
int unit_rng_challenge(struct unit_rng *g, uint16_t n, uint8_t p, const struct challenge *avoid,
                       struct challenge *ret);

/*
 * An hs_random that returns the values a test set for each hs_value and draws the rest
 * from `gen` (or the OS CSPRNG when gen is NULL). Values are not checked here: the
 * state machines must check what they get. `fail[what]` < 0 makes that draw fail.
 */
#define UNIT_HS_VALUES (HS_E_SRV + 1)

struct unit_replay {
        bool have_bytes[UNIT_HS_VALUES];
        uint8_t bytes[UNIT_HS_VALUES][SV_T_LEN];
        size_t len[UNIT_HS_VALUES];
        bool have_challenge[UNIT_HS_VALUES];
        struct challenge chal[UNIT_HS_VALUES];
        int fail[UNIT_HS_VALUES];
        unsigned calls[UNIT_HS_VALUES];
        struct unit_rng *gen;
        struct hs_random rng;   /* points back at this struct */
};

void unit_replay_init(struct unit_replay *r, struct unit_rng *gen);
void unit_replay_bytes(struct unit_replay *r, enum hs_value what, const void *p, size_t len);
void unit_replay_challenge(struct unit_replay *r, enum hs_value what, const struct challenge *c);

/* Builds a challenge from a list, without checking it. */
struct challenge unit_challenge(unsigned p, const uint16_t *idx);

/* OpenSSL's own EVP_KDF "KBKDF", configured as protocol §1 says (counter mode, HMAC-SHA256,
 * the label as its salt, the context as its info): the reference for crypto_kbkdf(). */
void unit_kbkdf_openssl(const uint8_t *key, size_t key_len, const char *label, const void *context,
                        size_t context_len, uint8_t *out, size_t out_len);

/* A valid vault_params; aborts the test if the id is invalid. */
struct vault_params unit_params(const char *id, uint8_t profile, uint16_t n, uint8_t m, uint8_t p,
                                uint64_t epoch);

/* One handshake between a device and a server, step by step. */
enum unit_step {
        UNIT_DEVICE_HELLO = 1,          /* -> m1 */
        UNIT_SERVER_HELLO,              /* m1 */
        UNIT_SERVER_CHALLENGE,          /* -> m2 */
        UNIT_DEVICE_RESPOND,            /* m2 -> m3 */
        UNIT_SERVER_RESPOND,            /* m3 -> m4, srv_next */
        UNIT_DEVICE_CONFIRM,            /* m4 -> m5, dev_next */
        UNIT_SERVER_COMMIT,             /* m5 */
        UNIT_STEPS = UNIT_SERVER_COMMIT,
};

struct unit_hs {
        struct vault_params params;     /* the device's; the server's unless srv_params is set */
        struct vault_params srv_params;
        const uint8_t *dev_keys, *srv_keys;
        struct hs_device dev;
        struct hs_server srv;
        uint8_t m1[SV_HELLO_FRAME_MAX], m2[SV_CHALLENGE_FRAME_MAX], m3[SV_RESPONSE_FRAME_MAX];
        uint8_t m4[SV_CONFIRM_FRAME_LEN], m5[SV_COMMIT_FRAME_LEN];
        size_t m1_len, m2_len, m3_len, m4_len, m5_len;
        struct msg_hello hello;
        uint8_t *dev_next, *srv_next;   /* n·m bytes each, owned */
};

/* dev_rng/srv_rng NULL: the OS CSPRNG. srv_keys NULL: the same keys as the device. */
void unit_hs_init(struct unit_hs *h, const struct vault_params *params, const uint8_t *dev_keys,
                  const uint8_t *srv_keys, const struct hs_random *dev_rng, const struct hs_random *srv_rng);
void unit_hs_free(struct unit_hs *h);
/* Runs one step; returns its result. */
int unit_hs_step(struct unit_hs *h, enum unit_step step);
/* Runs every step up to and including `last`, asserting that each succeeds. */
void unit_hs_run_to(struct unit_hs *h, enum unit_step last);
/* The same from `first` on. */
void unit_hs_run(struct unit_hs *h, enum unit_step first, enum unit_step last);

/* A heap copy of exactly len bytes, so that ASan catches any read past the end. */
uint8_t *unit_dup(const void *p, size_t len);

/* Hex rendering for failure messages (static buffer, one call per message). */
const char *unit_hex(const void *p, size_t len);

/* Whether all len bytes are zero: a wiped secret, an untouched output. */
bool unit_is_zero(const void *p, size_t len);

/* X25519 u-coordinates (little-endian) from a decimal number, or from p = 2^255 - 19 plus delta. */
void unit_u_decimal(const char *dec, uint8_t out[32]);
void unit_u_p_plus(long delta, uint8_t out[32]);
/*
 * Every small-order u-coordinate of RFC 7748 curve25519 and its twist, computed from the
 * numbers: 0, 1, the two of order 8, p-1, and the non-canonical p and p+1; each also with
 * bit 255 set, which X25519 ignores.
 */
#define UNIT_SMALL_ORDER_COUNT 14
void unit_small_order_points(uint8_t pts[UNIT_SMALL_ORDER_COUNT][32]);
