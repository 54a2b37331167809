/* SPDX-License-Identifier: MIT */
/*
 * vaultbench: the per-handshake and per-record crypto of common/, alone, in one process
 * (tests/bench/run, section "crypto"; docs/benchmarks.md, issue #13).
 *
 *   vaultbench [--reps R] [--ms T] [-l LABEL]
 *
 * Measures, as CPU time of this thread (CLOCK_THREAD_CPUTIME_ID, so that the other load on
 * a shared machine adds as little as it can):
 *   - the hardened vault update (vault_update_hardened: HMAC-SHA256(U, V) then the KBKDF
 *     expansion) at 4 KiB (256×16) and 64 KiB (4096×16), in ns per vault byte, and its two
 *     halves (crypto_hmac_sha256 over the vault, crypto_kbkdf of n·m bytes);
 *   - record_seal and record_open (§11 data channel) at 64-byte payloads and at the largest
 *     record (1008 bytes, a 1 KiB body with its tag), in µs per record;
 *   - the floor the hash sets: SHA-256 in bulk, ns per 64-byte block, and one compression
 *     called alone (SHA256_Transform, what each KBKDF block pays twice, since the next block's
 *     message is not known before the counter changes); the vault update at that cost is
 *     bulk/64 (the HMAC over V) + 2 · alone/32 (KBKDF) ns per byte, nothing else counted.
 * Each figure is the median of R runs of about T ms each. One `key=value` line per case,
 * labelled LABEL-4K, LABEL-64K (vault), LABEL-64B, LABEL-1008B (record) and LABEL (SHA-256).
 */
/* The floor is measured on the compression function itself, SHA256_Transform: deprecated in
 * OpenSSL 3.0, and here only a yardstick. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "crypto.h"
#include "record.h"
#include "vault.h"

#define VB_REPS_DEFAULT         7
#define VB_MS_DEFAULT           60
#define VB_REPS_MAX             101
#define VB_BATCH                64      /* records sealed, then opened, per timing step */

static int reps = VB_REPS_DEFAULT, run_ms = VB_MS_DEFAULT;
static const char *label = "crypto";

static double cpu_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

