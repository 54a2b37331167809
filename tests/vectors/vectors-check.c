/* SPDX-License-Identifier: MIT */
/*
 * vectors-check FILE...: runs the known-answer cases of protocol §9 through both
 * handshake state machines, feeding each the case's random values, and compares every
 * field. Prints one line per case and "N passed, M failed"; exits 1 on any failure.
 *
 * Revision 1.1 (extensions.txt): `kex` (none without it) and, with kex x25519, the scalars
 * e_dev and e_srv (drawn through hs_random like every other value), share_dev, share_srv
 * and z, all required then and refused otherwise. The fields of the bundle and the data
 * channel (§8, §11: bundle_check, both secrets, every record, both CLOSEs) come all together
 * or not at all: both sides' secrets must be the file's, each side seals the file's records
 * byte for byte and the other side opens them to the file's payloads.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "crypto.h"
#include "handshake.h"
#include "kat.h"
#include "record.h"

#define LINE_MAX_LEN    (2 * SV_VAULT_MAX + 256)

enum field {
        F_NAME, F_DEVICE_ID, F_PROFILE, F_N, F_M, F_P, F_EPOCH, F_VAULT,
        F_SESSION_ID, F_R1, F_C1, F_T1, F_R2, F_C2, F_T2,
        F_M1, F_M2, F_M3, F_M4, F_M5, F_TH2, F_TH3, F_TH4, F_X1, F_X2,
        F_K3, F_K4, F_K5, F_SESSION_KEY, F_NEW_EPOCH, F_NEW_VAULT, F_NEW_VAULT_SHA256,
        F_REQUIRED,                     /* the fields below are those of revision 1.1 §10 */
        F_KEX = F_REQUIRED, F_E_DEV, F_E_SRV, F_SHARE_DEV, F_SHARE_SRV, F_Z,
        F_CHANNEL,                      /* §8 and §11: all of them or none */
        F_BUNDLE_CHECK = F_CHANNEL, F_C2S_SECRET, F_S2C_SECRET, F_DATA_C2S, F_REC_C2S, F_CLOSE_C2S,
        F_DATA_S2C, F_REC_S2C, F_CLOSE_S2C,
        F_COUNT,
};

static const char *const field_names[F_COUNT] = {
        "name", "device_id", "profile", "n", "m", "p", "epoch", "vault",
        "session_id", "r1", "c1", "t1", "r2", "c2", "t2",
        "m1", "m2", "m3", "m4", "m5", "th2", "th3", "th4", "x1", "x2",
        "k3", "k4", "k5", "session_key", "new_epoch", "new_vault", "new_vault_sha256",
        "kex", "e_dev", "e_srv", "share_dev", "share_srv", "z",
        "bundle_check", "c2s_secret", "s2c_secret", "data_c2s", "rec_c2s", "close_c2s",
        "data_s2c", "rec_s2c", "close_s2c",
};

struct vcase {
        char *values[F_COUNT];
        unsigned line;
};

struct bytes {
        uint8_t *data;
        size_t len;
};

static void case_clear(struct vcase *c) {
        for (int f = 0; f < F_COUNT; f++)
                free(c->values[f]);
        *c = (struct vcase) { 0 };
}

/* Hex as tests/lib/kat.c reads it, for every known-answer file alike. */
static int hex_decode(const char *s, struct bytes *ret) {
        struct kat_bytes b;
        int r;

        r = kat_hex(s, &b);
        if (r < 0)
                return r;
        *ret = (struct bytes) { b.data, b.len };
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;

        errno = 0;
        if (!*s || *s == '-')
                return -EINVAL;
        *ret = strtoull(s, &end, 10);
        return errno || *end ? -EINVAL : 0;
}

static int parse_challenge(const char *s, struct challenge *ret) {
        struct challenge c = { 0 };
        const char *p = s;

        while (*p) {
                char *end;
                unsigned long v;

                if (c.p == SV_P_MAX)
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno || end == p || v > UINT16_MAX)
                        return -EINVAL;
                c.idx[c.p++] = (uint16_t) v;
                p = end;
                if (*p == ',')
                        p++;
                else if (*p)
                        return -EINVAL;
        }
        *ret = c;
        return 0;
}

