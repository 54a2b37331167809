/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devicectl.h"

/*
 * The bundle is as secret as the vault: it is destroyed once vaultd holds the vault.
 * Overwriting before unlinking is best effort on journaling or copy-on-write file
 * systems, which is why bundles belong on tmpfs in the first place (devicectl(1)).
 */
static int destroy_file(int fd, const char *path) {
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
        if (fsync(fd) < 0 || unlink(path) < 0)
                return -errno;
        return 0;
}

int verb_provision(struct devicectl *ctl, int argc, char *argv[]) {
        enum { ARG_KEEP = 0x100 };
        static const struct option options[] = {
                { "help",        no_argument, NULL, 'h' },
                { "force",       no_argument, NULL, 'f' },
                { "keep-bundle", no_argument, NULL, ARG_KEEP },
                { 0 }
        };
        struct vaultd_conn conn;
        struct ipc_reply rep;
        uint8_t buf[IPC_PACKET_MAX];
        bool force = false, keep = false;
        const char *path;
        struct stat st;
        int c, r, fd;

        while ((c = getopt_long(argc, argv, "hf", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: devicectl provision BUNDLE [--force] [--keep-bundle]\n\n"
                               "Hand an enrollment bundle to vaultd, which seals the vault with the TPM;\n"
                               "then overwrite and delete the bundle file.\n\n"
                               "  -f --force        replace an existing vault\n"
                               "     --keep-bundle  leave the bundle file in place\n");
                        return EXIT_OK;
                case 'f':
                        force = true;
                        break;
                case ARG_KEEP:
                        keep = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "devicectl: provision takes exactly one bundle file\n");
                return EXIT_USAGE;
        }
        path = argv[optind];

        fd = open(path, (keep ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "devicectl: cannot open bundle '%s': %s\n", path, strerror(errno));
                return EXIT_FAILURE_OTHER;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "devicectl: bundle '%s' is not a regular file\n", path);
                close(fd);
                return EXIT_FAILURE_OTHER;
        }
        if (st.st_mode & 077)
                fprintf(stderr, "devicectl: warning: bundle '%s' is readable by others (mode %04o)\n",
                        path, (unsigned) (st.st_mode & 07777));

        r = vaultd_connect(&conn, ctl->socket_path);
        if (r < 0) {
                fprintf(stderr, "devicectl: cannot reach vaultd at '%s': %s\n", ctl->socket_path, strerror(-r));
                close(fd);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        /* vaultd reads the bundle through the descriptor: the secret never crosses the socket. */
        r = vaultd_call(&conn, IPC_OP_PROVISION, force ? IPC_FLAG_FORCE : 0, NULL, 0, fd, buf, sizeof buf, &rep);
        vaultd_disconnect(&conn);
        if (r < 0) {
                fprintf(stderr, "devicectl: vaultd at '%s' did not answer: %s\n", ctl->socket_path, strerror(-r));
                close(fd);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (rep.status != IPC_OK) {
                close(fd);
                return vaultd_reply_error("provision", &rep);
        }
        if (!keep) {
                r = destroy_file(fd, path);
                if (r < 0) {
                        fprintf(stderr, "devicectl: vault provisioned, but destroying bundle '%s' failed: %s\n",
                                path, strerror(-r));
                        close(fd);
                        return EXIT_FAILURE_OTHER;
                }
        }
        close(fd);
        printf("provisioned; bundle %s\n", keep ? "kept" : "destroyed");
        return EXIT_OK;
}
