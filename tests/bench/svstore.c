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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "store.h"

struct count_file {
        sqlite3_file base;
        sqlite3_file *real;
        bool wal, main_db;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs count_vfs;
static unsigned long long wal_pages, wal_bytes, db_pages, syncs;
static int page_size = 4096;

#define REAL(f) (((struct count_file *) (f))->real)

static int c_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) {
        struct count_file *c = (struct count_file *) f;

        if (c->wal) {
                wal_bytes += (unsigned long long) n;
                wal_pages += n == page_size;
        } else if (c->main_db)
                db_pages += n == page_size;
        return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size) { return REAL(f)->pMethods->xTruncate(REAL(f), size); }
static int c_sync(sqlite3_file *f, int flags) {
        if (((struct count_file *) f)->wal)
                syncs++;
        return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int c_file_size(sqlite3_file *f, sqlite3_int64 *size) { return REAL(f)->pMethods->xFileSize(REAL(f), size); }
static int c_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int c_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int c_check_reserved(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int c_file_control(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int c_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int c_device_characteristics(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int c_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **pp) { return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, pp); }
static int c_shm_lock(sqlite3_file *f, int off, int n, int flags) { return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags); }
static void c_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int c_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int c_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp); }
static int c_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods count_io = {
        3, c_close, c_read, c_write, c_truncate, c_sync, c_file_size, c_lock, c_unlock,
        c_check_reserved, c_file_control, c_sector_size, c_device_characteristics, c_shm_map,
        c_shm_lock, c_shm_barrier, c_shm_unmap, c_fetch, c_unfetch,
};

static int c_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out) {
        struct count_file *c = (struct count_file *) f;
        int rc;

        (void) vfs;
        c->real = (sqlite3_file *) (c + 1);
        c->wal = flags & SQLITE_OPEN_WAL;
        c->main_db = flags & SQLITE_OPEN_MAIN_DB;
        c->base.pMethods = NULL;
        rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out);
        if (rc == SQLITE_OK && c->real->pMethods)
                c->base.pMethods = &count_io;
        return rc;
}

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
        unsigned long long w0 = 0, b0 = 0, d0 = 0, s0 = 0, hs = 0, batches = 0;
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
        real_vfs = sqlite3_vfs_find(NULL);
        count_vfs = *real_vfs;
        count_vfs.zName = "svstore-count";
        count_vfs.szOsFile = (int) sizeof(struct count_file) + real_vfs->szOsFile;
        count_vfs.xOpen = c_open;
        if (sqlite3_vfs_register(&count_vfs, 1) != SQLITE_OK || RAND_bytes(master, sizeof master) != 1)
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
                        w0 = wal_pages, b0 = wal_bytes, d0 = db_pages, s0 = syncs, c0 = cpu_s();
                        hs = batches = 0;
                }
                if ((r = store_batch_begin(s)) < 0)
                        die("begin", s, r);
                for (unsigned k = 0; k < batch; k++) {
                        unsigned i = m3 + k, j = m5 + k;

                        /* M3 of device i: its next vault, pending. */
                        snprintf(id, sizeof id, "dev-%07u", i);
                        RAND_bytes(vault, (int) len);
                        if ((r = store_set_pending(s, id, enrollment[i], epoch[i], vault, len)) < 0)
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
               (double) (wal_pages - w0) / (double) hs, (double) (wal_bytes - b0) / 1024.0 / (double) hs,
               (double) (db_pages - d0) / (double) hs, (double) (syncs - s0) / (double) batches,
               (cpu_s() - c0) * 1e6 / (double) hs);
        store_close(s);
        free(vault);
        free(epoch);
        free(enrollment);
        return 0;
}
