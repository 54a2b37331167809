/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-connect.h"

static bool uid_trusted(uid_t uid, const char *owner) {
        struct passwd pw, *found = NULL;
        char buf[1024];

        if (uid == 0 || uid == geteuid() || uid == getuid())
                return true;
        if (!owner || getpwnam_r(owner, &pw, buf, sizeof buf, &found) != 0 || !found)
                return false;
        return found->pw_uid == uid;
}

int unix_connect_trusted(const char *path, int type, int timeout_s, const char *owner, int *ret_fd,
                         uid_t *ret_peer_uid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = timeout_s };
        struct ucred cred = { .uid = (uid_t) -1 };
        socklen_t len = sizeof cred;
        size_t n = strlen(path);
        int fd, r;

        if (n >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, n + 1);
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* SO_SNDTIMEO also bounds connect() to a listener whose backlog is full (EAGAIN). */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
            connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = errno == EAGAIN ? -ETIMEDOUT : -errno;
                goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred) {
                r = -EPROTO;
                goto fail;
        }
        if (ret_peer_uid)
                *ret_peer_uid = cred.uid;
        if (!uid_trusted(cred.uid, owner)) {
                r = -EPERM;
                goto fail;
        }
        *ret_fd = fd;
        return 0;
fail:
        close(fd);
        return r;
}
