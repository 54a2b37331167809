/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Fixed handshakes for the fuzz targets that read M3, M4 and M5: a deterministic vault
 * and random source per fixture, both state machines run once up to each step, and the
 * states snapshotted so that every input starts from the same bytes (copy with memcpy).
 *
 * Fixtures 0 and 1 are the hardened-small and paper-small cases of tests/vectors/public.txt,
 * so the m3..m5 listed there are genuine messages for them; fixture 2 is a larger shape
 * (paper, m = 32, p = 64, a 64-byte device id, the last epoch that can advance).
 */
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"

struct hs_fixture {
        const char *name;
        struct vault_params params;
        uint8_t *vault;                 /* n·m bytes, heap, exact size */
        uint8_t *next_vault;            /* the genuine next vault */
        uint8_t *scratch_vault;         /* n·m bytes for a step to write into */
        uint8_t session_key[SV_KEY_LEN];

        /* The values the random source hands out. */
        uint8_t session_id[SV_SESSION_ID_LEN], r1[SV_NONCE_LEN], r2[SV_NONCE_LEN];
        uint8_t t1[SV_T_LEN], t2[SV_T_LEN];
        struct challenge c1, c2;
        struct hs_random rng;

        /* The genuine frames. */
        uint8_t m1[SV_FRAME_MAX], m2[SV_FRAME_MAX], m3[SV_FRAME_MAX], m4[SV_FRAME_MAX], m5[SV_FRAME_MAX];
        size_t m1_len, m2_len, m3_len, m4_len, m5_len;

        /* Snapshots: each is about to read the message it is named after. */
        struct hs_device dev_m2;        /* HELLO_SENT */
        struct hs_device dev_m4;        /* RESPONSE_SENT */
        struct hs_server srv_m1;        /* INIT */
        struct hs_server srv_m3;        /* CHALLENGE_SENT */
        struct hs_server decoy_m3;      /* CHALLENGE_SENT, decoy of the same shape */
        struct hs_server srv_m5;        /* CONFIRM_SENT */
};

#define HS_FIXTURE_COUNT 3

/* Builds the fixtures on first use; abort()s if the handshake cannot be run. */
const struct hs_fixture *hs_fixtures(void);