/* The random source of one case: hands out exactly the values the case lists. */
struct vector_rng {
        struct bytes session_id, r1, t1, r2, t2, e_dev, e_srv;
        struct challenge c1, c2;
};

static int vector_bytes(void *userdata, enum hs_value what, uint8_t *out, size_t len) {
        struct vector_rng *v = userdata;
        const struct bytes *b;

        switch (what) {
        case HS_SESSION_ID: b = &v->session_id; break;
        case HS_R1: b = &v->r1; break;
        case HS_T1: b = &v->t1; break;
        case HS_R2: b = &v->r2; break;
        case HS_T2: b = &v->t2; break;
        case HS_E_DEV: b = &v->e_dev; break;
        case HS_E_SRV: b = &v->e_srv; break;
        default: return -EINVAL;
        }
        if (b->len != len)
                return -EINVAL;
        memcpy(out, b->data, len);
        return 0;
}

static int vector_challenge(void *userdata, enum hs_value what, uint16_t n, uint8_t p,
                            const struct challenge *avoid, struct challenge *ret) {
        struct vector_rng *v = userdata;

        switch (what) {
        case HS_C1: *ret = v->c1; return 0;
        case HS_C2: *ret = v->c2; return 0;
        default: return -EINVAL;
        }
}

static bool all_zero(const uint8_t *p, size_t len) {
        uint8_t acc = 0;

        for (size_t i = 0; i < len; i++)
                acc |= p[i];
        return acc == 0;
}

struct checker {
        const char *name;
        unsigned failures;
};

static void fail(struct checker *ck, const char *what, const char *detail) {
        fprintf(stderr, "  %s: %s %s\n", ck->name, what, detail);
        ck->failures++;
}

static void check_bytes(struct checker *ck, const struct vcase *c, enum field f, const char *side,
                        const uint8_t *got, size_t got_len) {
        struct bytes want = { 0 };
        char what[64];

        snprintf(what, sizeof what, "%s (%s)", field_names[f], side);
        if (hex_decode(c->values[f], &want) < 0) {
                fail(ck, what, "is not valid hex in the file");
                return;
        }
        if (!got)
                fail(ck, what, "was not produced");
        else if (want.len != got_len)
                fail(ck, what, "has the wrong length");
        else if (memcmp(want.data, got, got_len) != 0)
                fail(ck, what, "differs");
        free(want.data);
}

static void check_trace(struct checker *ck, const struct vcase *c, const char *side,
                        const struct hs_trace *t, uint8_t m) {
        check_bytes(ck, c, F_TH2, side, t->th2, sizeof t->th2);
        check_bytes(ck, c, F_TH3, side, t->th3, sizeof t->th3);
        check_bytes(ck, c, F_TH4, side, t->th4, sizeof t->th4);
        check_bytes(ck, c, F_X1, side, t->x1, m);
        check_bytes(ck, c, F_X2, side, t->x2, m);
        check_bytes(ck, c, F_K3, side, t->k3, t->k3_len);
        check_bytes(ck, c, F_K4, side, t->k4, t->k4_len);
        check_bytes(ck, c, F_K5, side, t->k5, sizeof t->k5);
}

static int parse_kex(const char *s) {
        if (!s || strcmp(s, "none") == 0)
                return SV_KEX_NONE;
        if (strcmp(s, "x25519") == 0)
                return SV_KEX_X25519;
        return -EINVAL;
}

