/* SPDX-License-Identifier: MIT */
/*
 * sv-proxy: a frame-aware TCP proxy between a device and authserver that misbehaves on
 * purpose, for end-to-end tests.
 *
 *   sv-proxy --upstream HOST:PORT [--port-file FILE] [RULE]... [--loss P] [--seed N]
 *
 * It listens on 127.0.0.1 (a free port, written to --port-file) and relays one connection
 * at a time, frame by frame. Messages are named by their place in the handshake: M1, M3,
 * M5 from the device, M2, M4 from the server. Rules:
 *   --drop Mk         lose Mk, then cut both connections (a lost packet + reset)
 *   --dup Mk          deliver Mk twice
 *   --delay Mk:MS     hold Mk for MS milliseconds
 *   --flip Mk         flip one random bit of Mk's body
 *   --replay Mk       deliver, in place of Mk, the Mk of the previous connection
 *   --reflect Mk      send a server message (M2 or M4) back to the server instead
 *   --oversize Mk     replace Mk by a header that announces a 1025-byte body
 *   --truncate Mk     deliver only the first half of Mk, then cut both connections
 *   --loss P          lose any message with probability P (0..1), as --drop
 * Prints one line per connection to stderr: what it did.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "devicectl.h"
#include "wire.h"

enum action { ACT_DROP, ACT_DUP, ACT_DELAY, ACT_FLIP, ACT_REPLAY, ACT_REFLECT, ACT_OVERSIZE, ACT_TRUNCATE, _ACT_MAX };

struct rule {
        enum action action;
        unsigned msg;           /* 1..5 */
        unsigned delay_ms;
};

#define RULES_MAX 16

static struct rule rules[RULES_MAX];
static unsigned n_rules;
static double loss;
static uint8_t previous[6][SV_FRAME_MAX];
static size_t previous_len[6];

static int parse_msg(const char *s, unsigned *ret) {
        if (s[0] != 'M' || s[1] < '1' || s[1] > '5')
                return -EINVAL;
        *ret = (unsigned) (s[1] - '0');
        return 0;
}

static void add_rule(enum action a, const char *arg) {
        struct rule r = { .action = a };

        if (n_rules == RULES_MAX || parse_msg(arg, &r.msg) < 0) {
                fprintf(stderr, "sv-proxy: bad rule argument '%s'\n", arg);
                exit(2);
        }
        if (a == ACT_DELAY) {
                const char *colon = strchr(arg, ':');

                if (!colon) {
                        fprintf(stderr, "sv-proxy: --delay needs Mk:MS\n");
                        exit(2);
                }
                r.delay_ms = (unsigned) strtoul(colon + 1, NULL, 10);
        }
        if (a == ACT_REFLECT && r.msg != 2 && r.msg != 4) {
                fprintf(stderr, "sv-proxy: only M2 and M4 can be reflected\n");
                exit(2);
        }
        rules[n_rules++] = r;
}

static bool has_rule(enum action a, unsigned msg, struct rule *ret) {
        for (unsigned i = 0; i < n_rules; i++)
                if (rules[i].action == a && rules[i].msg == msg) {
                        if (ret)
                                *ret = rules[i];
                        return true;
                }
        return false;
}

