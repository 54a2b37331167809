/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "bundle.h"
#include "cleanup.h"
#include "devicectl.h"
#include "record.h"
#include "text.h"
#include "wire.h"

DEFINE_POINTER_CLEANUP(struct addrinfo *, freeaddrinfo)

int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline_ms) {
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = events };
                int64_t left = deadline_ms - now_ms();
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, (int) (left > 60000 ? 60000 : left));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

/*
 * getaddrinfo() cannot be given a deadline, so the name lookup is a step of its own: the
 * caller's --timeout starts after it and bounds connecting and the exchange (devicectl(1)
 * says so). The resolver's own message is kept for the diagnostic, which "No route to
 * host" would misstate.
 */
int net_resolve(const char *host_port, struct addrinfo **ret, const char **ret_lookup_error) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        char host[BUNDLE_SERVER_MAX + 1];
        const char *port;
        int r;

        if (!bundle_server_valid(host_port))
                return -EINVAL;
        r = text_split_host_port(host_port, host, sizeof host, &port);
        if (r < 0)
                return r;
        /* A literal address (the usual bundle) needs no resolver: AI_NUMERICHOST skips
         * AI_ADDRCONFIG's netlink dump and the NSS modules. Names take the full lookup. */
        hints.ai_flags = AI_NUMERICHOST;
        r = getaddrinfo(host, port, &hints, &res);
        if (r == EAI_NONAME) {
                hints.ai_flags = AI_ADDRCONFIG;
                r = getaddrinfo(host, port, &hints, &res);
        }
        if (r != 0) {
                /* EAI_SYSTEM leaves the reason in errno; the others have their own text. */
                if (ret_lookup_error)
                        *ret_lookup_error = r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r);
                return -EHOSTUNREACH;
        }
        *ret = res;
        return 0;
}

int net_connect_resolved(const struct addrinfo *res, int64_t deadline_ms, int *ret_fd) {
        int r = -ECONNREFUSED;

        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                _cleanup_close_ int fd = -EBADF;
                int one = 1, err = 0;
                socklen_t err_len = sizeof err;

                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        r = -errno;
                        continue;
                }
                r = wait_fd(fd, POLLOUT, deadline_ms);
                if (r >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
                        r = -errno;
                else if (r >= 0 && err != 0)
                        r = -err;
                if (r >= 0) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
        }
        return r;
}

/* The timeout is carried in 64 bits: --timeout allows a year, past an int of milliseconds. */
int net_connect(const char *host_port, int64_t timeout_ms, int *ret_fd) {
        _cleanup_(freeaddrinfop) struct addrinfo *res = NULL;
        int64_t deadline = now_ms() + timeout_ms;
        int r;

        r = net_resolve(host_port, &res, NULL);
        if (r < 0)
                return r;
        return net_connect_resolved(res, deadline, ret_fd);
}

int net_send_frame(int fd, const uint8_t *frame, size_t len, int64_t deadline_ms) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = send(fd, frame + done, len - done, MSG_NOSIGNAL);
                int r;

                if (n > 0) {
                        done += (size_t) n;
                        continue;
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
                r = wait_fd(fd, POLLOUT, deadline_ms);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int recv_exact(int fd, uint8_t *buf, size_t len, int64_t deadline_ms) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = recv(fd, buf + done, len - done, 0);
                int r;

                if (n > 0) {
                        done += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
                r = wait_fd(fd, POLLIN, deadline_ms);
                if (r < 0)
                        return r;
        }
        return 0;
}

int net_recv_frame(int fd, uint8_t *buf, size_t cap, size_t *ret_len, int64_t deadline_ms,
                   uint8_t type, size_t body_len) {
        struct wire_header h;
        int r;

        if (cap < SV_FRAME_MAX)
                return -ENOBUFS;
        r = recv_exact(fd, buf, SV_HEADER_LEN, deadline_ms);
        if (r < 0)
                return r;
        r = wire_header_decode(buf, SV_HEADER_LEN, &h);
        if (r < 0)
                return r;
        /* Type and size are checked from the header, before the body is read (§3). */
        if (h.type == SV_MSG_ERROR) {
                if (h.length != SV_ERROR_BODY_LEN)
                        return -EBADMSG;
        } else if (type != 0 && h.type != type)
                return -EPROTO;
        else if (body_len != 0 && h.length != body_len)
                return -EBADMSG;
        r = recv_exact(fd, buf + SV_HEADER_LEN, h.length, deadline_ms);
        if (r < 0)
                return r;
        *ret_len = SV_HEADER_LEN + (size_t) h.length;
        return 0;
}

int net_recv_record(int fd, uint8_t *buf, size_t cap, size_t *ret_len, int64_t deadline_ms) {
        size_t len;
        int r;

        if (cap < RECORD_FRAME_MAX)
                return -ENOBUFS;
        r = recv_exact(fd, buf, SV_HEADER_LEN, deadline_ms);
        if (r < 0)
                return r;
        r = record_header_check(buf, SV_HEADER_LEN, &len);
        if (r < 0)
                return r;
        r = recv_exact(fd, buf + SV_HEADER_LEN, len - SV_HEADER_LEN, deadline_ms);
        if (r < 0)
                return r;
        *ret_len = len;
        return 0;
}