static int load_params(const struct vcase *c, struct vault_params *v, struct bytes *vault) {
        uint64_t n, m, p;
        int profile, kex;

        *v = (struct vault_params) { 0 };
        kex = parse_kex(c->values[F_KEX]);
        if (kex < 0)
                return -EINVAL;
        v->kex = (uint8_t) kex;
        profile = vault_profile_from_string(c->values[F_PROFILE]);
        if (profile < 0 || vault_params_set_id(v, c->values[F_DEVICE_ID]) < 0 ||
            parse_u64(c->values[F_N], &n) < 0 || n > UINT16_MAX ||
            parse_u64(c->values[F_M], &m) < 0 || m > UINT8_MAX ||
            parse_u64(c->values[F_P], &p) < 0 || p > UINT8_MAX ||
            parse_u64(c->values[F_EPOCH], &v->epoch) < 0)
                return -EINVAL;
        v->profile = (uint8_t) profile;
        v->n = (uint16_t) n;
        v->m = (uint8_t) m;
        v->p = (uint8_t) p;
        if (vault_params_validate(v) < 0 || hex_decode(c->values[F_VAULT], vault) < 0)
                return -EINVAL;
        if (vault->len != vault_size(v)) {
                free(vault->data);
                return -EINVAL;
        }
        return 0;
}

static int load_rng(const struct vcase *c, struct vector_rng *rng) {
        *rng = (struct vector_rng) { 0 };
        if (hex_decode(c->values[F_SESSION_ID], &rng->session_id) < 0 ||
            hex_decode(c->values[F_R1], &rng->r1) < 0 ||
            hex_decode(c->values[F_T1], &rng->t1) < 0 ||
            hex_decode(c->values[F_R2], &rng->r2) < 0 ||
            hex_decode(c->values[F_T2], &rng->t2) < 0 ||
            parse_challenge(c->values[F_C1], &rng->c1) < 0 ||
            parse_challenge(c->values[F_C2], &rng->c2) < 0)
                return -EINVAL;
        /* Absent without a key share: a draw of e_dev or e_srv is then refused (length 0). */
        if ((c->values[F_E_DEV] && hex_decode(c->values[F_E_DEV], &rng->e_dev) < 0) ||
            (c->values[F_E_SRV] && hex_decode(c->values[F_E_SRV], &rng->e_srv) < 0))
                return -EINVAL;
        return 0;
}

static void rng_free(struct vector_rng *rng) {
        free(rng->session_id.data);
        free(rng->r1.data);
        free(rng->t1.data);
        free(rng->r2.data);
        free(rng->t2.data);
        free(rng->e_dev.data);
        free(rng->e_srv.data);
}

/*
 * One direction of the data channel: the sender seals the file's payloads and its CLOSE, which
 * must be the file's records byte for byte; the receiver opens them to the same payloads.
 * Both chains take over (and wipe) their copy of the secret.
 */
static void check_direction(struct checker *ck, const struct vcase *c, const char *name,
                            uint8_t sender_secret[RECORD_SECRET_LEN], uint8_t receiver_secret[RECORD_SECRET_LEN],
                            enum field f_data, enum field f_rec, enum field f_close) {
        struct record_chain tx, rx;
        struct kat_bytes *data = NULL, *rec = NULL;
        size_t n_data = 0, n_rec = 0, len;
        uint8_t frame[RECORD_FRAME_MAX], payload[RECORD_PAYLOAD_MAX];
        char what[64];

        record_init(&tx, sender_secret);
        record_init(&rx, receiver_secret);
        if (kat_hex_list(c->values[f_data], &data, &n_data) < 0 ||
            kat_hex_list(c->values[f_rec], &rec, &n_rec) < 0 || n_data != n_rec) {
                fail(ck, field_names[f_rec], "does not match its payload list in the file");
                goto out;
        }
        for (size_t i = 0; i < n_data; i++) {
                snprintf(what, sizeof what, "%s record %zu", name, i);
                if (record_seal(&tx, SV_MSG_DATA, data[i].data, data[i].len, frame, sizeof frame, &len) < 0) {
                        fail(ck, what, "could not be sealed");
                        goto out;
                }
                if (len != rec[i].len || memcmp(frame, rec[i].data, len) != 0)
                        fail(ck, what, "differs from the file");
                if (record_open(&rx, rec[i].data, rec[i].len, payload, sizeof payload, &len) != SV_MSG_DATA ||
                    len != data[i].len || (len > 0 && memcmp(payload, data[i].data, len) != 0)) {
                        fail(ck, what, "does not open to its payload");
                        goto out;
                }
        }
        if (record_seal(&tx, SV_MSG_CLOSE, NULL, 0, frame, sizeof frame, &len) < 0)
                fail(ck, field_names[f_close], "could not be sealed");
        else {
                check_bytes(ck, c, f_close, name, frame, len);
                if (record_open(&rx, frame, len, NULL, 0, &len) != SV_MSG_CLOSE)
                        fail(ck, field_names[f_close], "does not open as CLOSE");
        }
out:
        record_wipe(&tx);
        record_wipe(&rx);
        kat_bytes_free_list(data, n_data);
        kat_bytes_free_list(rec, n_rec);
}

