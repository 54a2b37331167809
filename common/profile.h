/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/*
 * The one table of what the protocol allows, per profile and key-exchange mode, and of how
 * long each message body is (protocol §2, §3; revision 1.1 §10 for the key share). Every
 * range check and every exact length in the programs comes from here; proto.h keeps only
 * the protocol-wide bounds that size fixed buffers, and tests/unit/check_profile checks
 * that the table stays within them.
 *
 * kex is a parameter of every entry: SV_KEX_X25519 (a 32-byte share appended to M1 and M2,
 * hardened profile only); profile_find() and wire_body_len() refuse it with the paper
 * profile like an unknown profile.
 */

#define SV_KEX_NONE             0
#define SV_KEX_X25519           1
#define SV_KEX_SHARE_MAX        SV_X25519_LEN

/* How the keys follow from the vault and the transcript (protocol §4). */
enum profile_keys {
        PROFILE_KEYS_HKDF,      /* hardened: every key an HKDF output, the KBKDF vault update */
        PROFILE_KEYS_RAW,       /* paper: K3, K4 the raw m-byte XOR keys, the XOR vault update */
};

struct profile_info {
        uint8_t profile;        /* SV_PROFILE_* */
        uint8_t kex;            /* SV_KEX_* */
        const char *name;       /* of the profile, as in bundles and settings */
        bool implemented;
        enum profile_keys keys;
        uint16_t n_min, n_max, n_default;
        uint8_t m_values[2], m_default;         /* m is one of m_values */
        uint8_t p_min, p_max, p_default;        /* and 2p <= n */
        uint8_t share_len;                      /* key share at the end of M1 and M2 */
};

/* The entry for profile and kex, or NULL if there is none or it is not implemented. The
 * arguments are wide so that a caller can pass an unchecked value without narrowing it. */
const struct profile_info *profile_find(uint64_t profile, uint64_t kex);
/* The name of a profile ("hardened", "paper") or NULL; a profile's number from its name or -EINVAL. */
const char *profile_name(uint64_t profile);
int profile_from_name(const char *name);

bool profile_n_valid(const struct profile_info *pi, uint64_t n);
bool profile_m_valid(const struct profile_info *pi, uint64_t m);
bool profile_p_valid(const struct profile_info *pi, uint64_t n, uint64_t p);
/* 0 if the entry (profile, kex) exists and allows n, m and p; -EINVAL otherwise. */
int profile_check(uint64_t profile, uint64_t kex, uint64_t n, uint64_t m, uint64_t p);

/* The rows of the table, implemented or not, for tests and listings. */
const struct profile_info *profile_table(size_t *ret_count);

/* What the length of a message body depends on. */
struct wire_params {
        uint8_t profile;        /* SV_PROFILE_* */
        uint8_t kex;            /* SV_KEX_* */
        uint8_t id_len;         /* M1 */
        uint8_t p;              /* M2, M3 */
};

/*
 * The exact body length of a message of `type` (SV_MSG_*) for these parameters; only the
 * fields the type depends on are read, and they are checked against the table. 0 for an
 * unknown type, an entry that does not exist or is not implemented, or a field out of range:
 * never a length a receiver may use (0 means "any length" to wire_frame_check()).
 */
size_t wire_body_len(uint8_t type, const struct wire_params *w);
/* The shortest and longest body of `type` over every implemented entry and every allowed
 * id_len and p: what a receiver that does not yet know the parameters accepts (M1). */
int wire_body_len_range(uint8_t type, size_t *ret_min, size_t *ret_max);

/*
 * What may be enrolled (bundles, the store) is wider than what a handshake implements: the
 * entry for profile and kex whether implemented or not, NULL if the table has none. A vault
 * enrolled with kex x25519 is described by a bundle and kept by the store before the
 * handshake can carry the share (revision 1.1 §8, §10).
 */
const struct profile_info *profile_entry(uint64_t profile, uint64_t kex);
/* "none" or "x25519" (bundles, settings, listings), NULL for another value; and back, -EINVAL. */
const char *profile_kex_name(uint64_t kex);
int profile_kex_from_name(const char *name);
