/* SPDX-License-Identifier: MIT */
/*
 * svstore: the SQLite work of the group commit per handshake, measured on the store API
 * alone (docs/benchmarks.md, "Store layout"). A fresh database with D devices; then rounds of
 * group commits as authserver's queue.c runs them: each batch holds the pending vaults of the
 * M3s of one half of the devices (durable: one sync) and the commits and "ok" audit rows of
 * the M5s of the other half, whose pending vaults the previous batch stored. A VFS shim
 * counts what reaches the files: pages appended to the write-ahead log, pages the
 * checkpoints copy into the database file, and syncs.
 *
 *   svstore --db PATH [--devices D] [--batch B] [--rounds R] [--keys n] [--key-bytes m]
 *           [--label L]
 *
 * Prints one key=value line: wal_pages_hs (WAL frames per handshake), db_pages_hs (pages
 * written by checkpoints per handshake), syncs_batch, cpu_us_hs (this process's CPU per
 * handshake, store work only: sealing, SQLite, the syncs' system time).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "store.h"
#include "store-plain.h"
#include "vfs-count.h"

static void die(const char *what, struct store *s, int r) {
        fprintf(stderr, "svstore: %s: %s (%d)\n", what, store_last_error(s), r);
        exit(1);
}

static double cpu_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static unsigned parse(const char *s, const char *what, unsigned min, unsigned max) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max) {
                fprintf(stderr, "svstore: invalid %s '%s': %u..%u\n", what, s, min, max);
                exit(2);
        }
        return (unsigned) v;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "db", required_argument, NULL, 'd' },
                { "devices", required_argument, NULL, 'D' },
                { "batch", required_argument, NULL, 'b' },
                { "rounds", required_argument, NULL, 'r' },
                { "keys", required_argument, NULL, 'n' },
                { "key-bytes", required_argument, NULL, 'm' },
                { "label", required_argument, NULL, 'l' },
                {},
        };
        unsigned devices = 64, batch = 16, rounds = 200, n = 256, m = 16;
        const char *db = NULL, *label = "store";
        uint8_t master[STORE_MASTER_KEY_LEN], *vault;
        uint64_t *epoch, *enrollment;
        struct store *s = NULL;
        uint64_t w0 = 0, b0 = 0, d0 = 0, s0 = 0;
        unsigned long long hs = 0, batches = 0;
        double c0 = 0;
        size_t len;
        char id[32];
        int opt, r;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'd': db = optarg; break;
                case 'D': devices = parse(optarg, "--devices", 2, 1000000); break;
                case 'b': batch = parse(optarg, "--batch", 1, 100000); break;
                case 'r': rounds = parse(optarg, "--rounds", 1, 1000000); break;
                case 'n': n = parse(optarg, "--keys", 8, 4096); break;
                case 'm': m = parse(optarg, "--key-bytes", 16, 32); break;
                case 'l': label = optarg; break;
                default: return 2;
                }
        if (!db || 2 * batch > devices) {
                fprintf(stderr, "usage: svstore --db PATH [--devices D] [--batch B <= D/2] [--rounds R] "
                        "[--keys n] [--key-bytes m] [--label L]\n");
                return 2;
        }
        len = (size_t) n * m;
        if (vfs_count_install(4096) != SQLITE_OK || RAND_bytes(master, sizeof master) != 1)
                return 1;
        vault = malloc(len);
        epoch = calloc(devices, sizeof *epoch);
        enrollment = calloc(devices, sizeof *enrollment);
        if (!vault || !epoch || !enrollment)
                return 1;
        (void) unlink(db);
        r = store_open(db, master, STORE_CREATE, &s);
        if (r < 0)
                die("open", NULL, r);

        if ((r = store_batch_begin(s)) < 0)
                die("begin", s, r);
        for (unsigned i = 0; i < devices; i++) {
                struct store_device d = { .profile = 1, .n = (uint16_t) n, .m = (uint8_t) m, .p = 8 };

                snprintf(d.id, sizeof d.id, "dev-%07u", i);
                RAND_bytes(vault, (int) len);
                if ((r = store_enroll(s, &d, vault, len, 1)) < 0)
                        die("enroll", s, r);
        }
        if ((r = store_batch_commit(s, true)) < 0)
                die("commit", s, r);
        for (unsigned i = 0; i < devices; i++) {
                struct store_device d;

                snprintf(id, sizeof id, "dev-%07u", i);
                if ((r = store_get(s, id, &d, NULL, NULL, 0)) < 0)
                        die("get", s, r);
                enrollment[i] = d.enrollment;
        }

        /* Warm-up rounds first, so that the free list and the WAL are in their steady state. */
        for (unsigned round = 0; round < rounds + 20; round++) {
                unsigned m3 = (round % 2) * batch, m5 = batch - m3;      /* first index of each half */

                if (round == 20) {
                        w0 = vfs_count.wal_pages, b0 = vfs_count.wal_bytes, d0 = vfs_count.db_pages;
                        s0 = vfs_count.wal_syncs, c0 = cpu_s();
                        hs = batches = 0;
                }
                if ((r = store_batch_begin(s)) < 0)
                        die("begin", s, r);
                for (unsigned k = 0; k < batch; k++) {
                        unsigned i = m3 + k, j = m5 + k;

                        /* M3 of device i: its next vault, pending. */
                        snprintf(id, sizeof id, "dev-%07u", i);
                        RAND_bytes(vault, (int) len);
                        if ((r = plain_set_pending(s, id, enrollment[i], epoch[i], vault, len)) < 0)
                                die("set_pending", s, r);
                        /* M5 of device j, whose pending vault the previous batch stored. */
                        if (round == 0)
                                continue;
                        snprintf(id, sizeof id, "dev-%07u", j);
                        if ((r = store_commit(s, id, enrollment[j], epoch[j], 2)) < 0)
                                die("commit", s, r);
                        epoch[j]++;
                        if ((r = store_audit(s, 2, id, "127.0.0.1:40000", "ok", epoch[j])) < 0)
                                die("audit", s, r);
                        hs++;
                }
                if ((r = store_batch_commit(s, false)) < 0)
                        die("batch commit", s, r);
                batches++;
        }
        printf("bench=store label=%s vault=%zu devices=%u batch=%u hs=%llu wal_pages_hs=%.2f wal_kB_hs=%.2f "
               "db_pages_hs=%.2f syncs_batch=%.2f cpu_us_hs=%.1f\n", label, len, devices, batch, hs,
               (double) (vfs_count.wal_pages - w0) / (double) hs,
               (double) (vfs_count.wal_bytes - b0) / 1024.0 / (double) hs,
               (double) (vfs_count.db_pages - d0) / (double) hs, (double) (vfs_count.wal_syncs - s0) / (double) batches,
               (cpu_s() - c0) * 1e6 / (double) hs);
        store_close(s);
        free(vault);
        free(epoch);
        free(enrollment);
        return 0;
}