/* §8 and §11: the bundle's check line and the data channel after the handshake. */
static void check_channel(struct checker *ck, const struct vcase *c, const struct vault_params *params,
                          const uint8_t *vault, const struct hs_device *dev, const struct hs_server *srv) {
        uint8_t dev_c2s[RECORD_SECRET_LEN], dev_s2c[RECORD_SECRET_LEN];
        uint8_t srv_c2s[RECORD_SECRET_LEN], srv_s2c[RECORD_SECRET_LEN];
        uint8_t check[BUNDLE_CHECK_LEN];

        if (bundle_check(params, params->kex, vault, check) < 0)
                fail(ck, "bundle_check", "could not be computed");
        else
                check_bytes(ck, c, F_BUNDLE_CHECK, "bundle", check, sizeof check);
        if (hs_device_channel_secrets(dev, dev_c2s, dev_s2c) < 0 ||
            hs_server_channel_secrets(srv, srv_c2s, srv_s2c) < 0) {
                fail(ck, "channel secrets", "are not available after M5");
                return;
        }
        check_bytes(ck, c, F_C2S_SECRET, "device", dev_c2s, sizeof dev_c2s);
        check_bytes(ck, c, F_C2S_SECRET, "server", srv_c2s, sizeof srv_c2s);
        check_bytes(ck, c, F_S2C_SECRET, "device", dev_s2c, sizeof dev_s2c);
        check_bytes(ck, c, F_S2C_SECRET, "server", srv_s2c, sizeof srv_s2c);
        check_direction(ck, c, "c2s", dev_c2s, srv_c2s, F_DATA_C2S, F_REC_C2S, F_CLOSE_C2S);
        check_direction(ck, c, "s2c", srv_s2c, dev_s2c, F_DATA_S2C, F_REC_S2C, F_CLOSE_S2C);
}

