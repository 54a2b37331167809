/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <systemd/sd-daemon.h>

#include "authserver.h"
#include "cleanup.h"
#include "text.h"

/* Out of descriptors or memory: how long the listeners rest before accept() is tried again,
 * and how often at most that is logged. */
#define ACCEPT_PAUSE_US         (100 * 1000ULL)
#define ACCEPT_LOG_INTERVAL_MS  10000

static void listen_set_enabled(struct server *srv, int enabled) {
        for (unsigned i = 0; i < srv->n_listen; i++)
                if (srv->listen_src[i])
                        (void) sd_event_source_set_enabled(srv->listen_src[i], enabled);
}

void listen_resume(struct server *srv) {
        if (!srv->accept_paused)
                return;
        srv->accept_paused = false;
        if (srv->accept_timer)
                (void) sd_event_source_set_enabled(srv->accept_timer, SD_EVENT_OFF);
        if (!srv->draining && !srv->queue.fatal)
                listen_set_enabled(srv, SD_EVENT_ON);
}

static int accept_timer_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        listen_resume(userdata);
        return 0;
}

/* At most one line per ACCEPT_LOG_INTERVAL_MS, saying how many were left out. */
static void accept_log(struct server *srv, int err, bool pausing) {
        uint64_t now_us = 0;
        unsigned suppressed = 0;

        bool pass;

        (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now_us);
        /* One limit for all workers: out of descriptors, they all are. */
        pthread_mutex_lock(&srv->sh->lock);
        pass = ratelimit_pass(&srv->sh->accept_log, now_us, (uint64_t) ACCEPT_LOG_INTERVAL_MS * 1000, &suppressed);
        pthread_mutex_unlock(&srv->sh->lock);
        if (!pass)
                return;
        if (suppressed > 0)
                log_warning_errno(err, "Failed to accept a connection: %m%s (%u more since the last message)",
                                  pausing ? "; pausing new connections" : "", suppressed);
        else
                log_warning_errno(err, "Failed to accept a connection: %m%s", pausing ? "; pausing new connections" : "");
}

/*
 * The pending connection stays in the backlog and its listener stays readable: retrying at
 * once would spin at full CPU and flood the log. The listeners rest until a connection of
 * ours closes (a descriptor is free again) or for ACCEPT_PAUSE_US, whichever comes first.
 */
static void accept_pause(struct server *srv, int err) {
        int r;

        accept_log(srv, err, true);
        listen_set_enabled(srv, SD_EVENT_OFF);
        srv->accept_paused = true;
        if (srv->accept_timer)
                r = sd_event_source_set_time_relative(srv->accept_timer, ACCEPT_PAUSE_US);
        else
                r = sd_event_add_time_relative(srv->event, &srv->accept_timer, CLOCK_MONOTONIC, ACCEPT_PAUSE_US,
                                               10 * 1000, accept_timer_handler, srv);
        if (r >= 0)
                r = sd_event_source_set_enabled(srv->accept_timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                /* Without a timer only a closing connection would resume: do not risk that. */
                log_error_errno(r, "Failed to pause accepting connections: %m");
                listen_resume(srv);
        }
}

static int accept_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct server *srv = userdata;
        bool nodelay = false;

        for (unsigned i = 0; i < srv->n_listen; i++)
                if (srv->listen_fds[i] == fd)
                        nodelay = srv->listen_nodelay[i];
        for (;;) {
                /* The peer's address comes with the connection: no getpeername() per accept. */
                struct sockaddr_storage ss;
                socklen_t ss_len = sizeof ss;
                int cfd = accept4(fd, (struct sockaddr *) &ss, &ss_len, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                accept_pause(srv, errno);
                                return 0;
                        }
                        if (errno == EINTR)
                                continue;
                        /* EAGAIN: the backlog is empty. Anything else concerns that one
                         * connection (a network error, a firewall's EPERM): the next
                         * readiness tries again. */
                        if (errno != EAGAIN && errno != ECONNABORTED)
                                accept_log(srv, errno, false);
                        return 0;
                }
                (void) conn_accept(srv, cfd, &ss, ss_len > sizeof ss ? 0 : ss_len, nodelay);
                if (srv->accept_paused || srv->draining || srv->queue.fatal)
                        return 0;
        }
}

static void describe(int fd, char *buf, size_t cap) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (getsockname(fd, (struct sockaddr *) &ss, &len) == 0) {
                if (ss.ss_family == AF_INET) {
                        struct sockaddr_in *in = (struct sockaddr_in *) &ss;

                        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
                        port = ntohs(in->sin_port);
                        snprintf(buf, cap, "%s:%u", host, port);
                        return;
                }
                if (ss.ss_family == AF_INET6) {
                        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

                        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                        port = ntohs(in6->sin6_port);
                }
        }
        snprintf(buf, cap, "[%s]:%u", host, port);
}

