/* SPDX-License-Identifier: MIT */
/*
 * vaultd's key file: a secret kept outside the state directory, from which the auth value of the
 * sealed KEK is derived (docs/vault-file.md §1), so that the vault file and TPM access are not
 * enough to unseal it: a backup of the state directory, or another process that may use the TPM,
 * also needs this file, which only vaultd's user (and root) can read.
 *
 *   auth = HKDF-SHA256(salt = none, ikm = file contents, info = "sv1 vault KEK auth", L = 32)
 *
 * The file holds 32..4096 bytes (vaultd writes 32 random ones when it creates it), is a regular
 * file and is accessible to nobody but its owner (mode 0600 or 0400; systemd credentials are).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "crypto.h"
#include "vaultd.h"

#define KEYFILE_MIN     32
#define KEYFILE_MAX     4096
#define KEYFILE_INFO    "sv1 vault KEK auth"

/* Read the whole file into buf (at least KEYFILE_MAX bytes of secret memory). */
static int read_key(const char *path, uint8_t *buf, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t done = 0;
        int r = 0;

        /* O_NONBLOCK: a FIFO at the path must not hang vaultd before the S_ISREG check. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode) || st.st_size < KEYFILE_MIN || st.st_size > KEYFILE_MAX)
                r = -EBADMSG;
        else if (st.st_mode & 0077)
                r = -EPERM;
        while (r == 0 && done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        r = n < 0 ? -errno : -EBADMSG;
                else
                        done += (size_t) n;
        }
        if (r < 0)
                return r;
        *ret_len = done;
        return 0;
}

/* Create the file with KEYFILE_MIN random bytes (its directory too, mode 0700, if missing); an
 * existing file is left alone (-EEXIST, and the caller reads it). Durable before it returns: a
 * vault is about to be sealed under it. */
static int create_key(const char *path, uint8_t *buf) {
        _cleanup_close_ int dfd = -EBADF;
        char dir[PATH_MAX];
        char *slash;
        int fd, r;

        if (snprintf(dir, sizeof dir, "%s", path) >= (int) sizeof dir)
                return -ENAMETOOLONG;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return -EINVAL;
        *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;

        r = crypto_random(buf, KEYFILE_MIN);
        if (r < 0)
                return r;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        for (size_t done = 0; r == 0 && done < KEYFILE_MIN;) {
                ssize_t n = write(fd, buf + done, KEYFILE_MIN - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = -errno;
                else
                        done += (size_t) n;
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        OPENSSL_cleanse(buf, KEYFILE_MIN);
        if (r < 0) {
                (void) unlink(path);
                return r;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return r;
}

int keyfile_auth(const char *path, bool create, uint8_t auth[VAULTD_KEK_AUTH_LEN]) {
        uint8_t *buf;
        size_t len = 0;
        int r;

        r = secmem_alloc(KEYFILE_MAX + VAULTD_KEK_AUTH_LEN, (void **) &buf);
        if (r < 0)
                return r;
        r = read_key(path, buf, &len);
        if (r == -ENOENT && create) {
                r = create_key(path, buf);
                if (r >= 0 || r == -EEXIST)
                        r = read_key(path, buf, &len);
        }
        /* Derived after the file's bytes (secret memory), copied out only on success. */
        if (r >= 0)
                r = crypto_hkdf(NULL, 0, buf, len, KEYFILE_INFO, buf + KEYFILE_MAX, VAULTD_KEK_AUTH_LEN);
        if (r >= 0)
                memcpy(auth, buf + KEYFILE_MAX, VAULTD_KEK_AUTH_LEN);
        secmem_free(buf, KEYFILE_MAX + VAULTD_KEK_AUTH_LEN);
        return r < 0 ? r : 0;
}

const char *keyfile_strerror(int r) {
        switch (r) {
        case -EBADMSG:
                return "not a regular file of 32 to 4096 bytes";
        case -EPERM:
                return "accessible to group or others (it must be mode 0600 or 0400)";
        default:
                return strerror(-r);
        }
}
