/* SPDX-License-Identifier: MIT */
/*
 * svgen: fills an authserver database with many enrolled devices, fast, for the scaling
 * benchmarks (tests/bench/run). `authserver enroll` costs a process, a transaction and an
 * fsync per device; this writes the rows through the same store API (store_enroll) inside
 * batches of --batch devices, one transaction and one fsync each.
 *
 *   svgen --db D --master-key K --devices N [--bundles DIR --bundle-count B] [--prefix P]
 *         [--profile hardened|paper] [--keys n] [--key-bytes m] [--challenge p]
 *         [--filler-keys n] [--filler-key-bytes m] [--server HOST:PORT] [--batch S]
 *         [--kex none|x25519]
 *
 * Devices are named P-0000000 .. P-(N-1). B of them, spread evenly over the id range, are
 * "measured" devices: they get the --profile/--keys/--key-bytes/--challenge vault and their
 * bundle is written to DIR/<id>.bundle. The others only fill the table and get the
 * --filler-* vault size (default the same as the measured ones); their vaults are random and
 * thrown away. --kex sets the key share mode (protocol 1.1 §10) of the measured devices, as
 * `authserver enroll --kex` does (x25519: hardened only); fillers keep none. The database
 * must exist (`authserver init`).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bundle-file.h"
#include "crypto.h"
#include "profile.h"
#include "store.h"

#define SVGEN_DEVICES_MAX       10000000        /* --devices */
#define SVGEN_BATCH_DEFAULT     10000

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int write_bundle(const char *dir, const struct bundle *b) {
        char path[4096];

        snprintf(path, sizeof path, "%s/%s.bundle", dir, b->params.device_id);
        return bundle_file_save(path, b);
}

static unsigned parse_num(const char *s, const char *what, unsigned min, unsigned max) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max) {
                fprintf(stderr, "svgen: invalid %s '%s': %u..%u\n", what, s, min, max);
                exit(2);
        }
        return (unsigned) v;
}

