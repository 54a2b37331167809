/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "vaultd.h"

#define TEMP_PREFIX "vault.tmp."

DEFINE_POINTER_CLEANUP(DIR *, closedir)

/* Temp files left by a crash between create and rename hold nothing the vault file does not
 * (and are encrypted the same way): remove them at start. */
static void remove_stale_temps(int dirfd) {
        _cleanup_(closedirp) DIR *dir = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct dirent *de;

        fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        dir = fdopendir(fd);
        if (!dir)
                return;
        (void) TAKE_FD(fd);     /* dir owns it now */
        while ((de = readdir(dir)))
                if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0)
                        (void) unlinkat(dirfd, de->d_name, 0);
}

int storage_open_dir(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        remove_stale_temps(fd);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int storage_read(int dirfd, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *data = NULL;
        struct stat st;
        size_t done = 0;

        fd = openat(dirfd, VAULTD_VAULT_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uintmax_t) st.st_size > VAULTFILE_MAX)
                return -EBADMSG;
        data = malloc((size_t) st.st_size);
        if (!data)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, data + done, (size_t) st.st_size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EBADMSG;       /* shrank under us */
                done += (size_t) n;
        }
        *ret = TAKE_PTR(data);
        *ret_len = done;
        return 0;
}

static int write_all(int fd, const uint8_t *data, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, data, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                data += n;
                len -= (size_t) n;
        }
        return 0;
}

/*
 * Syncs the directory after the rename. A failure is retried once only if it was an interrupted
 * call: after EIO (or ENOSPC...) Linux reports a write-back error to a descriptor once and then
 * forgets it, so a second fsync() would succeed without the rename being any more durable, and
 * a caller trusting it would advance the TPM counter past a file that a power loss can undo.
 */
static int sync_dir(int dirfd) {
        for (unsigned attempt = 0;; attempt++) {
                int r;

                /* Test-only (docs/vault-file.md §7): the "replaced, not known to be durable" path. */
                if (fault_fail(VAULTD_FAULT_DIR_FSYNC))
                        return -EIO;
                if (fsync(dirfd) >= 0)
                        return 0;
                r = -errno;
                if (r != -EINTR || attempt > 0)
                        return r;
        }
}

/*
 * The new generation must either be entirely on disk or not at all: write a temp file in the
 * same directory (same file system, so rename() is atomic), make its data durable, rename it
 * over the old file, and make the rename durable by syncing the directory. A crash at any point
 * leaves either the old or the new file under the final name.
 *
 * Once rename() has succeeded the old file is gone from the directory: a failure after that is
 * not "nothing changed", and is reported as -ENOTRECOVERABLE so that the caller neither goes on
 * with the old generation nor acts as if the new one were durable.
 */
int storage_write(int dirfd, const uint8_t *data, size_t len) {
        char name[sizeof TEMP_PREFIX + 16];
        uint8_t rnd[8];
        int fd, r;

        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                return -EIO;
        snprintf(name, sizeof name, TEMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && renameat(dirfd, name, dirfd, VAULTD_VAULT_FILE) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dirfd, name, 0);
                return r;
        }
        if (sync_dir(dirfd) < 0)
                return -ENOTRECOVERABLE;
        return 0;
}
