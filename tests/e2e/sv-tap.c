/* SPDX-License-Identifier: MIT */
/*
 * sv-tap: a passive wiretap between a device and authserver, for the forward-secrecy test
 * (tests/e2e/forward-secrecy.test). It relays exactly one TCP connection, byte for byte and
 * unchanged, and records what crossed it, as an eavesdropper on the network would:
 *
 *   sv-tap --upstream HOST:PORT --port-file FILE --record PREFIX
 *
 * It listens on 127.0.0.1 (a free port, written to --port-file), accepts one connection,
 * relays both directions until both have ended, writes PREFIX.c2s (the device's bytes) and
 * PREFIX.s2c (the server's bytes), and exits 0. sv-proxy (the misbehaving proxy) changes
 * what it relays and stops after M5; this tap changes nothing and keeps the data channel.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "devicectl.h"

#define TAP_TIMEOUT_MS  60000   /* a whole session; the test's own time-outs are shorter */

struct dir {
        int in, out;
        FILE *rec;
        bool done;
};

/* Moves what is readable on d->in to d->out and the record; marks the direction done at EOF. */
static int pump(struct dir *d) {
        uint8_t buf[4096];
        ssize_t n = read(d->in, buf, sizeof buf);

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n <= 0) {           /* EOF, or a reset: either way this direction has ended */
                d->done = true;
                (void) shutdown(d->out, SHUT_WR);
                return 0;
        }
        if (fwrite(buf, 1, (size_t) n, d->rec) != (size_t) n)
                return -EIO;
        for (ssize_t off = 0; off < n;) {
                ssize_t w = write(d->out, buf + off, (size_t) (n - off));

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        /* The other end is gone: what it was sent is still on record. */
                        d->done = true;
                        return 0;
                }
                off += w;
        }
        return 0;
}

static FILE *open_record(const char *prefix, const char *suffix) {
        char path[4096];

        if (snprintf(path, sizeof path, "%s.%s", prefix, suffix) >= (int) sizeof path)
                return NULL;
        return fopen(path, "wbe");
}

int main(int argc, char *argv[]) {
        enum { ARG_UPSTREAM = 0x100, ARG_PORT_FILE, ARG_RECORD };
        static const struct option options[] = {
                { "upstream",  required_argument, NULL, ARG_UPSTREAM },
                { "port-file", required_argument, NULL, ARG_PORT_FILE },
                { "record",    required_argument, NULL, ARG_RECORD },
                { 0 }
        };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sa_len = sizeof sa;
        const char *upstream = NULL, *port_file = NULL, *prefix = NULL;
        struct dir d[2] = { 0 };
        int c, lfd, dev, srv = -1, r = 0;
        int64_t deadline;
        FILE *f;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_UPSTREAM: upstream = optarg; break;
                case ARG_PORT_FILE: port_file = optarg; break;
                case ARG_RECORD: prefix = optarg; break;
                default: return 2;
                }
        if (!upstream || !port_file || !prefix || optind != argc) {
                fprintf(stderr, "usage: sv-tap --upstream HOST:PORT --port-file FILE --record PREFIX\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        d[0].rec = open_record(prefix, "c2s");
        d[1].rec = open_record(prefix, "s2c");
        if (!d[0].rec || !d[1].rec) {
                perror("sv-tap: record");
                return 1;
        }
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 1) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &sa_len) < 0) {
                perror("sv-tap: listen");
                return 1;
        }
        f = fopen(port_file, "we");
        if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0) {
                perror("sv-tap: port file");
                return 1;
        }
        do
                dev = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        while (dev < 0 && errno == EINTR);
        if (dev < 0 || net_connect(upstream, 5000, &srv) < 0) {
                fprintf(stderr, "sv-tap: cannot accept or reach upstream %s\n", upstream);
                return 1;
        }
        d[0].in = dev, d[0].out = srv;
        d[1].in = srv, d[1].out = dev;
        deadline = now_ms() + TAP_TIMEOUT_MS;
        while (r >= 0 && !(d[0].done && d[1].done)) {
                struct pollfd p[2] = {
                        { .fd = d[0].done ? -1 : dev, .events = POLLIN },
                        { .fd = d[1].done ? -1 : srv, .events = POLLIN },
                };
                int64_t left = deadline - now_ms();

                if (left <= 0) {
                        fprintf(stderr, "sv-tap: the session did not end within %d ms\n", TAP_TIMEOUT_MS);
                        return 1;
                }
                if (poll(p, 2, (int) left) < 0) {
                        r = errno == EINTR ? 0 : -errno;
                        continue;
                }
                for (int i = 0; i < 2 && r >= 0; i++)
                        if (p[i].revents)
                                r = pump(&d[i]);
        }
        if (r < 0 || fclose(d[0].rec) != 0 || fclose(d[1].rec) != 0) {
                fprintf(stderr, "sv-tap: %s\n", strerror(r < 0 ? -r : EIO));
                return 1;
        }
        fprintf(stderr, "sv-tap: recorded one connection to %s.{c2s,s2c}\n", prefix);
        close(dev);
        close(srv);
        close(lfd);
        return 0;
}
