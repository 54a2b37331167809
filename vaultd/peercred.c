/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vaultd.h"

/* First guess for SO_PEERGROUPS; on ERANGE the kernel says how much it needs (at most
 * NGROUPS_MAX = 65536 groups) and nothing was copied, so we ask again with that size. */
#define PEERGROUPS_GUESS 64
#define PEERGROUPS_LIMIT 65536

int peercred_resolve_groups(struct vaultd *d, void (*missing)(const char *name)) {
        d->n_allowed_gids = 0;
        for (size_t i = 0; i < d->cfg->n_allow_groups; i++) {
                struct group *gr;

                errno = 0;
                gr = getgrnam(d->cfg->allow_groups[i]);
                if (!gr) {
                        if (errno != 0 && errno != ENOENT && errno != ESRCH)
                                return -errno;
                        missing(d->cfg->allow_groups[i]);
                        continue;
                }
                d->allowed_gids[d->n_allowed_gids++] = gr->gr_gid;
        }
        d->self_uid = geteuid();
        return 0;
}

static bool gid_allowed(const struct vaultd *d, gid_t g) {
        for (size_t i = 0; i < d->n_allowed_gids; i++)
                if (d->allowed_gids[i] == g)
                        return true;
        return false;
}

/*
 * Who may ask vaultd for anything: root, vaultd's own user, and members of the allowed groups.
 * Credentials come from the kernel (SO_PEERCRED, SO_PEERGROUPS), captured when the peer called
 * connect(), so a peer cannot pass its socket to a less privileged process to gain rights, nor
 * drop them after connecting to confuse us. The primary gid counts as a membership, like the
 * file system's permission checks.
 */
int peercred_check(const struct vaultd *d, int fd, uid_t *ret_uid, pid_t *ret_pid) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        gid_t *groups;
        int r = 0;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (len != sizeof cred)
                return -EIO;
        *ret_uid = cred.uid;
        *ret_pid = cred.pid;
        if (cred.uid == 0 || cred.uid == d->self_uid || gid_allowed(d, cred.gid))
                return 1;
        if (d->n_allowed_gids == 0)
                return 0;

        len = PEERGROUPS_GUESS * sizeof *groups;
        groups = malloc(len);
        if (!groups)
                return -ENOMEM;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                gid_t *bigger;

                if (errno != ERANGE || len > PEERGROUPS_LIMIT * sizeof *groups) {
                        r = errno == ERANGE ? -E2BIG : -errno;
                        goto out;
                }
                bigger = realloc(groups, len);
                if (!bigger) {
                        r = -ENOMEM;
                        goto out;
                }
                groups = bigger;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                        r = -errno;
                        goto out;
                }
        }
        for (size_t i = 0; i < len / sizeof *groups; i++)
                if (gid_allowed(d, groups[i])) {
                        r = 1;
                        break;
                }
out:
        free(groups);
        return r;
}
