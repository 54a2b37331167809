/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "devicectl.h"
#include "log.h"

/*
 * The bundle is as secret as the vault: it is destroyed once vaultd holds the vault.
 * Overwriting before unlinking is best effort on journaling or copy-on-write file
 * systems, which is why bundles belong on tmpfs in the first place (devicectl(1)).
 * The overwrite goes through the descriptor vaultd read, so it hits that very file.
 */
static int overwrite_file(int fd) {
        uint8_t zeros[4096] = { 0 };
        struct stat st;
        off_t done = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        while (done < st.st_size) {
                size_t chunk = (size_t) (st.st_size - done) < sizeof zeros ? (size_t) (st.st_size - done) : sizeof zeros;
                ssize_t n = pwrite(fd, zeros, chunk, done);

                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                done += n;
        }
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

/*
 * The unlink goes by name, after vaultd's TPM work, which takes long enough for someone
 * to put another file at the path (or swap a directory on it). Only the file we opened
 * and overwrote is unlinked: -ESTALE if the name now leads elsewhere. A swap between the
 * lstat() and the unlink() remains possible; it needs write access to the directory,
 * which already allows deleting whatever is there.
 */
static int unlink_same_file(const char *path, int fd) {
        struct stat opened, now;

        if (fstat(fd, &opened) < 0 || lstat(path, &now) < 0)
                return -errno;
        if (opened.st_dev != now.st_dev || opened.st_ino != now.st_ino)
                return -ESTALE;
        if (unlink(path) < 0)
                return -errno;
        return 0;
}

/* Explains a failed open() of the bundle; a raw strerror() would not say what to do. */
static void open_error(const char *path, int err, bool keep) {
        struct stat st;

        if (err == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
                log_error("bundle '%s' is a symbolic link: refused (name the file itself)", path);
        else if (err == EROFS)
                log_error("cannot overwrite bundle '%s' (read-only file system): "
                        "use --keep-bundle to keep it", path);
        else if (err == EACCES && !keep && access(path, R_OK) == 0)
                log_error("cannot overwrite bundle '%s' (no write permission): "
                        "use --keep-bundle to keep it", path);
        else
                log_error_errno(err, "cannot open bundle '%s': %m", path);
}

/*
 * Destroying the bundle needs a writable, searchable directory. Checked before vaultd
 * provisions anything, so that we do not end with a new vault and a bundle we cannot
 * delete. In a sticky directory (/tmp) only the owner of the file or of the directory
 * may delete it. Returns 0 or prints why not and returns -errno.
 */
static int check_deletable(const char *path, const struct stat *file) {
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        struct stat st;

        if (!slash)
                snprintf(dir, sizeof dir, ".");
        else if (slash == path)
                snprintf(dir, sizeof dir, "/");
        else if ((size_t) (slash - path) < sizeof dir)
                snprintf(dir, sizeof dir, "%.*s", (int) (slash - path), path);
        else
                return -ENAMETOOLONG;   /* cannot happen: open() accepted the path */

        if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
                int r = -errno;

                if (r == -EROFS || r == -EACCES)
                        log_error("cannot delete bundle '%s' afterwards: directory '%s' is %s: "
                                "use --keep-bundle to keep it", path, dir,
                                r == -EROFS ? "on a read-only file system" : "not writable");
                else
                        log_error_errno(r, "cannot check directory '%s' of bundle '%s': %m", dir, path);
                return r;
        }
        if (stat(dir, &st) < 0) {
                int r = -errno;

                log_error_errno(r, "cannot check directory '%s' of bundle '%s': %m", dir, path);
                return r;
        }
        if ((st.st_mode & S_ISVTX) && geteuid() != 0 && geteuid() != file->st_uid && geteuid() != st.st_uid) {
                log_error("cannot delete bundle '%s' afterwards: it belongs to another user in "
                        "sticky directory '%s': use --keep-bundle to keep it", path, dir);
                return -EPERM;
        }
        return 0;
}

/*
 * Opens the bundle without following a symbolic link and without blocking: a FIFO or a
 * device would block open() (or read()) forever, so O_NONBLOCK until fstat() has shown a
 * regular file, then it is cleared again for vaultd's reads through the passed descriptor.
 */
static int open_bundle(const char *path, bool keep, int *ret_fd, struct stat *ret_st) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int fl;

        fd = open(path, (keep ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int r = -errno;

                open_error(path, -r, keep);
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                log_error("bundle '%s' is not a regular file", path);
                return -EINVAL;
        }
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                return log_error_errno(errno, "cannot set up bundle '%s': %m", path);
        }
        *ret_fd = TAKE_FD(fd);
        *ret_st = st;
        return 0;
}

