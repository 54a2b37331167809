/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "ratelimit.h"
#include "vaultd.h"

/* Pending connections the kernel queues for us. */
#define LISTEN_BACKLOG 16
/* File descriptors accepted in one request's SCM_RIGHTS; more are closed and the request refused. */
#define PASSED_FDS_MAX 4
#define USEC_PER_SEC ((uint64_t) 1000000)
/* After accept() fails for want of descriptors or memory, the listening socket stays readable:
 * stop watching it for this long rather than spin (and flood the log) until the shortage ends. */
#define ACCEPT_PAUSE_USEC (100 * (uint64_t) 1000)
#define ACCEPT_PAUSE_ACCURACY_USEC (10 * (uint64_t) 1000)
/* Messages a peer (or a shortage) can repeat at will are logged at most once per interval. */
#define LOG_INTERVAL_USEC (10 * USEC_PER_SEC)

static struct ratelimit accept_failed_rl, conns_full_rl;

static bool log_allowed(sd_event *e, struct ratelimit *rl, unsigned *ret_suppressed) {
        uint64_t now = 0;

        (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
        return ratelimit_pass(rl, now, LOG_INTERVAL_USEC, ret_suppressed);
}

static void conn_close(struct conn *c) {
        struct vaultd *d = c->d;

        if (session_held_by(d, c)) {
                /* A handshake whose client went away is aborted: the vault is unchanged. */
                log_peer(LOG_INFO, c, NULL, d->hdr.params.device_id,
                         "handshake device=%s result=aborted epoch=%" PRIu64 " (client uid=%u pid=%d closed the connection)",
                         d->hdr.params.device_id, d->hdr.params.epoch, (unsigned) c->uid, (int) c->pid);
                session_end(d);
        }
        sd_event_source_disable_unref(c->src);
        sd_event_source_disable_unref(c->idle_timer);
        close(c->fd);
        LIST_REMOVE(conns, &d->conns, c);
        free(c);
}

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
}

/*
 * The kernel installs the descriptors of an SCM_RIGHTS message in our table as part of
 * recvmsg(), before we have looked at the packet: a packet of any kind (an empty one, a
 * malformed one, one from a refused peer) may bring them. So they are taken out of the control
 * data right after every successful recvmsg(), and every path from there closes them or hands
 * them on. At most PASSED_FDS_MAX are kept in fds; any beyond are closed at once (the control
 * buffer has room for no more, but the kernel's word is not needed for that).
 */
static size_t take_fds(struct msghdr *mh, int fds[static PASSED_FDS_MAX]) {
        size_t nfds = 0;

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                size_t k;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
                        continue;
                k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                        if (nfds < PASSED_FDS_MAX)
                                fds[nfds++] = fd;
                        else
                                close(fd);
                }
        }
        return nfds;
}