/* Runs one case through both state machines; returns the number of mismatches. */
static unsigned run_case(const struct vcase *c) {
        struct checker ck = { .name = c->values[F_NAME] };
        struct vault_params params;
        struct bytes vault = { 0 };
        struct vector_rng rng_data;
        struct hs_random rng = { vector_bytes, vector_challenge, &rng_data };
        struct hs_device dev;
        struct hs_server srv;
        struct hs_trace dtrace = { 0 }, strace = { 0 };
        uint8_t m1[SV_FRAME_MAX], m2[SV_FRAME_MAX], m3[SV_FRAME_MAX], m4[SV_FRAME_MAX], m5[SV_FRAME_MAX];
        size_t m1_len, m2_len, m3_len, m4_len, m5_len;
        uint8_t *dev_next = NULL, *srv_next = NULL, digest[32];
        uint64_t new_epoch;
        int r;

        if (load_params(c, &params, &vault) < 0) {
                fail(&ck, "parameters", "are invalid");
                return ck.failures;
        }
        if (load_rng(c, &rng_data) < 0) {
                fail(&ck, "random values", "are invalid");
                goto out;
        }
        dev_next = calloc(1, vault.len);
        srv_next = calloc(1, vault.len);
        if (!dev_next || !srv_next) {
                fail(&ck, "memory", "is exhausted");
                goto out;
        }

        hs_device_init(&dev, &params, vault.data, &rng);
        dev.trace = &dtrace;
        hs_server_init(&srv, &rng, SV_DEFAULT_N, SV_DEFAULT_P);
        srv.trace = &strace;

#define STEP(call, what) do { r = (call); if (r < 0) { fail(&ck, what, strerror(-r)); goto out; } } while (0)
        STEP(hs_device_hello(&dev, m1, sizeof m1, &m1_len), "device M1");
        check_bytes(&ck, c, F_M1, "device", m1, m1_len);
        STEP(hs_server_hello(&srv, m1, m1_len, NULL), "server reading M1");
        STEP(hs_server_challenge(&srv, &params, vault.data, m2, sizeof m2, &m2_len), "server M2");
        check_bytes(&ck, c, F_M2, "server", m2, m2_len);
        STEP(hs_device_respond(&dev, m2, m2_len, m3, sizeof m3, &m3_len), "device M3");
        check_bytes(&ck, c, F_M3, "device", m3, m3_len);
        STEP(hs_server_respond(&srv, m3, m3_len, srv_next, m4, sizeof m4, &m4_len), "server M4");
        check_bytes(&ck, c, F_M4, "server", m4, m4_len);
        STEP(hs_device_confirm(&dev, m4, m4_len, dev_next, m5, sizeof m5, &m5_len), "device M5");
        check_bytes(&ck, c, F_M5, "device", m5, m5_len);
        STEP(hs_server_commit(&srv, m5, m5_len), "server reading M5");
#undef STEP

        check_trace(&ck, c, "device", &dtrace, params.m);
        check_trace(&ck, c, "server", &strace, params.m);
        if (params.kex == SV_KEX_X25519) {
                check_bytes(&ck, c, F_SHARE_DEV, "device", dtrace.share_dev, sizeof dtrace.share_dev);
                check_bytes(&ck, c, F_SHARE_DEV, "server", strace.share_dev, sizeof strace.share_dev);
                check_bytes(&ck, c, F_SHARE_SRV, "device", dtrace.share_srv, sizeof dtrace.share_srv);
                check_bytes(&ck, c, F_SHARE_SRV, "server", strace.share_srv, sizeof strace.share_srv);
                check_bytes(&ck, c, F_Z, "device", dtrace.z, sizeof dtrace.z);
                check_bytes(&ck, c, F_Z, "server", strace.z, sizeof strace.z);
                /* §10: the scalars are gone once Z is computed, Z once S is derived. */
                if (dev.kex.armed || !all_zero(dev.kex.e, sizeof dev.kex.e) || !all_zero(dev.z, sizeof dev.z))
                        fail(&ck, "device", "kept e_dev or Z");
                if (!all_zero(srv.z, sizeof srv.z))
                        fail(&ck, "server", "kept Z");
        }
        if (c->values[F_CHANNEL])
                check_channel(&ck, c, &params, vault.data, &dev, &srv);
        check_bytes(&ck, c, F_SESSION_KEY, "device", hs_device_session_key(&dev), SV_KEY_LEN);
        check_bytes(&ck, c, F_SESSION_KEY, "server", hs_server_session_key(&srv), SV_KEY_LEN);
        check_bytes(&ck, c, F_NEW_VAULT, "device", dev_next, vault.len);
        check_bytes(&ck, c, F_NEW_VAULT, "server", srv_next, vault.len);
        if (crypto_sha256(dev_next, vault.len, digest) < 0)
                fail(&ck, "new_vault_sha256", "could not be computed");
        else
                check_bytes(&ck, c, F_NEW_VAULT_SHA256, "device", digest, sizeof digest);
        if (parse_u64(c->values[F_NEW_EPOCH], &new_epoch) < 0 || params.epoch == UINT64_MAX ||
            new_epoch != params.epoch + 1)
                fail(&ck, "new_epoch", "differs");
out:
        hs_device_wipe(&dev);
        hs_server_wipe(&srv);
        rng_free(&rng_data);
        free(vault.data);
        free(dev_next);
        free(srv_next);
        return ck.failures;
}

static void chomp(char *s) {
        size_t len = strlen(s);

        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
                s[--len] = '\0';
}