/* Relays one connection. Returns after either side closes or a rule cuts it. */
static void relay(int dev, const char *upstream, unsigned conn_no) {
        uint8_t frame[SV_FRAME_MAX];
        size_t len;
        unsigned msg = 1;
        int srv = -1;
        char log[256] = "";

        if (net_connect(upstream, 5000, &srv) < 0) {
                fprintf(stderr, "sv-proxy: #%u cannot reach upstream\n", conn_no);
                return;
        }
        for (; msg <= 5; msg++) {
                bool from_device = msg % 2 == 1;
                int in = from_device ? dev : srv, out = from_device ? srv : dev;
                int64_t deadline = now_ms() + 15000;
                struct rule r;
                uint8_t type;
                int rr;

                /* Frames of any type pass; the endpoints judge them. */
                rr = net_recv_frame(in, frame, sizeof frame, &len, deadline, 0, 0);
                if (rr < 0)
                        break;
                type = frame[1];
                if (type == SV_MSG_ERROR) {
                        (void) net_send_frame(out, frame, len, deadline);
                        snprintf(log + strlen(log), sizeof log - strlen(log), " M%u=ERROR", msg);
                        break;
                }
                if ((loss > 0 && (double) random() / RAND_MAX < loss) || has_rule(ACT_DROP, msg, NULL)) {
                        snprintf(log + strlen(log), sizeof log - strlen(log), " drop M%u", msg);
                        break;
                }
                if (has_rule(ACT_REPLAY, msg, NULL) && previous_len[msg]) {
                        uint8_t cur[SV_FRAME_MAX];
                        size_t cur_len = len;

                        memcpy(cur, frame, len);
                        memcpy(frame, previous[msg], previous_len[msg]);
                        len = previous_len[msg];
                        memcpy(previous[msg], cur, cur_len);
                        previous_len[msg] = cur_len;
                        snprintf(log + strlen(log), sizeof log - strlen(log), " replay M%u", msg);
                } else {
                        memcpy(previous[msg], frame, len);
                        previous_len[msg] = len;
                }
                if (has_rule(ACT_FLIP, msg, NULL)) {
                        /* A body bit: what the receiver's checks of content and tag must catch
                         * (header damage is --oversize's and --truncate's business). */
                        size_t bit = SV_HEADER_LEN * 8 + (size_t) random() % ((len - SV_HEADER_LEN) * 8);

                        frame[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                        snprintf(log + strlen(log), sizeof log - strlen(log), " flip M%u bit %zu", msg, bit);
                }
                if (has_rule(ACT_DELAY, msg, &r)) {
                        struct timespec ts = { r.delay_ms / 1000, (long) (r.delay_ms % 1000) * 1000000L };

                        nanosleep(&ts, NULL);
                        snprintf(log + strlen(log), sizeof log - strlen(log), " delay M%u %ums", msg, r.delay_ms);
                }
                if (has_rule(ACT_OVERSIZE, msg, NULL)) {
                        frame[2] = (SV_BODY_MAX + 1) >> 8;
                        frame[3] = (SV_BODY_MAX + 1) & 0xff;
                        (void) net_send_frame(out, frame, SV_HEADER_LEN, deadline);
                        snprintf(log + strlen(log), sizeof log - strlen(log), " oversize M%u", msg);
                        /* Let the receiver judge the header before the connection goes. */
                        (void) net_recv_frame(out, frame, sizeof frame, &len, now_ms() + 2000, 0, 0);
                        break;
                }
                if (has_rule(ACT_TRUNCATE, msg, NULL)) {
                        (void) net_send_frame(out, frame, len / 2, deadline);
                        snprintf(log + strlen(log), sizeof log - strlen(log), " truncate M%u", msg);
                        break;
                }
                if (has_rule(ACT_REFLECT, msg, NULL)) {
                        /* Back to the server, as if the device had sent it; then relay the answer. */
                        snprintf(log + strlen(log), sizeof log - strlen(log), " reflect M%u", msg);
                        if (net_send_frame(srv, frame, len, deadline) < 0 ||
                            net_recv_frame(srv, frame, sizeof frame, &len, deadline, 0, 0) < 0)
                                break;
                        (void) net_send_frame(dev, frame, len, deadline);
                        break;
                }
                if (net_send_frame(out, frame, len, deadline) < 0)
                        break;
                if (has_rule(ACT_DUP, msg, NULL)) {
                        (void) net_send_frame(out, frame, len, deadline);
                        snprintf(log + strlen(log), sizeof log - strlen(log), " dup M%u", msg);
                }
        }
        fprintf(stderr, "sv-proxy: #%u%s%s\n", conn_no, log, msg > 5 ? " (complete)" : "");
        close(srv);
}

int main(int argc, char *argv[]) {
        enum { ARG_DROP = 0x100, ARG_DUP, ARG_DELAY, ARG_FLIP, ARG_REPLAY, ARG_REFLECT, ARG_OVERSIZE, ARG_TRUNCATE,
               ARG_LOSS, ARG_SEED, ARG_UPSTREAM, ARG_PORT_FILE };
        static const struct option options[] = {
                { "upstream",  required_argument, NULL, ARG_UPSTREAM },
                { "port-file", required_argument, NULL, ARG_PORT_FILE },
                { "drop",      required_argument, NULL, ARG_DROP },
                { "dup",       required_argument, NULL, ARG_DUP },
                { "delay",     required_argument, NULL, ARG_DELAY },
                { "flip",      required_argument, NULL, ARG_FLIP },
                { "replay",    required_argument, NULL, ARG_REPLAY },
                { "reflect",   required_argument, NULL, ARG_REFLECT },
                { "oversize",  required_argument, NULL, ARG_OVERSIZE },
                { "truncate",  required_argument, NULL, ARG_TRUNCATE },
                { "loss",      required_argument, NULL, ARG_LOSS },
                { "seed",      required_argument, NULL, ARG_SEED },
                { 0 }
        };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sa_len = sizeof sa;
        const char *upstream = NULL, *port_file = NULL;
        unsigned seed = (unsigned) time(NULL), conn_no = 0;
        int c, lfd;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_UPSTREAM: upstream = optarg; break;
                case ARG_PORT_FILE: port_file = optarg; break;
                case ARG_DROP: add_rule(ACT_DROP, optarg); break;
                case ARG_DUP: add_rule(ACT_DUP, optarg); break;
                case ARG_DELAY: add_rule(ACT_DELAY, optarg); break;
                case ARG_FLIP: add_rule(ACT_FLIP, optarg); break;
                case ARG_REPLAY: add_rule(ACT_REPLAY, optarg); break;
                case ARG_REFLECT: add_rule(ACT_REFLECT, optarg); break;
                case ARG_OVERSIZE: add_rule(ACT_OVERSIZE, optarg); break;
                case ARG_TRUNCATE: add_rule(ACT_TRUNCATE, optarg); break;
                case ARG_LOSS: loss = strtod(optarg, NULL); break;
                case ARG_SEED: seed = (unsigned) strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!upstream) {
                fprintf(stderr, "usage: sv-proxy --upstream HOST:PORT [--port-file F] [RULES]\n");
                return 2;
        }
        srandom(seed);
        signal(SIGPIPE, SIG_IGN);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 16) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &sa_len) < 0) {
                perror("sv-proxy: listen");
                return 1;
        }
        if (port_file) {
                FILE *f = fopen(port_file, "we");

                if (!f)
                        return 1;
                fprintf(f, "%u\n", ntohs(sa.sin_port));
                fclose(f);
        }
        fprintf(stderr, "sv-proxy: listening on 127.0.0.1:%u, upstream %s, seed %u\n", ntohs(sa.sin_port), upstream, seed);
        for (;;) {
                int dev = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

                if (dev < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                relay(dev, upstream, ++conn_no);
                close(dev);
        }
}
