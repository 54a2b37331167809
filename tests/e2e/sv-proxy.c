/* SPDX-License-Identifier: MIT */
/*
 * sv-proxy: a frame-aware TCP proxy between a device and authserver that misbehaves on
 * purpose, for end-to-end tests.
 *
 *   sv-proxy --upstream HOST:PORT [--port-file FILE] [RULE]... [--loss P] [--seed N]
 *
 * It listens on 127.0.0.1 (a free port, written to --port-file) and relays one connection
 * at a time, frame by frame, each read by its header (PROTOCOL.md §3). Handshake messages
 * are named by their place: M1, M3, M5 from the device, M2, M4 from the server. After M5 the
 * data channel (§11) is relayed in lock-step, a device record then the server's answer to it;
 * its records are named by direction and number from 0: c2s:N (device to server), s2c:N, and
 * c2s:close, s2c:close for the CLOSE of that direction. Rules (PLACE: Mk or a record):
 *   --drop PLACE      lose it, then cut both connections (a lost packet + reset)
 *   --dup PLACE       deliver it twice
 *   --delay Mk:MS     hold Mk for MS milliseconds
 *   --flip Mk         flip one random bit of Mk's body
 *   --replay Mk       deliver, in place of Mk, the Mk of the previous connection
 *   --reflect PLACE   send it back to its sender instead (of the handshake: M2 or M4, to
 *                     the server, whose answer goes on to the device), then cut both
 *   --oversize Mk     replace Mk by a header that announces a 1025-byte body
 *   --truncate PLACE  deliver only the first half of it, then cut both connections
 *   --strip-share Mk  remove the 32-byte key share (§10) from M1 or M2 and shorten the header;
 *                     for M1 the share-less M2 that answers gets it appended, so that the
 *                     device goes on to M3 (the downgrader's other half)
 *   --small-order Mk:I  replace the share of M1 or M2 by RFC 7748's small-order point I
 *                     (0..13: 0, 1, the two of order 8, p-1, p, p+1, then those with bit 255 set)
 *   --swap c2s:N|s2c:N  deliver record N+1 of that direction before record N
 *   --early-data      hold M5, send the device's first record before it, relay the answer, cut
 *   --loss P          lose any handshake message with probability P (0..1), as --drop
 * Prints one line per connection to stderr: what it did.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
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

enum action { ACT_DROP, ACT_DUP, ACT_DELAY, ACT_FLIP, ACT_REPLAY, ACT_REFLECT, ACT_OVERSIZE, ACT_TRUNCATE,
              ACT_STRIP, ACT_SMALL_ORDER, ACT_SWAP, ACT_EARLY, _ACT_MAX };

/* Where a frame travels: the handshake (M1..M5), or a direction of the data channel. */
enum where { W_HS, W_C2S, W_S2C };

#define INDEX_CLOSE UINT_MAX    /* c2s:close, s2c:close: the CLOSE record of that direction */

struct rule {
        enum action action;
        enum where where;
        unsigned index;         /* Mk: 1..5; a record: 0, 1, ... or INDEX_CLOSE */
        unsigned value;         /* --delay: milliseconds; --small-order: the point */
};

#define RULES_MAX 16

/* RFC 7748's small-order u-coordinates (0, 1, the two of order 8, p-1, p, p+1), little-endian,
 * then the same seven with the unused top bit set (X25519 ignores it). */