/* Ends the case being read, if any: checks that every field is there and runs it. */
static void finish_case(struct vcase *c, const char *path, unsigned *passed, unsigned *failed) {
        bool any = false, complete = true;

        for (int f = 0; f < F_COUNT; f++)
                any = any || c->values[f];
        if (!any)
                return;
        for (int f = 0; f < F_REQUIRED; f++)
                if (!c->values[f]) {
                        complete = false;
                        fprintf(stderr, "%s:%u: case lacks '%s'\n", path, c->line, field_names[f]);
                }
        /* The §10 fields: all of them with kex x25519, none of them otherwise. */
        if (parse_kex(c->values[F_KEX]) < 0) {
                complete = false;
                fprintf(stderr, "%s:%u: unknown kex '%s'\n", path, c->line, c->values[F_KEX]);
        } else
                for (int f = F_KEX + 1; f < F_CHANNEL; f++)
                        if (!c->values[f] != (parse_kex(c->values[F_KEX]) != SV_KEX_X25519)) {
                                complete = false;
                                fprintf(stderr, "%s:%u: case %s '%s'\n", path, c->line,
                                        c->values[f] ? "has a key share field without kex x25519:" : "lacks",
                                        field_names[f]);
                        }
        for (int f = F_CHANNEL + 1; f < F_COUNT; f++)
                if (!c->values[f] != !c->values[F_CHANNEL]) {
                        complete = false;
                        fprintf(stderr, "%s:%u: case has some of the bundle and channel fields, not '%s'\n",
                                path, c->line, c->values[f] ? field_names[F_CHANNEL] : field_names[f]);
                }
        if (complete && run_case(c) == 0) {
                printf("ok %s\n", c->values[F_NAME]);
                (*passed)++;
        } else {
                printf("FAIL %s\n", c->values[F_NAME] ? c->values[F_NAME] : "(unnamed)");
                (*failed)++;
        }
        case_clear(c);
}

static int run_file(const char *path, unsigned *passed, unsigned *failed) {
        struct vcase c = { 0 };
        unsigned lineno = 0;
        char *line;
        FILE *f;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "Failed to open '%s': %s\n", path, strerror(errno));
                return -errno;
        }
        line = malloc(LINE_MAX_LEN);
        if (!line) {
                fclose(f);
                return -ENOMEM;
        }
        while (fgets(line, LINE_MAX_LEN, f)) {
                char *eq, *key, *value;
                int field = -1;

                lineno++;
                if (!strchr(line, '\n') && !feof(f)) {
                        fprintf(stderr, "%s:%u: line too long\n", path, lineno);
                        (*failed)++;
                        break;
                }
                chomp(line);
                key = line + strspn(line, " \t");
                if (*key == '\0') {
                        finish_case(&c, path, passed, failed);
                        continue;
                }
                if (*key == '#')
                        continue;
                eq = strchr(key, '=');
                if (!eq) {
                        fprintf(stderr, "%s:%u: expected 'key = value'\n", path, lineno);
                        (*failed)++;
                        continue;
                }
                value = eq + 1 + strspn(eq + 1, " \t");
                *eq = '\0';
                chomp(key);
                for (int i = 0; i < F_COUNT; i++)
                        if (strcmp(key, field_names[i]) == 0)
                                field = i;
                if (field < 0) {
                        fprintf(stderr, "%s:%u: ignoring unknown field '%s'\n", path, lineno, key);
                        continue;
                }
                if (!c.line)
                        c.line = lineno;
                if (c.values[field]) {
                        fprintf(stderr, "%s:%u: duplicate field '%s'\n", path, lineno, key);
                        (*failed)++;
                        continue;
                }
                c.values[field] = strdup(value);
        }
        finish_case(&c, path, passed, failed);
        free(line);
        fclose(f);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned passed = 0, failed = 0;

        if (argc < 2 || strcmp(argv[1], "--help") == 0) {
                fprintf(argc < 2 ? stderr : stdout, "Usage: %s FILE...\n", argv[0]);
                return argc < 2 ? 2 : 0;
        }
        for (int i = 1; i < argc; i++)
                if (run_file(argv[i], &passed, &failed) < 0)
                        failed++;
        printf("%u passed, %u failed\n", passed, failed);
        return failed == 0 && passed > 0 ? 0 : 1;
}