DEFINE_POINTER_CLEANUP(struct addrinfo *, freeaddrinfo)

/* "host:port", "[v6]:port" or "*:port" into a bound, listening socket; with reuseport, one
 * that SO_REUSEPORT clones (listen_clone()) may share. */
static int listen_one(const char *spec, bool reuseport, int *ret_fd) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        _cleanup_(freeaddrinfop) struct addrinfo *res = NULL;
        char host[256];
        const char *port;
        int one = 1, r;

        if (text_split_host_port(spec, host, sizeof host, &port) < 0)
                return -EINVAL;
        if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res) != 0)
                return -EADDRNOTAVAIL;

        r = -EADDRNOTAVAIL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
                        r = -errno;
                        continue;
                }
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
                r = -errno;
        }
        return r;
}

static int listen_watch(struct server *srv) {
        char where[128];
        int r;

        for (unsigned i = 0; i < srv->n_listen; i++) {
                int one = 1;

                /* Accepted connections inherit it (Linux): no setsockopt() per connection. */
                srv->listen_nodelay[i] = setsockopt(srv->listen_fds[i], IPPROTO_TCP, TCP_NODELAY, &one,
                                                    sizeof one) == 0;
                r = sd_event_add_io(srv->event, &srv->listen_src[i], srv->listen_fds[i], EPOLLIN, accept_handler, srv);
                if (r < 0)
                        return r;
                if (srv->id == 0) {
                        describe(srv->listen_fds[i], where, sizeof where);
                        log_info("listening on %s", where);
                }
        }
        return 0;
}

/* A socket bound where fd is, SO_REUSEPORT: the kernel spreads the connections over them. */
static int listen_reuse(int fd, int *ret_fd) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int one = 1, v6only = 0, nfd;
        socklen_t olen = sizeof v6only;

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        nfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (nfd < 0)
                return -errno;
        if (ss.ss_family == AF_INET6 && getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen) == 0)
                (void) setsockopt(nfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        (void) setsockopt(nfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (setsockopt(nfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
            bind(nfd, (struct sockaddr *) &ss, len) < 0 || listen(nfd, SOMAXCONN) < 0) {
                int r = -errno;

                close(nfd);
                return r;
        }
        *ret_fd = nfd;
        return 0;
}

int listen_clone(struct server *srv, const struct server *from) {
        int r;

        for (unsigned i = 0; i < from->n_listen; i++) {
                int *fd = &srv->listen_fds[srv->n_listen];

                /* Sockets passed by systemd are one per address: every worker polls the same one
                 * (accept4() is thread-safe; whichever worker wakes first takes the connection). */
                if (from->listen_passed) {
                        *fd = fcntl(from->listen_fds[i], F_DUPFD_CLOEXEC, 3);
                        r = *fd < 0 ? -errno : 0;
                } else
                        r = listen_reuse(from->listen_fds[i], fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to open the listening socket of worker %u: %m", srv->id);
                srv->n_listen++;
        }
        return listen_watch(srv);
}

int listen_open(struct server *srv, bool reuseport) {
        int n = sd_listen_fds(1), r;

        if (n > AUTHSERVER_LISTEN_MAX) {
                log_error("Too many sockets passed by systemd: %d (at most %d)", n, AUTHSERVER_LISTEN_MAX);
                return -E2BIG;
        }
        if (n > 0) {
                for (int i = 0; i < n; i++) {
                        int fd = SD_LISTEN_FDS_START + i;

                        int flags = fcntl(fd, F_GETFL);

                        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                                log_error("Socket %d passed by systemd is not a listening stream socket", fd);
                                return -EINVAL;
                        }
                        /* A passed socket may be blocking; accept() must never block the loop. */
                        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                                return log_error_errno(errno, "Failed to make socket %d non-blocking: %m", fd);
                        srv->listen_fds[srv->n_listen++] = fd;
                }
                srv->listen_passed = true;
        } else {
                const char *def = AUTHSERVER_DEFAULT_LISTEN;
                const char *const *specs = srv->cfg->n_listen ? (const char *const *) srv->cfg->listen : &def;
                unsigned count = srv->cfg->n_listen ? srv->cfg->n_listen : 1;

                for (unsigned i = 0; i < count; i++) {
                        r = listen_one(specs[i], reuseport, &srv->listen_fds[srv->n_listen]);
                        if (r < 0)
                                return log_error_errno(r, "Failed to listen on '%s': %m", specs[i]);
                        srv->n_listen++;
                }
        }
        return listen_watch(srv);
}

void listen_close(struct server *srv) {
        srv->accept_timer = sd_event_source_disable_unref(srv->accept_timer);
        srv->accept_paused = false;
        for (unsigned i = 0; i < srv->n_listen; i++) {
                srv->listen_src[i] = sd_event_source_disable_unref(srv->listen_src[i]);
                close(srv->listen_fds[i]);
        }
        srv->n_listen = 0;
}