#define SMALL_ORDER_COUNT 14
static uint8_t small_order[SMALL_ORDER_COUNT][SV_X25519_LEN] = {
        [1] = { 1 },
        [2] = { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
                0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
        [3] = { 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
                0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
};

static void small_order_init(void) {
        for (unsigned i = 4; i < 7; i++) {
                memset(small_order[i], 0xff, SV_X25519_LEN);
                small_order[i][0] = (uint8_t) (0xec + i - 4);   /* p - 1, p, p + 1 */
                small_order[i][31] = 0x7f;
        }
        for (unsigned i = 0; i < 7; i++) {
                memcpy(small_order[7 + i], small_order[i], SV_X25519_LEN);
                small_order[7 + i][31] |= 0x80;
        }
}

static struct rule rules[RULES_MAX];
static unsigned n_rules;
static double loss;
static uint8_t previous[6][SV_FRAME_MAX];
static size_t previous_len[6];

/* "Mk", "c2s:N", "s2c:N", "c2s:close", "s2c:close"; *ret_end: what follows the name. */
static int parse_place(const char *s, struct rule *r, const char **ret_end) {
        char *end;

        if (s[0] == 'M' && s[1] >= '1' && s[1] <= '5') {
                r->where = W_HS;
                r->index = (unsigned) (s[1] - '0');
                *ret_end = s + 2;
                return 0;
        }
        if (strncmp(s, "c2s:", 4) != 0 && strncmp(s, "s2c:", 4) != 0)
                return -EINVAL;
        r->where = s[0] == 'c' ? W_C2S : W_S2C;
        if (strcmp(s + 4, "close") == 0) {
                r->index = INDEX_CLOSE;
                *ret_end = s + 9;
                return 0;
        }
        errno = 0;
        r->index = (unsigned) strtoul(s + 4, &end, 10);
        if (errno || end == s + 4 || r->index > 1000)
                return -EINVAL;
        *ret_end = end;
        return 0;
}

static void usage_error(const char *what, const char *arg) {
        fprintf(stderr, "sv-proxy: %s '%s'\n", what, arg);
        exit(2);
}

static void add_rule(enum action a, const char *arg) {
        struct rule r = { .action = a };
        const char *rest;
        char *end;

        if (n_rules == RULES_MAX || parse_place(arg, &r, &rest) < 0)
                usage_error("bad rule argument", arg);
        if (a == ACT_DELAY || a == ACT_SMALL_ORDER) {
                if (r.where != W_HS || rest[0] != ':')
                        usage_error("--delay and --small-order need Mk:N, not", arg);
                errno = 0;
                r.value = (unsigned) strtoul(rest + 1, &end, 10);
                if (errno || end == rest + 1 || *end || (a == ACT_SMALL_ORDER && r.value >= SMALL_ORDER_COUNT))
                        usage_error("bad number in", arg);
        } else if (*rest)
                usage_error("bad rule argument", arg);
        if (a == ACT_REFLECT && r.where == W_HS && r.index != 2 && r.index != 4)
                usage_error("of the handshake only M2 and M4 can be reflected, not", arg);
        if ((a == ACT_STRIP || a == ACT_SMALL_ORDER) && (r.where != W_HS || r.index > 2))
                usage_error("only M1 and M2 carry a key share, not", arg);
        if ((a == ACT_FLIP || a == ACT_REPLAY || a == ACT_OVERSIZE) && r.where != W_HS)
                usage_error("this rule takes a handshake message, not", arg);
        if (a == ACT_SWAP && (r.where == W_HS || r.index == INDEX_CLOSE))
                usage_error("--swap takes a record number, not", arg);
        rules[n_rules++] = r;
}

/* The rule of action a for the frame at (where, index) of this type, if any. */
static bool has_rule(enum action a, enum where w, unsigned index, uint8_t type, struct rule *ret) {
        for (unsigned i = 0; i < n_rules; i++)
                if (rules[i].action == a && rules[i].where == w &&
                    (rules[i].index == index || (rules[i].index == INDEX_CLOSE && type == SV_MSG_CLOSE))) {
                        if (ret)
                                *ret = rules[i];
                        return true;
                }
        return false;
}

static bool has_action(enum action a) {
        for (unsigned i = 0; i < n_rules; i++)
                if (rules[i].action == a)
                        return true;
        return false;
}

static void set_body_len(uint8_t *frame, size_t len) {
        frame[2] = (uint8_t) ((len - SV_HEADER_LEN) >> 8);
        frame[3] = (uint8_t) ((len - SV_HEADER_LEN) & 0xff);
}

struct link {
        int dev, srv;
        char log[512];
        uint8_t stripped[SV_X25519_LEN];        /* --strip-share M1: the device's share */
        bool have_stripped;
        uint8_t held[3][SV_FRAME_MAX];          /* --swap: the record held back, per direction */
        size_t held_len[3];
};

static void note(struct link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct link *l, const char *fmt, ...) {
        size_t used = strlen(l->log);
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(l->log + used, sizeof l->log - used, fmt, ap);
        va_end(ap);
}

static const char *place(enum where w, unsigned index, char *buf, size_t cap) {
        if (w == W_HS)
                snprintf(buf, cap, "M%u", index);
        else
                snprintf(buf, cap, "%s:%u", w == W_C2S ? "c2s" : "s2c", index);
        return buf;
}

/* The handshake's own rules, which rewrite M1..M5 before the common ones apply. */
static void rewrite_handshake(struct link *l, unsigned msg, uint8_t *frame, size_t *len) {
        struct rule r;

        if (msg > 2)
                return;
        if (has_rule(ACT_STRIP, W_HS, msg, 0, NULL) && *len >= SV_HEADER_LEN + SV_X25519_LEN) {
                *len -= SV_X25519_LEN;
                set_body_len(frame, *len);
                if (msg == 1) {
                        memcpy(l->stripped, frame + *len, SV_X25519_LEN);
                        l->have_stripped = true;
                }
                note(l, " strip M%u share", msg);
        } else if (msg == 2 && l->have_stripped && *len + SV_X25519_LEN <= SV_FRAME_MAX) {
                /* The downgrader's other half: the server answered a share-less M1 with a
                 * share-less M2; a share goes back on so that the device goes on to M3. */
                memcpy(frame + *len, l->stripped, SV_X25519_LEN);
                *len += SV_X25519_LEN;
                set_body_len(frame, *len);
                note(l, " graft M2 share");
        }
        if (has_rule(ACT_SMALL_ORDER, W_HS, msg, 0, &r) && *len >= SV_HEADER_LEN + SV_X25519_LEN) {
                memcpy(frame + *len - SV_X25519_LEN, small_order[r.value], SV_X25519_LEN);
                note(l, " small-order M%u point %u", msg, r.value);
        }
}

/*
 * One frame from `in` to `out` under the rules. Returns false when the connection is to end
 * (the rule cut it, or sending failed).
 */
static bool pass(struct link *l, enum where w, unsigned index, uint8_t *frame, size_t len) {
        bool from_device = w == W_C2S || (w == W_HS && index % 2 == 1);
        int in = from_device ? l->dev : l->srv, out = from_device ? l->srv : l->dev;
        int64_t deadline = now_ms() + 15000;
        uint8_t type = frame[1];
        char name[16];
        struct rule r;

        place(w, index, name, sizeof name);
        if ((w == W_HS && loss > 0 && (double) random() / RAND_MAX < loss) || has_rule(ACT_DROP, w, index, type, NULL)) {
                note(l, " drop %s", name);
                return false;
        }
        if (w == W_HS && has_rule(ACT_REPLAY, w, index, type, NULL) && previous_len[index]) {
                uint8_t cur[SV_FRAME_MAX];
                size_t cur_len = len;

                memcpy(cur, frame, len);
                memcpy(frame, previous[index], previous_len[index]);
                len = previous_len[index];
                memcpy(previous[index], cur, cur_len);
                previous_len[index] = cur_len;
                note(l, " replay %s", name);
        } else if (w == W_HS) {
                memcpy(previous[index], frame, len);
                previous_len[index] = len;
        }
        if (has_rule(ACT_FLIP, w, index, type, NULL)) {
                /* A body bit: what the receiver's checks of content and tag must catch
                 * (header damage is --oversize's and --truncate's business). */
                size_t bit = SV_HEADER_LEN * 8 + (size_t) random() % ((len - SV_HEADER_LEN) * 8);

                frame[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                note(l, " flip %s bit %zu", name, bit);
        }
        if (has_rule(ACT_DELAY, w, index, type, &r)) {
                struct timespec ts = { r.value / 1000, (long) (r.value % 1000) * 1000000L };

                nanosleep(&ts, NULL);
                note(l, " delay %s %ums", name, r.value);
        }
        if (has_rule(ACT_OVERSIZE, w, index, type, NULL)) {
                frame[2] = (SV_BODY_MAX + 1) >> 8;
                frame[3] = (SV_BODY_MAX + 1) & 0xff;
                (void) net_send_frame(out, frame, SV_HEADER_LEN, deadline);
                note(l, " oversize %s", name);
                /* Let the receiver judge the header before the connection goes. */
                (void) net_recv_frame(out, frame, SV_FRAME_MAX, &len, now_ms() + 2000, 0, 0);
                return false;
        }
        if (has_rule(ACT_TRUNCATE, w, index, type, NULL)) {
                (void) net_send_frame(out, frame, len / 2, deadline);
                note(l, " truncate %s", name);
                return false;
        }
        if (has_rule(ACT_REFLECT, w, index, type, NULL)) {
                /* Back to its sender, as if the other side had sent it; then note the
                 * sender's reaction (a frame, or nothing: the connection ends), which
                 * during the handshake goes on to the other side. */
                note(l, " reflect %s", name);
                if (net_send_frame(in, frame, len, deadline) < 0 ||
                    net_recv_frame(in, frame, SV_FRAME_MAX, &len, deadline, 0, 0) < 0) {
                        note(l, " (no answer)");
                        return false;
                }
                note(l, " (answered type %u)", frame[1]);
                if (w == W_HS)
                        (void) net_send_frame(out, frame, len, deadline);
                return false;
        }
        if (has_rule(ACT_SWAP, w, index, type, NULL)) {
                memcpy(l->held[w], frame, len);
                l->held_len[w] = len;
                note(l, " hold %s", name);
                return true;
        }
        if (net_send_frame(out, frame, len, deadline) < 0)
                return false;
        if (l->held_len[w]) {
                note(l, " then the held one");
                if (net_send_frame(out, l->held[w], l->held_len[w], deadline) < 0)
                        return false;
                l->held_len[w] = 0;
        }
        if (has_rule(ACT_DUP, w, index, type, NULL)) {
                (void) net_send_frame(out, frame, len, deadline);
                note(l, " dup %s", name);
        }
        return true;
}

/*
 * --early-data: M5 is held back and the device's first record, sealed right for this session,
 * goes to the server before it; then whatever the server answers goes to the device.
 */
static void early_data(struct link *l, const uint8_t *m5, size_t m5_len) {
        uint8_t frame[SV_FRAME_MAX];
        size_t len;
        int64_t deadline = now_ms() + 15000;

        if (net_recv_frame(l->dev, frame, sizeof frame, &len, deadline, 0, 0) < 0) {
                note(l, " early: no record from the device");
                return;
        }
        note(l, " early c2s:0 (type %u) before M5", frame[1]);
        if (net_send_frame(l->srv, frame, len, deadline) < 0 || net_send_frame(l->srv, m5, m5_len, deadline) < 0)
                return;
        if (net_recv_frame(l->srv, frame, sizeof frame, &len, deadline, 0, 0) < 0) {
                note(l, " (server closed)");
                return;
        }
        note(l, " (server answered type %u)", frame[1]);
        (void) net_send_frame(l->dev, frame, len, deadline);
}

/*
 * The data channel (§11) in lock-step: a record of the device, then the server's answer to
 * it (the server answers each DATA and each CLOSE with exactly one record), so that a rule
 * meets the same records in every run. A record held by --swap c2s:N is followed at once by
 * the device's next one. Ends when either side closes or a rule cuts the connection.
 */
static void channel(struct link *l) {
        unsigned count[3] = { 0 };
        enum where w = W_C2S;

        for (;;) {
                uint8_t frame[SV_FRAME_MAX];
                size_t len;
                unsigned index = count[w];

                if (net_recv_frame(w == W_C2S ? l->dev : l->srv, frame, sizeof frame, &len, now_ms() + 15000, 0, 0) < 0) {
                        if (index > 0 || w == W_S2C)
                                note(l, " %s closed after %u records", w == W_C2S ? "device" : "server", index);
                        return;
                }
                count[w]++;
                if (!pass(l, w, index, frame, len))
                        return;
                if (w == W_C2S && l->held_len[W_C2S])
                        continue;
                w = w == W_C2S ? W_S2C : W_C2S;
        }
}

/* Relays one connection. Returns after either side closes or a rule cuts it. */
static void relay(int dev, const char *upstream, unsigned conn_no) {
        struct link l = { .dev = dev, .srv = -1 };
        unsigned msg = 1;

        if (net_connect(upstream, 5000, &l.srv) < 0) {
                fprintf(stderr, "sv-proxy: #%u cannot reach upstream\n", conn_no);
                return;
        }
        for (; msg <= 5; msg++) {
                bool from_device = msg % 2 == 1;
                uint8_t frame[SV_FRAME_MAX];
                size_t len;

                /* Frames of any type pass; the endpoints judge them. */
                if (net_recv_frame(from_device ? dev : l.srv, frame, sizeof frame, &len, now_ms() + 15000, 0, 0) < 0) {
                        note(&l, " no M%u", msg);
                        break;
                }
                if (frame[1] == SV_MSG_ERROR) {
                        (void) net_send_frame(from_device ? l.srv : dev, frame, len, now_ms() + 15000);
                        note(&l, " M%u=ERROR", msg);
                        break;
                }
                rewrite_handshake(&l, msg, frame, &len);
                if (msg == 5 && has_action(ACT_EARLY)) {
                        early_data(&l, frame, len);
                        break;
                }
                if (!pass(&l, W_HS, msg, frame, len))
                        break;
        }
        if (msg > 5) {
                note(&l, " (complete)");
                channel(&l);
        }
        fprintf(stderr, "sv-proxy: #%u%s\n", conn_no, l.log);
        close(l.srv);
}

/* The device's side ends with a FIN, not a reset: what it has not read yet stays readable. */
static void hang_up(int fd) {
        uint8_t buf[SV_FRAME_MAX];
        int64_t deadline = now_ms() + 3000;

        (void) shutdown(fd, SHUT_WR);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_ms();

                if (left <= 0 || poll(&p, 1, (int) left) <= 0 || read(fd, buf, sizeof buf) <= 0)
                        break;
        }
        close(fd);
}

int main(int argc, char *argv[]) {
        enum { ARG_DROP = 0x100, ARG_DUP, ARG_DELAY, ARG_FLIP, ARG_REPLAY, ARG_REFLECT, ARG_OVERSIZE, ARG_TRUNCATE,
               ARG_STRIP, ARG_SMALL_ORDER, ARG_SWAP, ARG_EARLY, ARG_LOSS, ARG_SEED, ARG_UPSTREAM, ARG_PORT_FILE };
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
                { "strip-share", required_argument, NULL, ARG_STRIP },
                { "small-order", required_argument, NULL, ARG_SMALL_ORDER },
                { "swap",      required_argument, NULL, ARG_SWAP },
                { "early-data", no_argument,      NULL, ARG_EARLY },
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
                case ARG_STRIP: add_rule(ACT_STRIP, optarg); break;
                case ARG_SMALL_ORDER: add_rule(ACT_SMALL_ORDER, optarg); break;
                case ARG_SWAP: add_rule(ACT_SWAP, optarg); break;
                case ARG_EARLY: add_rule(ACT_EARLY, "M5"); break;
                case ARG_LOSS: loss = strtod(optarg, NULL); break;
                case ARG_SEED: seed = (unsigned) strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!upstream) {
                fprintf(stderr, "usage: sv-proxy --upstream HOST:PORT [--port-file F] [RULES]\n");
                return 2;
        }
        srandom(seed);
        small_order_init();
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
                hang_up(dev);
        }
}
