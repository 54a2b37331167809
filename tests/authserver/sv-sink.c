/* SPDX-License-Identifier: MIT */
/*
 * sv-sink: an example application for `authserver serve --sink PATH` (docs/sink.md). Listens
 * on a SOCK_SEQPACKET socket at PATH, takes one connection per data channel, logs on standard
 * output, one line per message:
 *   session device=ID epoch=E session=HEX kex=K key=HEX|none
 *   data device=ID PAYLOAD      close device=ID      cut device=ID reason=R      eof device=ID
 * and answers each DATA with the payload upper-cased (--mode echo, the default). For tests,
 * --mode slow never answers, --mode die exits (status 3) at the first DATA, --mode garbage
 * answers each DATA with a packet of version 9, --mode huge with a DATA packet longer than any
 * valid one, --mode close answers each DATA with CLOSE, --mode chatter sends a DATA nobody
 * asked for right after SESSION.
 *
 * Usage: sv-sink PATH [--mode echo|slow|die|garbage|huge|close|chatter]
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sinkmsg.h"

#define MAX_CLIENTS 64

enum mode { MODE_ECHO, MODE_SLOW, MODE_DIE, MODE_GARBAGE, MODE_HUGE, MODE_CLOSE, MODE_CHATTER };

struct client {
        int fd;
        char device[SV_ID_MAX + 1];
};

static void hex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
}

static void reply(int fd, const uint8_t *pkt, size_t len) {
        if (send(fd, pkt, len, MSG_NOSIGNAL) < 0)
                fprintf(stderr, "sv-sink: send: %m\n");
}

/* One packet from c; false if the connection is over. */
static bool on_packet(struct client *c, enum mode mode) {
        uint8_t pkt[SINK_PACKET_MAX + 1], out[SINK_PACKET_MAX];
        char k[2 * SV_KEY_LEN + 1], sid[2 * SV_SESSION_ID_LEN + 1];
        struct sink_msg m;
        ssize_t n;
        int r;

        n = recv(c->fd, pkt, sizeof pkt, MSG_TRUNC);
        if (n <= 0) {
                printf("eof device=%s\n", c->device[0] ? c->device : "-");
                return false;
        }
        r = (size_t) n > SINK_PACKET_MAX ? -EMSGSIZE : sink_parse(pkt, (size_t) n, &m);
        if (r < 0) {
                printf("bad device=%s error=%d\n", c->device[0] ? c->device : "-", r);
                return false;
        }
        switch (m.type) {
        case SINK_MSG_SESSION:
                snprintf(c->device, sizeof c->device, "%s", m.device_id);
                hex(m.session_id, sizeof m.session_id, sid);
                if (m.has_key)
                        hex(m.key, sizeof m.key, k);
                printf("session device=%s epoch=%llu session=%s kex=%u key=%s\n", m.device_id,
                       (unsigned long long) m.epoch, sid, m.kex, m.has_key ? k : "none");
                explicit_bzero(&m, sizeof m);
                if (mode == MODE_CHATTER) {
                        r = sink_encode_data(0, "unasked", 7, out, sizeof out);    /* no DATA is numbered 0 */
                        if (r >= 0)
                                reply(c->fd, out, (size_t) r);
                }
                return true;
        case SINK_MSG_DATA:
                printf("data device=%s seq=%u %.*s\n", c->device, m.seq, (int) m.payload_len, (const char *) m.payload);
                fflush(stdout);
                switch (mode) {
                case MODE_SLOW:
                        return true;
                case MODE_DIE:
                        exit(3);
                case MODE_GARBAGE:
                        reply(c->fd, (const uint8_t *) "\x09\x02garbage", 9);
                        return true;
                case MODE_HUGE: {
                        /* A DATA one byte past the bound (the largest valid one is answered). */
                        static uint8_t huge[SINK_PACKET_MAX + 1] = { SINK_VERSION, SINK_MSG_DATA };

                        (void) sink_encode_data(m.seq, NULL, 0, huge, sizeof huge);

                        memset(huge + SINK_HEADER_LEN + SINK_DATA_FIXED, 'x', sizeof huge - SINK_HEADER_LEN - SINK_DATA_FIXED);
                        reply(c->fd, huge, sizeof huge);
                        return true;
                }
                case MODE_CLOSE:
                        r = sink_encode_close(out, sizeof out);
                        break;
                default: {
                        /* The answer is built in place, after the header and seq. */
                        uint8_t *p = out + SINK_HEADER_LEN + SINK_DATA_FIXED;

                        memcpy(p, m.payload, m.payload_len);
                        for (size_t i = 0; i < m.payload_len; i++)
                                p[i] = (uint8_t) toupper(p[i]);
                        r = sink_encode_data(m.seq, p, m.payload_len, out, sizeof out);
                }
                }
                if (r >= 0)
                        reply(c->fd, out, (size_t) r);
                return true;
        case SINK_MSG_CLOSE:
                printf("close device=%s\n", c->device);
                return false;
        default:
                printf("cut device=%s reason=%s\n", c->device, m.reason);
                return false;
        }
}

int main(int argc, char *argv[]) {
        static struct client clients[MAX_CLIENTS];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        enum mode mode = MODE_ECHO;
        int lfd;

        if (argc == 4 && strcmp(argv[2], "--mode") == 0) {
                const char *names[] = { "echo", "slow", "die", "garbage", "huge", "close", "chatter" };
                size_t i;

                for (i = 0; i < sizeof names / sizeof names[0] && strcmp(argv[3], names[i]) != 0; i++)
                        ;
                if (i == sizeof names / sizeof names[0]) {
                        fprintf(stderr, "sv-sink: unknown mode '%s'\n", argv[3]);
                        return 2;
                }
                mode = (enum mode) i;
        } else if (argc != 2) {
                fprintf(stderr, "Usage: sv-sink PATH [--mode echo|slow|die|garbage|huge|close|chatter]\n");
                return 2;
        }
        if (strlen(argv[1]) >= sizeof sa.sun_path) {
                fprintf(stderr, "sv-sink: path too long\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        strcpy(sa.sun_path, argv[1]);
        (void) unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 64) < 0) {
                fprintf(stderr, "sv-sink: %s: %m\n", argv[1]);
                return 1;
        }
        for (size_t i = 0; i < MAX_CLIENTS; i++)
                clients[i].fd = -1;
        printf("listening %s\n", argv[1]);
        for (;;) {
                struct pollfd p[MAX_CLIENTS + 1];

                p[0] = (struct pollfd) { .fd = lfd, .events = POLLIN };
                for (size_t i = 0; i < MAX_CLIENTS; i++)
                        p[i + 1] = (struct pollfd) { .fd = clients[i].fd, .events = POLLIN };
                if (poll(p, MAX_CLIENTS + 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "sv-sink: poll: %m\n");
                        return 1;
                }
                if (p[0].revents & POLLIN) {
                        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        size_t i;

                        for (i = 0; fd >= 0 && i < MAX_CLIENTS && clients[i].fd >= 0; i++)
                                ;
                        if (fd >= 0 && i == MAX_CLIENTS)
                                close(fd);      /* full: the server sees end of file */
                        else if (fd >= 0)
                                clients[i] = (struct client) { .fd = fd };
                }
                for (size_t i = 0; i < MAX_CLIENTS; i++)
                        if (clients[i].fd >= 0 && p[i + 1].revents && !on_packet(&clients[i], mode)) {
                                close(clients[i].fd);
                                clients[i].fd = -1;
                        }
        }
}