/* vaultd refused: a damaged or unchecked bundle has its own exit code; the bundle stays. */
static int provision_refused(const char *path, const struct ipc_reply *rep) {
        int ret = vaultd_reply_error("provision", rep);

        if (rep->status != IPC_BAD_BUNDLE)
                return ret;
        switch (rep->detail) {
        case IPC_BUNDLE_DAMAGED:
                log_error("bundle '%s' is damaged: nothing was stored and the bundle was kept; "
                          "ask the server's operator for a new one", path);
                return EXIT_BUNDLE_DAMAGED;
        case IPC_BUNDLE_UNCHECKED:
                log_error("bundle '%s' has no check: if you trust its copy, run again with --accept-unchecked", path);
                return EXIT_BUNDLE_UNCHECKED;
        default:
                return ret;
        }
}

enum { ARG_KEEP = 0x100, ARG_ACCEPT_UNCHECKED };
const struct option verb_provision_options[] = {
        { "help",        no_argument, NULL, 'h' },
        { "force",       no_argument, NULL, 'f' },
        { "keep-bundle", no_argument, NULL, ARG_KEEP },
        { "accept-unchecked", no_argument, NULL, ARG_ACCEPT_UNCHECKED },
        GLOBAL_OPTIONS,
        { 0 }
};

int verb_provision(struct devicectl *ctl, int argc, char *argv[]) {
        struct vaultd_conn conn;
        struct ipc_reply rep;
        uint8_t buf[IPC_PACKET_MAX];
        bool keep = false;
        uint16_t flags = 0;
        const char *path;
        struct stat st = { 0 };         /* set by open_bundle(); gcc cannot tell that errno != 0 */
        _cleanup_close_ int fd = -EBADF;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hf" GLOBAL_SHORT_OPTIONS, verb_provision_options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: devicectl provision BUNDLE [--force] [--keep-bundle] [--accept-unchecked]\n\n"
                               "Hand an enrollment bundle to vaultd, which checks it and seals the vault with\n"
                               "the TPM; then overwrite and delete the bundle file.\n\n"
                               "  -f --force             replace an existing (or refused) vault\n"
                               "     --keep-bundle       leave the bundle file in place\n"
                               "     --accept-unchecked  take a bundle without a check line (written before\n"
                               "                         protocol 1.1): damage to it goes unnoticed\n");
                        return EXIT_OK;
                case 'f':
                        flags |= IPC_FLAG_FORCE;
                        break;
                case ARG_KEEP:
                        keep = true;
                        break;
                case ARG_ACCEPT_UNCHECKED:
                        flags |= IPC_FLAG_ACCEPT_UNCHECKED;
                        break;
                default:
                        r = global_option(ctl, c, optarg);
                        if (r < 0)
                                return EXIT_USAGE;
                        if (r == 0) {
                                option_error("provision", c, argv, verb_provision_options);
                                return EXIT_USAGE;
                        }
                }
        if (optind + 1 != argc) {
                log_error("provision takes exactly one bundle file");
                return EXIT_USAGE;
        }
        path = argv[optind];

        if (open_bundle(path, keep, &fd, &st) < 0)
                return EXIT_FAILURE_OTHER;
        if (st.st_mode & 077)
                log_warning("warning: bundle '%s' is readable by others (mode %04o)",
                        path, (unsigned) (st.st_mode & 07777));
        if (!keep && check_deletable(path, &st) < 0)
                return EXIT_FAILURE_OTHER;

        r = vaultd_connect(&conn, ctl->socket_path);
        if (r < 0) {
                vaultd_connect_failed(&conn, r, ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        /* vaultd reads the bundle through the descriptor: the secret never crosses the socket. */
        r = vaultd_call(&conn, IPC_OP_PROVISION, flags, NULL, 0, fd, buf, sizeof buf, &rep);
        vaultd_disconnect(&conn);
        if (r < 0) {
                log_error_errno(r, "vaultd at '%s' did not answer: %m", ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (rep.status != IPC_OK)
                return provision_refused(path, &rep);
        if (!keep) {
                r = overwrite_file(fd);
                if (r < 0) {
                        log_error_errno(r, "vault provisioned, but overwriting bundle '%s' failed: %m", path);
                        return EXIT_FAILURE_OTHER;
                }
                r = unlink_same_file(path, fd);
                if (r == -ESTALE)
                        log_error("vault provisioned and the bundle overwritten, but '%s' is now "
                                "another file (replaced meanwhile): not deleted", path);
                else if (r < 0)
                        log_error_errno(r, "vault provisioned and the bundle overwritten, but deleting '%s' "
                                "failed: %m", path);
                if (r < 0)
                        return EXIT_FAILURE_OTHER;
        }
        printf("provisioned; bundle %s\n", keep ? "kept" : "destroyed");
        return EXIT_OK;
}
