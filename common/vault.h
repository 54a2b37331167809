/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "proto.h"

/*
 * The vault: n keys of m bytes shared by one device and the server (protocol §2).
 * Key bytes live in memory the caller owns (vaultd keeps them in secret memory), so
 * these functions take them as a plain pointer to n·m bytes.
 */
struct vault_params {
        char device_id[SV_ID_MAX + 1];  /* NUL-terminated */
        uint8_t id_len;
        uint8_t profile;                /* SV_PROFILE_* */
        uint16_t n;
        uint8_t m;
        uint8_t p;
        uint64_t epoch;
        uint8_t kex;                    /* SV_KEX_*: SV_KEX_NONE (0) unless enrolled with a key share */
};

/* p strictly increasing indices below n. */
struct challenge {
        uint8_t p;
        uint16_t idx[SV_P_MAX];
};

static inline size_t vault_size(const struct vault_params *v) {
        return (size_t) v->n * v->m;
}

/* The parameters a message's length depends on, for wire_body_len(). */
static inline struct wire_params vault_wire_params(const struct vault_params *v) {
        return (struct wire_params) { .profile = v->profile, .kex = v->kex, .id_len = v->id_len, .p = v->p };
}

/* wire_body_len() of a message exchanged with this vault; 0 if its parameters are invalid. */
static inline size_t vault_body_len(uint8_t type, const struct vault_params *v) {
        struct wire_params w = vault_wire_params(v);

        return wire_body_len(type, &w);
}

bool vault_device_id_valid(const char *id, size_t len);
int vault_params_validate(const struct vault_params *v);
int vault_params_set_id(struct vault_params *v, const char *id);
const char *vault_profile_to_string(uint8_t profile);
int vault_profile_from_string(const char *s);

/* -EBADMSG unless c has exactly p strictly increasing indices, each below n. */
int challenge_validate(const struct challenge *c, uint16_t n, uint8_t p);
/* -EBADMSG if the two share an index. Both must be valid. */
int challenge_disjoint(const struct challenge *a, const struct challenge *b);
/* p distinct random indices below n, none in avoid (may be NULL), sorted. */
int challenge_generate(struct challenge *ret, uint16_t n, uint8_t p, const struct challenge *avoid);
/* The same from another CSPRNG: draw(userdata, out, len) fills out or returns a negative errno. */
int challenge_generate_from(struct challenge *ret, uint16_t n, uint8_t p, const struct challenge *avoid,
                            int (*draw)(void *userdata, void *out, size_t len), void *userdata);

/* X(C): the XOR of the keys C names, m bytes into out. */
void vault_combine(const uint8_t *keys, const struct vault_params *v, const struct challenge *c, uint8_t *out);

/*
 * Hardened update (§5): V' = KBKDF(HMAC-SHA256(U, V), "sv1 vault", id || u64(e+1), n·m).
 * `out` receives n·m bytes and may alias `keys`. -EOVERFLOW if the epoch cannot advance.
 */
int vault_update_hardened(const uint8_t *keys, const struct vault_params *v,
                          const uint8_t u[SV_KEY_LEN], uint8_t *out);
/* Paper update (§5): 64-byte partitions XORed with HMAC-SHA512(M1||M2||M3||M4, V) ^ i. */
int vault_update_paper(const uint8_t *keys, const struct vault_params *v,
                       const uint8_t *transcript, size_t transcript_len, uint8_t *out);
