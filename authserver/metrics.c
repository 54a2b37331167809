/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authserver.h"
#include "control.h"
#include "text.h"

/*
 * --metrics ADDR:PORT: the Prometheus text exposition format (version 0.0.4) at /metrics,
 * over HTTP/1.0, one request per connection, on a thread of its own. Opt-in and meant for
 * a loopback or management address: it tells counts, never a device id or a key.
 */

#define METRICS_REQUEST_MAX     4096
#define METRICS_TIMEOUT_S       5       /* a connection's whole life */
#define METRICS_MAX_CONNS       8

struct metrics {
        struct shared *sh;
        int fd;
        struct acceptor acceptor;
};

static void send_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n;

                if (acceptor_arm(fd) < 0)
                        return;
                n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                p += n;
                len -= (size_t) n;
        }
}

static void respond(int fd, const char *status, const char *body, size_t len) {
        char head[256];
        int n;

        n = snprintf(head, sizeof head, "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, len);
        if (n > 0 && (size_t) n < sizeof head)
                send_all(fd, head, (size_t) n);
        send_all(fd, body, len);
}

static void serve_one(void *userdata, int fd) {
        struct metrics *m = userdata;
        char req[METRICS_REQUEST_MAX + 1], *text = NULL;
        size_t len = 0, text_len = 0;
        FILE *f;

        /* The request line and headers, up to the blank line, at most METRICS_REQUEST_MAX bytes,
         * all within the connection's deadline. */
        while (len < METRICS_REQUEST_MAX) {
                ssize_t n;

                if (acceptor_arm(fd) < 0)
                        return;
                n = recv(fd, req + len, METRICS_REQUEST_MAX - len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
                req[len] = '\0';
                if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
                        break;
        }
        req[len] = '\0';
        if (strncmp(req, "GET ", 4) != 0) {
                respond(fd, "400 Bad Request", "bad request\n", 12);
                return;
        }
        if (strncmp(req + 4, "/metrics ", 9) != 0 && strncmp(req + 4, "/metrics?", 9) != 0 &&
            strncmp(req + 4, "/ ", 2) != 0) {
                respond(fd, "404 Not Found", "not found: try /metrics\n", 24);
                return;
        }
        f = open_memstream(&text, &text_len);
        if (!f) {
                respond(fd, "500 Internal Server Error", "out of memory\n", 14);
                return;
        }
        (void) stats_metrics(m->sh->stats, __atomic_load_n(&m->sh->n_conns, __ATOMIC_RELAXED), f);
        if (fclose(f) == 0)
                respond(fd, "200 OK", text, text_len);
        else
                respond(fd, "500 Internal Server Error", "error\n", 6);
        free(text);
}

static int metrics_listen(const char *spec) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        char host[256];
        const char *port;
        int fd, r, one = 1;

        if (text_split_host_port(spec, host, sizeof host, &port) < 0)
                return -EINVAL;
        r = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &ai);
        if (r != 0)
                return -EADDRNOTAVAIL;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        r = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0 ? -errno : 0;
        freeaddrinfo(ai);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/* The address bound, with the port a :0 got. */
static void log_metrics_address(int fd) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char host[NI_MAXHOST], port[NI_MAXSERV];

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0 ||
            getnameinfo((struct sockaddr *) &ss, len, host, sizeof host, port, sizeof port,
                        NI_NUMERICHOST | NI_NUMERICSERV) != 0)
                return;
        log_info(ss.ss_family == AF_INET6 ? "metrics on http://[%s]:%s/metrics" : "metrics on http://%s:%s/metrics",
                 host, port);
}

int metrics_start(const char *spec, struct shared *sh, struct metrics **ret) {
        struct metrics *m;
        int r;

        *ret = NULL;
        if (!spec)
                return 0;
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        *m = (struct metrics) { .sh = sh, .fd = -1, .acceptor.stop_fd = -1 };
        m->fd = metrics_listen(spec);
        if (m->fd < 0) {
                r = m->fd;
                m->fd = -1;
                log_error_errno(r, "Failed to listen for metrics on %s: %m", spec);
                goto fail;
        }
        /* Several scrapers at once, one connection per address: a peer that holds its
         * connection open cannot keep the others from being answered. */
        r = acceptor_start(&m->acceptor, m->fd,
                           &(struct acceptor_limits) { .timeout_ms = METRICS_TIMEOUT_S * 1000,
                                                       .max_conns = METRICS_MAX_CONNS, .one_per_address = true },
                           serve_one, m);
        if (r < 0)
                goto fail;
        log_metrics_address(m->fd);
        *ret = m;
        return 0;
fail:
        metrics_stop(m);
        return r;
}

void metrics_stop(struct metrics *m) {
        if (!m)
                return;
        acceptor_stop(&m->acceptor);
        if (m->fd >= 0)
                close(m->fd);
        free(m);
}
