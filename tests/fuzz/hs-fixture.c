/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hs-fixture.h"

struct fixture_def {
        const char *name;
        const char *device_id;
        uint8_t profile;
        uint16_t n;
        uint8_t m, p;
        uint64_t epoch;
        const char *vault;              /* hex, or NULL for a generated pattern */
        const char *session_id, *r1, *t1, *r2, *t2;
        uint16_t c1[SV_P_MAX], c2[SV_P_MAX];
};

static const struct fixture_def defs[HS_FIXTURE_COUNT] = {
        {
                .name = "hardened-small",
                .device_id = "sensor-0001",
                .profile = SV_PROFILE_HARDENED,
                .n = 16, .m = 16, .p = 4, .epoch = 0,
                .vault = "4c0148ced2ffbac6339e683a0f2b2cda25dc616b90b34df831e940bea9f4b48d"
                         "5ee9e188b9bd90ac0bd8d4d36eeccb846d47ef11a5181fb7eb72e20f68921422"
                         "46f64022b6d11a6b75196004d24c8e68791dc042ec8b56df23fbb502fe12cece"
                         "4de1d910b58b60932644bf2eb12e30875af1df8a115fef7d6d1995f5197f21b8"
                         "a63f51bf940ff068b75b19b8bedb6091b29ac9e7964dcf220d0dbf3787a6e8e0"
                         "9e154ae9336e064b26a3625a0c70b88b6cbd5b521b20fccd10a4c40d7f11a1ab"
                         "c5f1a50cf93ec4a4cc003d67556cf79bf8c27ba4a3eb131dcfaf0fc1665fc05f"
                         "044517bd3050a4614ff2915c51bd8afb97b4c5e6dbe79084417a30075d652543",
                .session_id = "6916f54f321b47005b86b98e98f4002d",
                .r1 = "d50b2b3fe6cd4d9eed1a8efbd19e08cc",
                .t1 = "4a91146ad6bcac178a862aabe711cb6fe5c0697b29383d607d80513979b1b643",
                .r2 = "0c3b806f8f03655b2020b05a82b89e44",
                .t2 = "6a7eb8f459e892ed57143481affc56d086581f5bfcb6e76f7a57191f7addab8a",
                .c1 = { 1, 7, 10, 11 },
                .c2 = { 0, 2, 9, 13 },
        },
        {
                .name = "paper-small",
                .device_id = "sensor-0002",
                .profile = SV_PROFILE_PAPER,
                .n = 16, .m = 16, .p = 4, .epoch = 7,
                .vault = "8d8e8284fe33a6ca80d854b8b488d4f38c9b7166acbdbb2bf9960855fb5b7094"
                         "c2cfd63ce0b5c6788f228bb7a76a88a4fb7c58b2fe3a6e9122b4c95edb529991"
                         "f999e14c257d5cb545478724024a1c13798c7a861ec20d269d399c8697ba4e27"
                         "6d1e290a3a3349cccb16f3ce22bfcd4210dc1a5b9660fda1668a2a016a685f31"
                         "bee5fca4a03c9e2e667cd48d6c2114dbdb2a4ceaa78d152bc3262e91c9806314"
                         "4ff186311f0814cd09abed6a763d9a2d419008fe77ca756fc7e8fde2e3b2dfe5"
                         "032ee3565efa2c988c642aebde9b744dd695801d63579fd7e3ff74787b71c75b"
                         "d61e3716f3e0f8dabd833497416443c74557ea79f3d1133b605f97a9e5477fc7",
                .session_id = "49ea3ba0d68b48b99b2e76d4cc985303",
                .r1 = "5efccae6bd2bd88d372b27a1990f1376",
                .t1 = "06bbdbd3c442a41388ffe06a17fa92257514d9cae8a3bfc4e95a05d57e92be38",
                .r2 = "cbaee04c3ee4310d17130d84001a8511",
                .t2 = "5c40599bf9b1bee15a5dfc8756ab42f6469b128c3cc945296dd6f49aaf6eb231",
                .c1 = { 10, 11, 12, 15 },
                .c2 = { 3, 4, 7, 13 },
        },
        {
                /* Largest id, m and p; c1 the even and c2 the odd indices below 128. */
                .name = "paper-wide",
                .device_id = "fuzz.device-0123456789:abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLM",
                .profile = SV_PROFILE_PAPER,
                .n = 200, .m = 32, .p = 64, .epoch = UINT64_MAX - 1,
        },
};

static struct hs_fixture fixtures[HS_FIXTURE_COUNT];
static struct hs_trace scratch_trace;

static void hex_fill(uint8_t *out, size_t len, const char *hex, uint8_t seed) {
        if (!hex) {
                /* A fixed pattern that is neither zero nor periodic over short spans. */
                for (size_t i = 0; i < len; i++)
                        out[i] = (uint8_t) ((i * 167u + seed * 29u + 13u) ^ (i >> 8) ^ (i >> 3));
                return;
        }
        FUZZ_CHECK(strlen(hex) == 2 * len);
        for (size_t i = 0; i < len; i++) {
                unsigned v;

                FUZZ_CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1);
                out[i] = (uint8_t) v;
        }
}

static int fixture_bytes(void *userdata, enum hs_value what, uint8_t *out, size_t len) {
        const struct hs_fixture *f = userdata;
        const uint8_t *src;
        size_t src_len;

        switch (what) {
        case HS_SESSION_ID: src = f->session_id; src_len = sizeof f->session_id; break;
        case HS_R1: src = f->r1; src_len = sizeof f->r1; break;
        case HS_T1: src = f->t1; src_len = sizeof f->t1; break;
        case HS_R2: src = f->r2; src_len = sizeof f->r2; break;
        case HS_T2: src = f->t2; src_len = sizeof f->t2; break;
        default: return -EINVAL;
        }
        if (len != src_len)
                return -EINVAL;
        memcpy(out, src, len);
        return 0;
}