static double median(double *v, int n) {
        qsort(v, (size_t) n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int r) {
        fprintf(stderr, "vaultbench: %s failed: %s\n", what, strerror(-r));
        exit(1);
}

/* One timed operation: returns a negative errno or 0; `arg` is the case. */
typedef int (*op_fn)(void *arg);

/* Median over reps of the CPU ns per call of op, each rep about run_ms long. */
static double time_op(op_fn op, void *arg) {
        double per[VB_REPS_MAX];
        long calls = 1;
        int r;

        /* Calibrate: double the calls until one batch takes a tenth of a rep. */
        for (;;) {
                double t0 = cpu_ns();

                for (long i = 0; i < calls; i++)
                        if ((r = op(arg)) < 0)
                                die("operation", r);
                if (cpu_ns() - t0 >= run_ms * 1e5 || calls > (1L << 30))
                        break;
                calls *= 2;
        }
        calls *= 10;
        for (int k = 0; k < reps; k++) {
                double t0 = cpu_ns();

                for (long i = 0; i < calls; i++)
                        if ((r = op(arg)) < 0)
                                die("operation", r);
                per[k] = (cpu_ns() - t0) / (double) calls;
        }
        return median(per, reps);
}

/* ---- the vault update ------------------------------------------------------------------ */

struct vcase {
        struct vault_params v;
        uint8_t *keys, *out, u[SV_KEY_LEN];
};

static int op_update(void *arg) {
        struct vcase *c = arg;

        return vault_update_hardened(c->keys, &c->v, c->u, c->out);
}

static int op_hmac(void *arg) {
        struct vcase *c = arg;

        return crypto_hmac_sha256(c->u, sizeof c->u, c->keys, vault_size(&c->v), c->out);
}

static int op_kbkdf(void *arg) {
        struct vcase *c = arg;
        uint8_t context[SV_ID_MAX + 8] = { 0 };

        memcpy(context, c->v.device_id, c->v.id_len);
        return crypto_kbkdf(c->u, sizeof c->u, "sv1 vault", context, c->v.id_len + 8u, c->out, vault_size(&c->v));
}

static void bench_vault(const char *size_label, uint16_t n, uint8_t m) {
        struct vcase c = { .v = { .profile = SV_PROFILE_HARDENED, .n = n, .m = m, .p = SV_DEFAULT_P, .epoch = 1 } };
        size_t size;
        double upd, hm, kb;
        int r;

        /* The length of the ids the benchmark's devices have (svgen: "v4K-hardened-0000000"). */
        if ((r = vault_params_set_id(&c.v, "device-000000000000")) < 0)
                die("vault_params_set_id", r);
        size = vault_size(&c.v);
        c.keys = malloc(size);
        c.out = malloc(size);
        if (!c.keys || !c.out)
                die("malloc", -ENOMEM);
        if ((r = crypto_random(c.keys, size)) < 0 || (r = crypto_random(c.u, sizeof c.u)) < 0)
                die("crypto_random", r);
        upd = time_op(op_update, &c);
        hm = time_op(op_hmac, &c);
        kb = time_op(op_kbkdf, &c);
        printf("bench=vault_update label=%s-%s n=%u m=%u ns_per_B=%.3f update_us=%.2f hmac_ns_per_B=%.3f kbkdf_ns_per_B=%.3f\n",
               label, size_label, n, m, upd / (double) size, upd / 1e3, hm / (double) size, kb / (double) size);
        OPENSSL_cleanse(c.keys, size);
        OPENSSL_cleanse(c.u, sizeof c.u);
        free(c.keys);
        free(c.out);
}

/* ---- the record layer ------------------------------------------------------------------ */

struct rcase {
        struct record_chain tx, rx;
        size_t len;
        uint8_t payload[RECORD_PAYLOAD_MAX];
        uint8_t frames[VB_BATCH][RECORD_FRAME_MAX];
        size_t frame_len[VB_BATCH];
        uint8_t out[RECORD_PAYLOAD_MAX];
};

static void chains_reset(struct rcase *c) {
        uint8_t a[RECORD_SECRET_LEN], b[RECORD_SECRET_LEN];

        memset(a, 0x5a, sizeof a);
        memcpy(b, a, sizeof b);
        record_init(&c->tx, a);
        record_init(&c->rx, b);
}

/* VB_BATCH records sealed; the chains restart when the batch has been opened too. */
static int op_seal_batch(void *arg) {
        struct rcase *c = arg;
        int r;

        chains_reset(c);
        for (int i = 0; i < VB_BATCH; i++)
                if ((r = record_seal(&c->tx, SV_MSG_DATA, c->payload, c->len, c->frames[i], sizeof c->frames[i],
                                     &c->frame_len[i])) < 0)
                        return r;
        return 0;
}

static int op_open_batch(void *arg) {
        struct rcase *c = arg;
        size_t got;
        int r;

        for (int i = 0; i < VB_BATCH; i++)
                if ((r = record_open(&c->rx, c->frames[i], c->frame_len[i], c->out, sizeof c->out, &got)) < 0)
                        return r;
        return 0;
}

/* Open needs the batch sealed by a chain in step: seal once, then time opening the same
 * frames from a receiver reset each time (its key sequence is the sealer's). */
static int op_open_again(void *arg) {
        struct rcase *c = arg;
        uint8_t a[RECORD_SECRET_LEN];

        memset(a, 0x5a, sizeof a);
        record_init(&c->rx, a);
        return op_open_batch(c);
}

static void bench_record(size_t len) {
        static struct rcase c;
        double seal, open;
        int r;

        c.len = len;
        memset(c.payload, 0xa5, sizeof c.payload);
        seal = time_op(op_seal_batch, &c) / VB_BATCH;
        chains_reset(&c);
        if ((r = op_seal_batch(&c)) < 0)
                die("record_seal", r);
        open = time_op(op_open_again, &c) / VB_BATCH;
        printf("bench=record label=%s-%zuB payload_B=%zu seal_us=%.3f open_us=%.3f\n", label, len, len, seal / 1e3, open / 1e3);
        record_wipe(&c.tx);
        record_wipe(&c.rx);
}

/* ---- the floor ---------------------------------------------------------------------------- */

static uint8_t bulk[1 << 20];

static int op_sha_bulk(void *arg) {
        uint8_t md[32];

        (void) arg;
        return crypto_sha256(bulk, sizeof bulk, md);
}

static SHA256_CTX chain;

/* One compression per call, each on the state the last one left (as the outer hash of a
 * KBKDF block follows its inner hash). */
static int op_sha_block(void *arg) {
        (void) arg;
        SHA256_Transform(&chain, bulk);
        return 0;
}

static void bench_floor(void) {
        double bulk_ns = time_op(op_sha_bulk, NULL) / (sizeof bulk / 64), one_ns;

        if (SHA256_Init(&chain) != 1)
                die("SHA256_Init", -EIO);
        one_ns = time_op(op_sha_block, NULL);
        printf("bench=sha256 label=%s block_ns=%.2f one_block_ns=%.2f vault_floor_ns_per_B=%.3f\n", label, bulk_ns,
               one_ns, bulk_ns / 64 + 2 * one_ns / 32);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "reps", required_argument, NULL, 'r' },
                { "ms", required_argument, NULL, 't' },
                { "label", required_argument, NULL, 'l' },
                {}
        };
        int o;

        while ((o = getopt_long(argc, argv, "l:", opts, NULL)) >= 0)
                switch (o) {
                case 'r':
                        reps = atoi(optarg);
                        if (reps < 1 || reps > VB_REPS_MAX) {
                                fprintf(stderr, "vaultbench: invalid --reps '%s': 1..%d\n", optarg, VB_REPS_MAX);
                                return 2;
                        }
                        break;
                case 't':
                        run_ms = atoi(optarg);
                        if (run_ms < 1 || run_ms > 10000) {
                                fprintf(stderr, "vaultbench: invalid --ms '%s': 1..10000\n", optarg);
                                return 2;
                        }
                        break;
                case 'l':
                        label = optarg;
                        break;
                default:
                        fprintf(stderr, "usage: vaultbench [--reps R] [--ms T] [-l LABEL]\n");
                        return 2;
                }
        if (optind != argc) {
                fprintf(stderr, "vaultbench: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        bench_floor();
        bench_vault("4K", 256, 16);
        bench_vault("64K", 4096, 16);
        bench_record(64);
        bench_record(RECORD_PAYLOAD_MAX);
        return 0;
}
