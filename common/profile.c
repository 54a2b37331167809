/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "profile.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Both profiles allow the same vault shapes (§2); they differ in their key schedule. */
#define SHAPES_V1 \
        .n_min = SV_N_MIN, .n_max = SV_N_MAX, .n_default = SV_DEFAULT_N, \
        .m_values = { SV_M_MIN, SV_M_MAX }, .m_default = SV_DEFAULT_M, \
        .p_min = SV_P_MIN, .p_max = SV_P_MAX, .p_default = SV_DEFAULT_P

static const struct profile_info profiles[] = {
        {
                .profile = SV_PROFILE_HARDENED, .kex = SV_KEX_NONE, .name = "hardened",
                .implemented = true, .keys = PROFILE_KEYS_HKDF, SHAPES_V1, .share_len = 0,
        },
        {
                .profile = SV_PROFILE_PAPER, .kex = SV_KEX_NONE, .name = "paper",
                .implemented = true, .keys = PROFILE_KEYS_RAW, SHAPES_V1, .share_len = 0,
        },
        /* Revision 1.1 §10: the ephemeral X25519 share, hardened only. */
        {
                .profile = SV_PROFILE_HARDENED, .kex = SV_KEX_X25519, .name = "hardened",
                .implemented = true, .keys = PROFILE_KEYS_HKDF, SHAPES_V1, .share_len = SV_KEX_SHARE_MAX,
        },
};

/* A body is fixed + id_len·per_id + p·per_index, plus the entry's key share if `share`. */
static const struct msg_shape {
        uint8_t type;
        uint16_t fixed;
        uint8_t per_id;
        uint8_t per_index;
        bool share;
} shapes[] = {
        { SV_MSG_HELLO,     SV_HELLO_FIXED,                    1, 0,            true },
        { SV_MSG_CHALLENGE, SV_CHALLENGE_FIXED,                0, SV_INDEX_LEN, true },
        { SV_MSG_RESPONSE,  SV_RESPONSE_PT_FIXED + SV_TAG_LEN, 0, SV_INDEX_LEN, false },
        { SV_MSG_CONFIRM,   SV_CONFIRM_BODY_LEN,               0, 0,            false },
        { SV_MSG_COMMIT,    SV_COMMIT_BODY_LEN,                0, 0,            false },
        { SV_MSG_ERROR,     SV_ERROR_BODY_LEN,                 0, 0,            false },
};

const struct profile_info *profile_table(size_t *ret_count) {
        *ret_count = ELEMENTSOF(profiles);
        return profiles;
}

const struct profile_info *profile_find(uint64_t profile, uint64_t kex) {
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (profiles[i].profile == profile && profiles[i].kex == kex)
                        return profiles[i].implemented ? &profiles[i] : NULL;
        return NULL;
}

const char *profile_name(uint64_t profile) {
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (profiles[i].profile == profile)
                        return profiles[i].name;
        return NULL;
}

int profile_from_name(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (strcmp(profiles[i].name, name) == 0)
                        return profiles[i].profile;
        return -EINVAL;
}

bool profile_n_valid(const struct profile_info *pi, uint64_t n) {
        return pi && n >= pi->n_min && n <= pi->n_max;
}

bool profile_m_valid(const struct profile_info *pi, uint64_t m) {
        return pi && (m == pi->m_values[0] || m == pi->m_values[1]);
}

bool profile_p_valid(const struct profile_info *pi, uint64_t n, uint64_t p) {
        return pi && p >= pi->p_min && p <= pi->p_max && p <= n / 2;
}

int profile_check(uint64_t profile, uint64_t kex, uint64_t n, uint64_t m, uint64_t p) {
        const struct profile_info *pi = profile_find(profile, kex);

        if (!profile_n_valid(pi, n) || !profile_m_valid(pi, m) || !profile_p_valid(pi, n, p))
                return -EINVAL;
        return 0;
}

static const struct msg_shape *shape_find(uint8_t type) {
        for (size_t i = 0; i < ELEMENTSOF(shapes); i++)
                if (shapes[i].type == type)
                        return &shapes[i];
        return NULL;
}

static size_t shape_len(const struct msg_shape *s, const struct profile_info *pi, uint8_t id_len, uint8_t p) {
        return s->fixed + (size_t) s->per_id * id_len + (size_t) s->per_index * p + (s->share ? pi->share_len : 0);
}

size_t wire_body_len(uint8_t type, const struct wire_params *w) {
        const struct msg_shape *s = shape_find(type);
        const struct profile_info *pi = profile_find(w->profile, w->kex);

        if (!s || !pi)
                return 0;
        if (s->per_id && (w->id_len < SV_ID_MIN || w->id_len > SV_ID_MAX))
                return 0;
        /* The vault's n is not part of a message's length: only p's own range applies here. */
        if (s->per_index && (w->p < pi->p_min || w->p > pi->p_max))
                return 0;
        return shape_len(s, pi, w->id_len, w->p);
}

int wire_body_len_range(uint8_t type, size_t *ret_min, size_t *ret_max) {
        const struct msg_shape *s = shape_find(type);
        size_t lo = SIZE_MAX, hi = 0;

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++) {
                const struct profile_info *pi = &profiles[i];
                size_t a, b;

                if (!pi->implemented)
                        continue;
                a = shape_len(s, pi, SV_ID_MIN, pi->p_min);
                b = shape_len(s, pi, SV_ID_MAX, pi->p_max);
                lo = a < lo ? a : lo;
                hi = b > hi ? b : hi;
        }
        if (hi == 0)
                return -EINVAL;
        *ret_min = lo;
        *ret_max = hi;
        return 0;
}

const struct profile_info *profile_entry(uint64_t profile, uint64_t kex) {
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (profiles[i].profile == profile && profiles[i].kex == kex)
                        return &profiles[i];
        return NULL;
}

static const char *const kex_names[] = {
        [SV_KEX_NONE] = "none",
        [SV_KEX_X25519] = "x25519",
};

const char *profile_kex_name(uint64_t kex) {
        return kex < ELEMENTSOF(kex_names) ? kex_names[kex] : NULL;
}

int profile_kex_from_name(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(kex_names); i++)
                if (kex_names[i] && strcmp(kex_names[i], name) == 0)
                        return (int) i;
        return -EINVAL;
}