int main(int argc, char *argv[]) {
        enum { ARG_DB = 0x100, ARG_KEY, ARG_DEVICES, ARG_BUNDLES, ARG_BUNDLE_COUNT, ARG_PREFIX, ARG_PROFILE,
               ARG_KEYS, ARG_KEY_BYTES, ARG_CHALLENGE, ARG_FILLER_KEYS, ARG_FILLER_KEY_BYTES, ARG_SERVER, ARG_BATCH,
               ARG_KEX };
        static const struct option options[] = {
                { "db",               required_argument, NULL, ARG_DB },
                { "master-key",       required_argument, NULL, ARG_KEY },
                { "devices",          required_argument, NULL, ARG_DEVICES },
                { "bundles",          required_argument, NULL, ARG_BUNDLES },
                { "bundle-count",     required_argument, NULL, ARG_BUNDLE_COUNT },
                { "prefix",           required_argument, NULL, ARG_PREFIX },
                { "profile",          required_argument, NULL, ARG_PROFILE },
                { "keys",             required_argument, NULL, ARG_KEYS },
                { "key-bytes",        required_argument, NULL, ARG_KEY_BYTES },
                { "challenge",        required_argument, NULL, ARG_CHALLENGE },
                { "filler-keys",      required_argument, NULL, ARG_FILLER_KEYS },
                { "filler-key-bytes", required_argument, NULL, ARG_FILLER_KEY_BYTES },
                { "server",           required_argument, NULL, ARG_SERVER },
                { "batch",            required_argument, NULL, ARG_BATCH },
                { "kex",              required_argument, NULL, ARG_KEX },
                { 0 }
        };
        const char *db = NULL, *key_path = NULL, *bundles = NULL, *prefix = "dev", *server = NULL;
        unsigned devices = 0, n_bundles = 0, batch = SVGEN_BATCH_DEFAULT, profile = SV_PROFILE_HARDENED;
        unsigned n = SV_DEFAULT_N, m = SV_DEFAULT_M, p = SV_DEFAULT_P, fn = 0, fm = 0, stride, written = 0;
        int kex = SV_KEX_NONE;
        uint8_t master[STORE_MASTER_KEY_LEN];
        struct store *s = NULL;
        uint8_t *vault;
        double t0;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case ARG_DB: db = optarg; break;
                case ARG_KEY: key_path = optarg; break;
                case ARG_DEVICES: devices = parse_num(optarg, "--devices", 1, SVGEN_DEVICES_MAX); break;
                case ARG_BUNDLES: bundles = optarg; break;
                case ARG_BUNDLE_COUNT: n_bundles = parse_num(optarg, "--bundle-count", 0, SVGEN_DEVICES_MAX); break;
                case ARG_PREFIX: prefix = optarg; break;
                case ARG_PROFILE:
                        r = vault_profile_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "svgen: invalid --profile '%s': hardened or paper\n", optarg);
                                return 2;
                        }
                        profile = (unsigned) r;
                        break;
                case ARG_KEYS: n = parse_num(optarg, "--keys", SV_N_MIN, SV_N_MAX); break;
                case ARG_KEY_BYTES: m = parse_num(optarg, "--key-bytes", 16, 32); break;
                case ARG_CHALLENGE: p = parse_num(optarg, "--challenge", SV_P_MIN, SV_P_MAX); break;
                case ARG_FILLER_KEYS: fn = parse_num(optarg, "--filler-keys", SV_N_MIN, SV_N_MAX); break;
                case ARG_FILLER_KEY_BYTES: fm = parse_num(optarg, "--filler-key-bytes", 16, 32); break;
                case ARG_SERVER: server = optarg; break;
                case ARG_BATCH: batch = parse_num(optarg, "--batch", 1, 1000000); break;
                case ARG_KEX:
                        kex = profile_kex_from_name(optarg);
                        if (kex < 0) {
                                fprintf(stderr, "svgen: invalid --kex '%s': none or x25519\n", optarg);
                                return 2;
                        }
                        break;
                default:
                        fprintf(stderr, "usage: svgen --db D --master-key K --devices N [--bundles DIR --bundle-count B] "
                                        "[--prefix P] [--profile hardened|paper] [--keys n] [--key-bytes m] [--challenge p] "
                                        "[--filler-keys n] [--filler-key-bytes m] [--server HOST:PORT] [--batch S] "
                                        "[--kex none|x25519]\n");
                        return 2;
                }
        if (!fn)
                fn = n;
        if (!fm)
                fm = m;
        if (!db || !key_path || !devices || n_bundles > devices || (n_bundles && !bundles) ||
            (m != 16 && m != 32) || (fm != 16 && fm != 32) || 2 * p > n ||
            (server && !bundle_server_valid(server)) || strlen(prefix) + 8 > SV_ID_MAX ||
            !profile_entry(profile, (uint64_t) kex)) {
                fprintf(stderr, "svgen: need --db, --master-key, --devices >= --bundle-count (with --bundles), "
                                "key bytes 16 or 32, 2p <= n, a short --prefix, --kex x25519 only with hardened\n");
                return 2;
        }

        r = store_master_key_load(key_path, master);
        if (r >= 0)
                r = store_open(db, master, 0, &s);
        OPENSSL_cleanse(master, sizeof master);
        if (r < 0) {
                fprintf(stderr, "svgen: cannot open '%s': %s\n", db, store_last_error(NULL));
                return 1;
        }
        vault = malloc(SV_VAULT_MAX);
        if (!vault)
                return 1;
        /* Measured devices at indices 0, stride, 2·stride, ...: spread over the whole B-tree. */
        stride = n_bundles ? devices / n_bundles : 0;

        t0 = now_s();
        for (unsigned i = 0; i < devices;) {
                r = store_batch_begin(s);
                for (unsigned end = i + batch < devices ? i + batch : devices; r >= 0 && i < end; i++) {
                        bool measured = stride && i % stride == 0 && i / stride < n_bundles;
                        struct store_device dev = {
                                .profile = (uint8_t) (measured ? profile : SV_PROFILE_HARDENED),
                                .n = (uint16_t) (measured ? n : fn),
                                .m = (uint8_t) (measured ? m : fm),
                                /* A filler's p only has to be valid for its n. */
                                .p = (uint8_t) (measured || 2 * p <= fn ? p : fn / 2),
                                .kex = (uint8_t) (measured ? kex : SV_KEX_NONE),
                        };
                        size_t len = (size_t) dev.n * dev.m;

                        snprintf(dev.id, sizeof dev.id, "%s-%07u", prefix, i);
                        r = crypto_random(vault, len);
                        if (r >= 0)
                                r = store_enroll(s, &dev, vault, len, (int64_t) time(NULL));
                        if (r >= 0 && measured) {
                                struct bundle b = { .vault = vault, .kex = dev.kex };

                                b.params.profile = dev.profile;
                                b.params.n = dev.n;
                                b.params.m = dev.m;
                                b.params.p = dev.p;
                                b.params.kex = dev.kex;
                                (void) vault_params_set_id(&b.params, dev.id);
                                if (server)
                                        snprintf(b.server, sizeof b.server, "%s", server);
                                r = write_bundle(bundles, &b);
                                if (r < 0)
                                        fprintf(stderr, "svgen: cannot write the bundle of '%s': %s\n", dev.id,
                                                strerror(-r));
                                written += r >= 0;
                        }
                }
                if (r >= 0)
                        r = store_batch_commit(s, true);
                else
                        (void) store_batch_rollback(s);
                if (r < 0) {
                        fprintf(stderr, "svgen: enrolling failed near device %u: %s\n", i, store_last_error(s));
                        break;
                }
        }
        OPENSSL_cleanse(vault, SV_VAULT_MAX);
        free(vault);
        store_close(s);
        if (r < 0)
                return 1;
        printf("svgen: enrolled %u devices in %.1f s (%.0f/s); %u bundles in %s\n", devices, now_s() - t0,
               (double) devices / (now_s() - t0), written, bundles ? bundles : "-");
        return 0;
}