static int send_reply(struct conn *c, const struct ipc_reply *rep) {
        uint8_t pkt[IPC_PACKET_MAX];
        size_t len = 0;
        ssize_t n;
        int r;

        r = ipc_encode_reply(rep, pkt, sizeof pkt, &len);
        if (r >= 0) {
                n = send(c->fd, pkt, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                r = n < 0 ? -errno : (size_t) n != len ? -EIO : 0;
        }
        OPENSSL_cleanse(pkt, sizeof pkt);       /* CONFIRM replies carry the session key */
        return r;
}

/* One request per packet, one reply per request. Returns < 0 when the connection should close. */
static int conn_handle(struct conn *c) {
        uint8_t pkt[IPC_PACKET_MAX], out[IPC_PACKET_MAX];
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(PASSED_FDS_MAX * sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = pkt, .iov_len = sizeof pkt };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = control.buf, .msg_controllen = sizeof control.buf,
        };
        struct ipc_request req;
        struct ipc_reply rep = { 0 };
        int fds[PASSED_FDS_MAX];
        size_t nfds = 0;
        ssize_t n;
        int r;

        n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        nfds = take_fds(&mh, fds);
        /* End of file, or an empty packet (which SOCK_SEQPACKET delivers, descriptors and all):
         * neither is a request. */
        if (n == 0) {
                close_fds(fds, nfds);
                return -ECONNRESET;
        }

        /* Anything we cannot even answer (truncated, another version, unknown op) closes the peer. */
        if ((size_t) n > sizeof pkt || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
            ipc_decode_request(pkt, (size_t) n, &req) < 0) {
                log_peer(LOG_NOTICE, c, NULL, NULL, "closing connection from uid=%u pid=%d: malformed request",
                         (unsigned) c->uid, (int) c->pid);
                close_fds(fds, nfds);
                return -EBADMSG;
        }

        if (c->denied) {
                static const char msg[] = "not allowed to use vaultd";

                rep = (struct ipc_reply) { .op = req.op, .status = IPC_DENIED,
                                           .body = (const uint8_t *) msg, .body_len = sizeof msg - 1 };
                close_fds(fds, nfds);
                (void) send_reply(c, &rep);
                return -EACCES;
        }
        if (nfds > 1 || (nfds == 1 && req.op != IPC_OP_PROVISION)) {
                static const char msg[] = "unexpected file descriptors";

                close_fds(fds, nfds);
                rep = (struct ipc_reply) { .op = req.op, .status = IPC_BAD_REQUEST,
                                           .body = (const uint8_t *) msg, .body_len = sizeof msg - 1 };
                return send_reply(c, &rep);
        }

        ops_dispatch(c, &req, nfds == 1 ? fds[0] : -1, &rep, out, sizeof out);
        if (nfds == 1)
                close(fds[0]);
        r = send_reply(c, &rep);
        OPENSSL_cleanse(out, sizeof out);
        OPENSSL_cleanse(pkt, sizeof pkt);
        return r;
}

/* (Re)arms c's idle timer: the connection is closed if no request comes within usec. */
static int conn_arm_idle(struct conn *c, uint64_t usec) {
        int r;

        r = sd_event_source_set_time_relative(c->idle_timer, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->idle_timer, SD_EVENT_ONESHOT);
        return r;
}

/*
 * Every connection holds one of VAULTD_CONN_MAX slots, so none may stay quiet for ever: a
 * refused peer has VAULTD_DENIED_TIMEOUT_S to send the one request it will be answered, anyone
 * else VAULTD_IDLE_TIMEOUT_S between requests. The owner of a handshake is not idle while the
 * handshake lasts (the client is talking to the server): the handshake timer bounds it, and
 * this timer only waits for the handshake to end.
 */
static int conn_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        struct conn *c = userdata;

        if (session_held_by(c->d, c) && conn_arm_idle(c, (uint64_t) VAULTD_IDLE_TIMEOUT_S * USEC_PER_SEC) >= 0)
                return 0;
        log_peer(LOG_INFO, c, NULL, NULL, "closing %s connection from uid=%u pid=%d: no request for %d s",
                 c->denied ? "refused" : "idle", (unsigned) c->uid, (int) c->pid,
                 c->denied ? VAULTD_DENIED_TIMEOUT_S : VAULTD_IDLE_TIMEOUT_S);
        conn_close(c);
        return 0;
}

static int conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct conn *c = userdata;

        if (revents & EPOLLIN) {
                if (conn_handle(c) < 0 ||
                    (!c->denied && conn_arm_idle(c, (uint64_t) VAULTD_IDLE_TIMEOUT_S * USEC_PER_SEC) < 0))
                        conn_close(c);
                return 0;
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                conn_close(c);
        return 0;
}

static int accept_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vaultd *d = userdata;
        int r;

        r = sd_event_source_set_enabled(d->listen_src, SD_EVENT_ON);
        if (r < 0) {
                /* Without the listening socket vaultd is useless: exit, and let systemd restart it. */
                log_error_errno(r, "Failed to watch the listening socket again: %m");
                return sd_event_exit(d->event, r);
        }
        return 0;
}