static int fixture_challenge(void *userdata, enum hs_value what, uint16_t n, uint8_t p,
                             const struct challenge *avoid, struct challenge *ret) {
        const struct hs_fixture *f = userdata;

        (void) n;
        (void) p;
        (void) avoid;
        switch (what) {
        case HS_C1: *ret = f->c1; return 0;
        case HS_C2: *ret = f->c2; return 0;
        default: return -EINVAL;
        }
}

static uint8_t *vault_alloc(size_t len) {
        uint8_t *p = calloc(1, len);

        FUZZ_CHECK(p);
        return p;
}

static void fixture_build(struct hs_fixture *f, const struct fixture_def *d, uint8_t seed) {
        struct hs_device dev;
        struct hs_server srv;
        uint8_t *dev_next;
        size_t vlen;

        memset(f, 0, sizeof *f);
        f->name = d->name;
        FUZZ_CHECK(vault_params_set_id(&f->params, d->device_id) == 0);
        f->params.profile = d->profile;
        f->params.n = d->n;
        f->params.m = d->m;
        f->params.p = d->p;
        f->params.epoch = d->epoch;
        FUZZ_CHECK(vault_params_validate(&f->params) == 0);

        vlen = vault_size(&f->params);
        f->vault = vault_alloc(vlen);
        f->next_vault = vault_alloc(vlen);
        f->scratch_vault = vault_alloc(vlen);
        dev_next = vault_alloc(vlen);
        hex_fill(f->vault, vlen, d->vault, seed);
        hex_fill(f->session_id, sizeof f->session_id, d->session_id, seed + 1);
        hex_fill(f->r1, sizeof f->r1, d->r1, seed + 2);
        hex_fill(f->t1, sizeof f->t1, d->t1, seed + 3);
        hex_fill(f->r2, sizeof f->r2, d->r2, seed + 4);
        hex_fill(f->t2, sizeof f->t2, d->t2, seed + 5);
        f->c1.p = f->c2.p = d->p;
        for (unsigned i = 0; i < d->p; i++) {
                f->c1.idx[i] = d->session_id ? d->c1[i] : (uint16_t) (2 * i);
                f->c2.idx[i] = d->session_id ? d->c2[i] : (uint16_t) (2 * i + 1);
        }
        f->rng = (struct hs_random) { fixture_bytes, fixture_challenge, f };

        hs_device_init(&dev, &f->params, f->vault, &f->rng);
        dev.trace = &scratch_trace;
        hs_server_init(&srv, &f->rng, d->n, d->p);
        srv.trace = &scratch_trace;
        memcpy(&f->srv_m1, &srv, sizeof srv);

        FUZZ_CHECK(hs_device_hello(&dev, f->m1, sizeof f->m1, &f->m1_len) == 0);
        memcpy(&f->dev_m2, &dev, sizeof dev);

        /* The decoy: the same M1 and M2 shape, no vault. */
        memcpy(&f->decoy_m3, &f->srv_m1, sizeof f->decoy_m3);
        FUZZ_CHECK(hs_server_hello(&f->decoy_m3, f->m1, f->m1_len, NULL) == 0);
        FUZZ_CHECK(hs_server_challenge(&f->decoy_m3, NULL, NULL, f->m2, sizeof f->m2, &f->m2_len) == 0);

        FUZZ_CHECK(hs_server_hello(&srv, f->m1, f->m1_len, NULL) == 0);
        FUZZ_CHECK(hs_server_challenge(&srv, &f->params, f->vault, f->m2, sizeof f->m2, &f->m2_len) == 0);
        memcpy(&f->srv_m3, &srv, sizeof srv);
        FUZZ_CHECK(hs_device_respond(&dev, f->m2, f->m2_len, f->m3, sizeof f->m3, &f->m3_len) == 0);
        memcpy(&f->dev_m4, &dev, sizeof dev);
        FUZZ_CHECK(hs_server_respond(&srv, f->m3, f->m3_len, f->next_vault, f->m4, sizeof f->m4, &f->m4_len) == 0);
        memcpy(&f->srv_m5, &srv, sizeof srv);
        FUZZ_CHECK(hs_device_confirm(&dev, f->m4, f->m4_len, dev_next, f->m5, sizeof f->m5, &f->m5_len) == 0);
        FUZZ_CHECK(hs_server_commit(&srv, f->m5, f->m5_len) == 0);

        /* Both sides agree, or the snapshots are worthless. */
        FUZZ_CHECK(memcmp(dev_next, f->next_vault, vlen) == 0);
        FUZZ_CHECK(hs_device_session_key(&dev) && hs_server_session_key(&srv));
        FUZZ_CHECK(memcmp(hs_device_session_key(&dev), hs_server_session_key(&srv), SV_KEY_LEN) == 0);
        memcpy(f->session_key, hs_server_session_key(&srv), SV_KEY_LEN);

        hs_device_wipe(&dev);
        hs_server_wipe(&srv);
        free(dev_next);
}

const struct hs_fixture *hs_fixtures(void) {
        static bool built;

        if (!built) {
                for (unsigned i = 0; i < HS_FIXTURE_COUNT; i++)
                        fixture_build(&fixtures[i], &defs[i], (uint8_t) (0x40 + 16 * i));
                built = true;
        }
        return fixtures;
}
