/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "vfs-count.h"

struct count_file {
        sqlite3_file base;
        sqlite3_file *real;
        bool wal, main_db;
};

struct vfs_count vfs_count;
static sqlite3_vfs *real_vfs;
static sqlite3_vfs count_vfs;
static int page;

#define REAL(f) (((struct count_file *) (f))->real)

static int c_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) {
        struct count_file *c = (struct count_file *) f;

        if (c->wal) {
                vfs_count.wal_bytes += (uint64_t) n;
                vfs_count.wal_pages += n == page;
        } else if (c->main_db)
                vfs_count.db_pages += n == page;
        return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size) { return REAL(f)->pMethods->xTruncate(REAL(f), size); }
static int c_sync(sqlite3_file *f, int flags) {
        struct count_file *c = (struct count_file *) f;

        if (c->wal)
                vfs_count.wal_syncs++;
        else if (c->main_db)
                vfs_count.db_syncs++;
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

int vfs_count_install(int page_size) {
        real_vfs = sqlite3_vfs_find(NULL);
        if (!real_vfs || real_vfs->iVersion < 3)
                return SQLITE_ERROR;
        page = page_size;
        count_vfs = *real_vfs;
        count_vfs.zName = "vfs-count";
        count_vfs.szOsFile = (int) sizeof(struct count_file) + real_vfs->szOsFile;
        count_vfs.xOpen = c_open;
        return sqlite3_vfs_register(&count_vfs, 1);
}

void vfs_count_remove(void) {
        sqlite3_vfs_unregister(&count_vfs);
}