/*
 * accept() failed for want of descriptors or memory. The connection stays in the queue, so the
 * listening socket stays readable and the loop would spin on it (pinging the watchdog all the
 * while, so systemd would not notice). Stop watching it for ACCEPT_PAUSE_USEC instead. The timer
 * was made at start: arming it needs neither memory nor a descriptor.
 */
static void accept_pause(struct vaultd *d) {
        int r;

        r = sd_event_source_set_time_relative(d->listen_timer, ACCEPT_PAUSE_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->listen_timer, SD_EVENT_ONESHOT);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->listen_src, SD_EVENT_OFF);
        if (r < 0) {
                /* Keep accepting (busily) rather than never again. */
                (void) sd_event_source_set_enabled(d->listen_timer, SD_EVENT_OFF);
                (void) sd_event_source_set_enabled(d->listen_src, SD_EVENT_ON);
        }
}

static bool accept_error_is_shortage(int err) {
        return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct vaultd *d = userdata;
        _cleanup_close_ int cfd = -EBADF;
        _cleanup_free_ struct conn *c = NULL;
        unsigned suppressed = 0;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                int err = errno;

                if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
                        return 0;
                if (accept_error_is_shortage(err))
                        accept_pause(d);
                if (log_allowed(d->event, &accept_failed_rl, &suppressed))
                        log_warning_errno(err, "Failed to accept a connection: %m%s (%u similar messages suppressed)",
                                          accept_error_is_shortage(err) ? "; pausing for 100 ms" : "", suppressed);
                return 0;
        }
        if (d->conns.n >= VAULTD_CONN_MAX) {
                if (log_allowed(d->event, &conns_full_rl, &suppressed))
                        log_warning("Too many connections (%d), closing a new one (%u similar messages suppressed)",
                                    VAULTD_CONN_MAX, suppressed);
                return 0;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
                accept_pause(d);
                return 0;
        }
        *c = (struct conn) { .d = d, .fd = cfd };
        r = peercred_check(d, cfd, &c->uid, &c->pid);
        if (r < 0) {
                log_warning_errno(r, "Failed to read peer credentials: %m");
                return 0;
        }
        snprintf(c->uid_text, sizeof c->uid_text, "%u", (unsigned) c->uid);
        snprintf(c->pid_text, sizeof c->pid_text, "%d", (int) c->pid);
        if (r == PEER_DENIED) {
                log_peer(LOG_NOTICE, c, NULL, NULL, "refused connection from uid=%u pid=%d", (unsigned) c->uid,
                         (int) c->pid);
                c->denied = true;
        }
        c->admin = r == PEER_ADMIN;
        r = sd_event_add_time_relative(d->event, &c->idle_timer, CLOCK_MONOTONIC,
                                       (uint64_t) (c->denied ? VAULTD_DENIED_TIMEOUT_S : VAULTD_IDLE_TIMEOUT_S) * USEC_PER_SEC,
                                       0, conn_idle, c);
        if (r >= 0)
                r = sd_event_add_io(d->event, &c->src, cfd, EPOLLIN, conn_io, c);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch a connection: %m");
                sd_event_source_disable_unref(c->idle_timer);
                return 0;
        }
        /* The connection owns both now; conn_close() releases them. */
        (void) TAKE_FD(cfd);
        LIST_PREPEND(conns, &d->conns, c);
        (void) TAKE_PTR(c);
        return 0;
}

/*
 * The socket is bound under a temporary name next to the final one, given its mode and group,
 * put in listening state, and only then renamed into place: a client never finds the path
 * before it accepts connections (connect() between bind() and listen() is refused), nor with
 * the wrong group. A path too long for the temporary name is bound in place.
 */
