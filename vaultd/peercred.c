/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "vaultd.h"

/* First guess for SO_PEERGROUPS; on ERANGE the kernel says how much it needs (at most
 * NGROUPS_MAX = 65536 groups) and nothing was copied, so we ask again with that size. */
#define PEERGROUPS_GUESS 64
#define PEERGROUPS_LIMIT 65536

static int resolve(char *const *names, size_t n, gid_t *gids, size_t *ret_n, const char *kind,
                   void (*missing)(const char *kind, const char *name)) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                struct group *gr;

                errno = 0;
                gr = getgrnam(names[i]);
                if (!gr) {
                        if (errno != 0 && errno != ENOENT && errno != ESRCH)
                                return -errno;
                        missing(kind, names[i]);
                        continue;
                }
                gids[k++] = gr->gr_gid;
        }
        *ret_n = k;
        return 0;
}

int peercred_resolve_groups(struct vaultd *d, void (*missing)(const char *kind, const char *name)) {
        int r;

        r = resolve(d->cfg->allow_groups, d->cfg->n_allow_groups, d->allowed_gids, &d->n_allowed_gids,
                    "Allowed", missing);
        if (r >= 0)
                r = resolve(d->cfg->admin_groups, d->cfg->n_admin_groups, d->admin_gids, &d->n_admin_gids,
                            "Admin", missing);
        if (r < 0)
                return r;
        d->self_uid = geteuid();
        return 0;
}

static bool gid_in(const gid_t *gids, size_t n, gid_t g) {
        for (size_t i = 0; i < n; i++)
                if (gids[i] == g)
                        return true;
        return false;
}

/* The class a group membership gives: an admin group gives PEER_ADMIN, which implies use. */
static enum peer_class gid_class(const struct vaultd *d, gid_t g) {
        if (gid_in(d->admin_gids, d->n_admin_gids, g))
                return PEER_ADMIN;
        if (gid_in(d->allowed_gids, d->n_allowed_gids, g))
                return PEER_USER;
        return PEER_DENIED;
}

/*
 * Who may ask vaultd for what. Root and vaultd's own user may do anything; members of an admin
 * group (--admin-group, default vault-admin) too; members of the allowed groups (--allow-group,
 * default vault) may read the status and authenticate, but not provision: provisioning replaces
 * the vault, and whoever chooses the new bundle chooses the server that root's next
 * authentication talks to and the key it gets. Anyone else may not talk to vaultd at all.
 *
 * Credentials come from the kernel (SO_PEERCRED, SO_PEERGROUPS), captured when the peer called
 * connect(), so a peer cannot pass its socket to a less privileged process to gain rights, nor
 * drop them after connecting to confuse us. The primary gid counts as a membership, like the
 * file system's permission checks.
 */
int peercred_check(const struct vaultd *d, int fd, uid_t *ret_uid, pid_t *ret_pid) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        _cleanup_free_ gid_t *groups = NULL;
        enum peer_class best;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (len != sizeof cred)
                return -EIO;
        *ret_uid = cred.uid;
        *ret_pid = cred.pid;
        if (cred.uid == 0 || cred.uid == d->self_uid)
                return PEER_ADMIN;
        best = gid_class(d, cred.gid);
        if (best == PEER_ADMIN || d->n_allowed_gids + d->n_admin_gids == 0)
                return best;

        len = PEERGROUPS_GUESS * sizeof *groups;
        groups = malloc(len);
        if (!groups)
                return -ENOMEM;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                gid_t *bigger;

                if (errno != ERANGE || len > PEERGROUPS_LIMIT * sizeof *groups)
                        return errno == ERANGE ? -E2BIG : -errno;
                bigger = realloc(groups, len);
                if (!bigger)
                        return -ENOMEM;
                groups = bigger;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                        return -errno;
        }
        for (size_t i = 0; i < len / sizeof *groups && best != PEER_ADMIN; i++) {
                enum peer_class c = gid_class(d, groups[i]);

                if (c > best)
                        best = c;
        }
        return best;
}
