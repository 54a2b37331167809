/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A SQLite VFS shim for tests and benchmarks: every file is the default VFS's, and what
 * reaches the files is counted. vfs_count_install() makes it the default VFS (for the
 * connections opened afterwards); vfs_count_remove() undoes that. Returns SQLite codes.
 */

#include <stdint.h>

struct vfs_count {
        uint64_t wal_syncs, db_syncs;   /* xSync of a write-ahead log, of a main database */
        uint64_t wal_pages, wal_bytes;  /* xWrite to a WAL: of a page's size (frames), all */
        uint64_t db_pages;              /* xWrite of a page's size to a main database (checkpoints) */
};

extern struct vfs_count vfs_count;

int vfs_count_install(int page_size);
void vfs_count_remove(void);