static int bind_socket(struct vaultd *d) {
        const char *path = d->cfg->socket_path;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *bound;
        char tmp[sizeof sa.sun_path];
        struct stat st;
        _cleanup_close_ int fd = -EBADF;
        mode_t old_umask;
        int r;

        /* A stale socket from an earlier run is replaced; anything else at the path is an error. */
        if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                return log_error_errno(EEXIST, "Failed to bind '%s': exists and is not a socket", path);
        if ((size_t) snprintf(tmp, sizeof tmp, "%s.new", path) < sizeof tmp) {
                bound = tmp;
        } else {
                bound = path;
                (void) unlink(path);
        }
        if (lstat(bound, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(bound);
        memcpy(sa.sun_path, bound, strlen(bound) + 1);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create the socket: %m");
        /* No window in which the socket is more open than 0660. */
        old_umask = umask(0117);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ? -errno : 0;
        umask(old_umask);
        if (r < 0)
                return log_error_errno(r, "Failed to bind '%s': %m", bound);
        if (chmod(bound, 0660) < 0) {
                r = log_error_errno(errno, "Failed to set the mode of '%s': %m", bound);
                goto fail;
        }
        if (d->cfg->socket_group) {
                struct group *gr = getgrnam(d->cfg->socket_group);

                if (!gr) {
                        r = log_error_errno(ENOENT, "Failed to give socket '%s' to group '%s': no such group", path,
                                            d->cfg->socket_group);
                        goto fail;
                }
                if (chown(bound, (uid_t) -1, gr->gr_gid) < 0) {
                        r = log_error_errno(errno, "Failed to give socket '%s' to group '%s': %m", path,
                                            d->cfg->socket_group);
                        goto fail;
                }
        }
        if (listen(fd, LISTEN_BACKLOG) < 0) {
                r = log_error_errno(errno, "Failed to listen on '%s': %m", path);
                goto fail;
        }
        if (bound != path && rename(bound, path) < 0) {
                r = log_error_errno(errno, "Failed to move socket '%s' to '%s': %m", bound, path);
                goto fail;
        }
        return TAKE_FD(fd);
fail:
        (void) unlink(bound);
        return r;
}

int ipc_listen(struct vaultd *d) {
        int n, fd, r;

        n = sd_listen_fds(1);
        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");
        if (n > 1)
                return log_error_errno(EINVAL, "Expected one socket from systemd, got %d", n);
        if (n == 1) {
                fd = SD_LISTEN_FDS_START;
                r = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0);
                if (r <= 0) {
                        log_error("The socket passed by systemd is not a listening SOCK_SEQPACKET unix socket");
                        return r < 0 ? r : -EINVAL;
                }
                if (d->cfg->socket_path)
                        log_notice("Socket activated: ignoring --socket '%s'", d->cfg->socket_path);
                r = sd_event_add_io(d->event, &d->listen_src, fd, EPOLLIN, on_accept, d);
        } else {
                if (!d->cfg->socket_path)
                        return log_error_errno(EDESTADDRREQ,
                                               "No socket: start vaultd by socket activation or pass --socket PATH");
                fd = bind_socket(d);
                if (fd < 0)
                        return fd;
                r = sd_event_add_io(d->event, &d->listen_src, fd, EPOLLIN, on_accept, d);
                d->socket_bound = true;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to watch the listening socket: %m");
                close(fd);
                return r;
        }
        /* Activated sockets may be blocking; accept4() must never block the loop. */
        (void) sd_event_source_set_io_fd_own(d->listen_src, true);
        {
                int fl = fcntl(fd, F_GETFL);
                if (fl >= 0)
                        (void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
        /* Made now, while memory and descriptors are there: accept_pause() only arms it. */
        r = sd_event_add_time_relative(d->event, &d->listen_timer, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC,
                                       ACCEPT_PAUSE_ACCURACY_USEC, accept_resume, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->listen_timer, SD_EVENT_OFF);
        d->listen_fd = fd;
        if (r < 0) {
                /* ipc_shutdown() (main.c, on the way out) releases the socket and the timer. */
                return log_error_errno(r, "Failed to set up the accept timer: %m");
        }
        return 0;
}

void ipc_shutdown(struct vaultd *d) {
        while (d->conns.first)
                conn_close(d->conns.first);
        d->listen_timer = sd_event_source_disable_unref(d->listen_timer);
        d->listen_src = sd_event_source_disable_unref(d->listen_src);
        d->listen_fd = -1;
        if (d->socket_bound)
                (void) unlink(d->cfg->socket_path);
        d->socket_bound = false;
}
