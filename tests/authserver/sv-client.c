/* SPDX-License-Identifier: MIT */
/*
 * sv-client: a device built straight from common/'s device state machine, with its
 * vault in a bundle file, for testing authserver over real TCP without a TPM.
 *
 *   sv-client --server HOST:PORT --vault FILE [--count N] [--fault F] [--timeout S]
 *             [--source ADDRESS]
 *
 * --source connects from that local address (e.g. 127.1.0.2: a peer on another network).
 * --go FILE: connected, waits (up to the time-out) until FILE exists before it sends M1, so
 * that several clients started one by one send their M1s together.
 * The vault file is an enrollment bundle; after each successful handshake it is
 * rewritten with the next vault and epoch. Faults (one handshake, then exit):
 *   drop-m5      commit locally but never send M5 (a lost M5)
 *   close-m1     close right after M1          close-m3   close right after M3
 *   flip-m3      flip a bit of M3              replay-m3  send the M3 of the previous run
 *   wrong-epoch  claim epoch + 5 in M1
 *
 * The data channel (protocol §11): with --data PAYLOAD (repeatable), after M5 each payload
 * goes out as one DATA record and the payload of the record that answers it is printed as
 * "answer PAYLOAD"; then CLOSE, and "closed" if the server answers CLOSE ("cut" if the
 * connection ends without one, "server-closed" if the server sent CLOSE first). With
 * --data-fault F, after the payloads (one handshake, exit 0 if it ran):
 *   replay     send the last DATA record again       reflect   send back the server's first answer
 *   truncate   a DATA record one byte short, its header saying so
 *   early      a DATA record in place of M5 (sealed with the right key, before M5)
 *   idle       send nothing more and wait for the server's CLOSE
 *   no-close   close the connection without CLOSE
 * and prints what came back: "cut" (the connection ended, nothing sent), "server-closed",
 * "error CODE", or "reply TYPE" for any other frame. --show-key prints "session-key HEX" first.
 * Prints "N passed, M failed" and exits 0 only if every handshake succeeded; with a
 * fault, prints the outcome ("refused CODE", "closed", "ok") and exits 0 if it ran.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bundle-file.h"
#include "devicectl.h"
#include "buf.h"
#include "handshake.h"
#include "record.h"
#include "sv-net.h"

enum data_fault { DF_NONE, DF_REPLAY, DF_REFLECT, DF_TRUNCATE, DF_EARLY, DF_IDLE, DF_NO_CLOSE };

enum fault { FAULT_NONE, FAULT_DROP_M5, FAULT_CLOSE_M1, FAULT_CLOSE_M3, FAULT_FLIP_M3, FAULT_REPLAY_M3, FAULT_WRONG_EPOCH };

struct client {
        const char *server;
        const char *source;
        const char *go;                 /* --go: M1 waits for this file */
        const char *path;
        struct bundle b;
        uint8_t *next;
        int timeout_ms;
        enum fault fault;
        uint8_t last_m3[SV_FRAME_MAX];
        size_t last_m3_len;
        char **data;                    /* --data payloads */
        size_t n_data;
        enum data_fault data_fault;
        bool channel;                   /* --data or --data-fault given */
        bool show_key;                  /* --show-key: print the session key after M5 */
};

/* What the server sent next, as the line the test reads; -errno if nothing came. */
static int channel_read(int fd, struct record_chain *rx, int64_t deadline, uint8_t *frame, size_t *ret_len,
                        bool print) {
        uint8_t payload[RECORD_PAYLOAD_MAX + 1];
        size_t len, plen = 0;
        int r;

        r = net_recv_frame(fd, frame, RECORD_FRAME_MAX, &len, deadline, 0, 0);
        if (r == -ECONNRESET || r == -EPIPE) {
                printf("cut\n");
                return r;
        }
        if (r < 0)
                return r;
        if (frame[1] == SV_MSG_ERROR) {
                printf("error %u\n", frame[SV_HEADER_LEN]);
                return -ECONNREFUSED;
        }
        if (ret_len)
                *ret_len = len;
        r = record_open(rx, frame, len, payload, sizeof payload - 1, &plen);
        if (r < 0) {
                printf("reply %u (does not open: %s)\n", frame[1], strerror(-r));
                return r;
        }
        if (r == SV_MSG_CLOSE)
                return 0;
        payload[plen] = '\0';
        if (print)
                printf("answer %s\n", (char *) payload);
        return 1;
}

/* After a frame that the server must not answer: "cut" if it is right. */
static void expect_cut(int fd, struct record_chain *rx, int64_t deadline) {
        uint8_t frame[RECORD_FRAME_MAX];
        int r = channel_read(fd, rx, deadline, frame, NULL, true);

        if (r == 0)
                printf("server-closed\n");
        else if (r > 0)
                printf("reply DATA\n");
}

/* The data channel after M5: --data and --data-fault. */
static int channel(struct client *cl, struct hs_device *hs, int fd, int64_t deadline) {
        uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN];
        uint8_t frame[RECORD_FRAME_MAX], last[RECORD_FRAME_MAX], first_answer[RECORD_FRAME_MAX];
        size_t len, last_len = 0, first_len = 0;
        struct record_chain tx, rx;
        int r;

        r = hs_device_channel_secrets(hs, c2s, s2c);
        if (r < 0)
                return r;
        if (cl->show_key) {
                /* For sink.test: the key an application behind --sink --sink-keys must get. */
                printf("session-key ");
                for (size_t i = 0; i < SV_KEY_LEN; i++)
                        printf("%02x", hs_device_session_key(hs)[i]);
                printf("\n");
        }
        record_init(&tx, c2s);
        record_init(&rx, s2c);
        for (size_t i = 0; i < cl->n_data; i++) {
                r = record_seal(&tx, SV_MSG_DATA, cl->data[i], strlen(cl->data[i]), frame, sizeof frame, &len);
                if (r < 0)
                        goto out;
                memcpy(last, frame, len);
                last_len = len;
                r = net_send_frame(fd, frame, len, deadline);
                if (r < 0)
                        goto out;
                r = channel_read(fd, &rx, deadline, frame, &len, true);
                if (r == 0) {
                        printf("server-closed\n");
                        goto out;
                }
                if (r < 0)
                        goto out;
                if (!first_len) {
                        memcpy(first_answer, frame, len);
                        first_len = len;
                }
        }
        switch (cl->data_fault) {
        case DF_REPLAY:
                r = last_len ? net_send_frame(fd, last, last_len, deadline) : -EINVAL;
                break;
        case DF_REFLECT:
                r = first_len ? net_send_frame(fd, first_answer, first_len, deadline) : -EINVAL;
                break;
        case DF_TRUNCATE:
                r = record_seal(&tx, SV_MSG_DATA, "temp=99", 7, frame, sizeof frame, &len);
                if (r >= 0) {
                        be16_put(frame + 2, (uint16_t) (len - SV_HEADER_LEN - 1));
                        r = net_send_frame(fd, frame, len - 1, deadline);
                }
                break;
        case DF_IDLE:
                r = channel_read(fd, &rx, deadline, frame, NULL, true);
                if (r == 0)
                        printf("server-closed\n");
                r = 0;
                goto out;
        case DF_NO_CLOSE:
                printf("left\n");
                r = 0;
                goto out;
        default:
                r = record_seal(&tx, SV_MSG_CLOSE, NULL, 0, frame, sizeof frame, &len);
                if (r >= 0)
                        r = net_send_frame(fd, frame, len, deadline);
                if (r < 0)
                        goto out;
                r = channel_read(fd, &rx, deadline, frame, NULL, true);
                if (r == 0)
                        printf("closed\n");
                r = 0;
                goto out;
        }
        if (r >= 0) {
                expect_cut(fd, &rx, deadline);
                r = 0;
        }
out:
        record_wipe(&tx);
        record_wipe(&rx);
        return r;
}

/* One handshake. 0 on success (vault advanced and saved), 1 if the server refused, -errno otherwise. */
static int handshake(struct client *cl, uint8_t *ret_code) {
        struct hs_device hs;
        struct vault_params params = cl->b.params;
        uint8_t frame[SV_FRAME_MAX];
        size_t len;
        int64_t deadline;
        int fd = -1, r;

        if (cl->fault == FAULT_WRONG_EPOCH)
                params.epoch += 5;
        hs_device_init(&hs, &params, cl->b.vault, &hs_random_os);
        r = hs_device_hello(&hs, frame, sizeof frame, &len);
        if (r < 0)
                goto out;
        r = cl->source ? sv_connect_from(cl->server, cl->source, &fd) : net_connect(cl->server, cl->timeout_ms, &fd);
        if (r < 0)
                goto out;
        deadline = now_ms() + cl->timeout_ms;
        while (cl->go && access(cl->go, F_OK) < 0 && now_ms() < deadline)
                usleep(1000);
        r = net_send_frame(fd, frame, len, deadline);
        if (r >= 0 && cl->fault == FAULT_CLOSE_M1)
                r = -ECONNABORTED;
        if (r < 0)
                goto out;
        r = net_recv_frame(fd, frame, sizeof frame, &len, deadline, SV_MSG_CHALLENGE,
                           vault_body_len(SV_MSG_CHALLENGE, &params));
        if (r < 0)
                goto out;
        r = hs_device_respond(&hs, frame, len, frame, sizeof frame, &len);
        if (r < 0)
                goto out;
        if (cl->fault == FAULT_FLIP_M3)
                frame[len - 1] ^= 0x01;
        if (cl->fault == FAULT_REPLAY_M3 && cl->last_m3_len) {
                memcpy(frame, cl->last_m3, cl->last_m3_len);
                len = cl->last_m3_len;
        }
        memcpy(cl->last_m3, frame, len);
        cl->last_m3_len = len;
        r = net_send_frame(fd, frame, len, deadline);
        if (r >= 0 && cl->fault == FAULT_CLOSE_M3)
                r = -ECONNABORTED;
        if (r < 0)
                goto out;
        r = net_recv_frame(fd, frame, sizeof frame, &len, deadline, SV_MSG_CONFIRM, SV_CONFIRM_BODY_LEN);
        if (r < 0)
                goto out;
        r = hs_device_confirm(&hs, frame, len, cl->next, frame, sizeof frame, &len);
        if (r < 0)
                goto out;
        /* As vaultd does: the next vault is durable before M5 leaves. */
        memcpy(cl->b.vault, cl->next, vault_size(&cl->b.params));
        cl->b.params.epoch++;
        r = bundle_file_save(cl->path, &cl->b);
        if (r < 0)
                goto out;
        if (cl->data_fault == DF_EARLY) {
                /* A DATA record where M5 belongs, sealed as the device would after M5. */
                uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN], rec[RECORD_FRAME_MAX];
                struct record_chain tx;
                size_t rec_len;

                r = hs_device_channel_secrets(&hs, c2s, s2c);
                if (r < 0)
                        goto out;
                record_init(&tx, c2s);
                OPENSSL_cleanse(s2c, sizeof s2c);
                r = record_seal(&tx, SV_MSG_DATA, "temp=1000", 9, rec, sizeof rec, &rec_len);
                record_wipe(&tx);
                if (r >= 0)
                        r = net_send_frame(fd, rec, rec_len, deadline);
                if (r >= 0) {
                        struct record_chain none = { 0 };

                        expect_cut(fd, &none, deadline);
                }
                goto out;
        }
        if (cl->fault != FAULT_DROP_M5)
                r = net_send_frame(fd, frame, len, deadline);
        if (r >= 0 && cl->channel && cl->fault != FAULT_DROP_M5)
                r = channel(cl, &hs, fd, deadline);
out:
        if (r == -ECONNREFUSED) {
                *ret_code = hs.peer_error;
                r = 1;
        }
        hs_device_wipe(&hs);
        if (fd >= 0)
                close(fd);
        return r;
}

static enum fault parse_fault(const char *s) {
        static const char *const names[] = {
                [FAULT_NONE] = "none", [FAULT_DROP_M5] = "drop-m5", [FAULT_CLOSE_M1] = "close-m1",
                [FAULT_CLOSE_M3] = "close-m3", [FAULT_FLIP_M3] = "flip-m3", [FAULT_REPLAY_M3] = "replay-m3",
                [FAULT_WRONG_EPOCH] = "wrong-epoch",
        };

        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (strcmp(s, names[i]) == 0)
                        return (enum fault) i;
        fprintf(stderr, "sv-client: unknown fault '%s'\n", s);
        exit(2);
}

static enum data_fault parse_data_fault(const char *s) {
        static const char *const names[] = {
                [DF_NONE] = "none", [DF_REPLAY] = "replay", [DF_REFLECT] = "reflect",
                [DF_TRUNCATE] = "truncate", [DF_EARLY] = "early", [DF_IDLE] = "idle", [DF_NO_CLOSE] = "no-close",
        };

        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (strcmp(s, names[i]) == 0)
                        return (enum data_fault) i;
        fprintf(stderr, "sv-client: unknown data fault '%s'\n", s);
        exit(2);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "server",  required_argument, NULL, 's' },
                { "vault",   required_argument, NULL, 'v' },
                { "count",   required_argument, NULL, 'n' },
                { "fault",   required_argument, NULL, 'f' },
                { "timeout", required_argument, NULL, 't' },
                { "source",  required_argument, NULL, 'S' },
                { "data",    required_argument, NULL, 'd' },
                { "data-fault", required_argument, NULL, 'D' },
                { "show-key", no_argument,     NULL, 'K' },
                { "go",      required_argument, NULL, 'g' },
                { 0 }
        };
        struct client cl = { .timeout_ms = 10000 };
        unsigned long count = 1, passed = 0, failed = 0;
        unsigned line;
        bool single = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's': cl.server = optarg; break;
                case 'v': cl.path = optarg; break;
                case 'n': count = strtoul(optarg, NULL, 10); break;
                case 'f': cl.fault = parse_fault(optarg); single = true; break;
                case 't': cl.timeout_ms = atoi(optarg) * 1000; break;
                case 'S': cl.source = optarg; break;
                case 'g': cl.go = optarg; break;
                case 'd':
                        cl.data = realloc(cl.data, (cl.n_data + 1) * sizeof *cl.data);
                        if (!cl.data)
                                return 1;
                        cl.data[cl.n_data++] = optarg;
                        cl.channel = true;
                        break;
                case 'K': cl.show_key = true; break;
                case 'D': cl.data_fault = parse_data_fault(optarg); cl.channel = true; single = true; break;
                default: return 2;
                }
        if (!cl.server || !cl.path || count == 0) {
                fprintf(stderr, "usage: sv-client --server HOST:PORT --vault BUNDLE [--count N] [--fault F]\n");
                return 2;
        }
        r = bundle_file_load(cl.path, &cl.b, &line);
        if (r < 0) {
                fprintf(stderr, "sv-client: cannot read vault '%s' (line %u): %s\n", cl.path, line, strerror(-r));
                return 1;
        }
        cl.next = malloc(vault_size(&cl.b.params));
        if (!cl.next)
                return 1;

        if (single) {
                uint8_t code = 0;

                if (cl.fault == FAULT_REPLAY_M3) {
                        /* Record an M3, abandon that handshake, then replay it in a fresh one. */
                        enum fault f = cl.fault;

                        cl.fault = FAULT_CLOSE_M3;
                        (void) handshake(&cl, &code);
                        cl.fault = f;
                }
                r = handshake(&cl, &code);
                if (r == 1)
                        printf("refused %u\n", code);
                else if (r < 0)
                        printf("closed %s\n", strerror(-r));
                else
                        printf("ok epoch %" PRIu64 "\n", cl.b.params.epoch);
                bundle_free(&cl.b);
                free(cl.next);
                free(cl.data);
                return 0;
        }
        for (unsigned long i = 0; i < count; i++) {
                uint8_t code = 0;

                r = handshake(&cl, &code);
                if (r == 0)
                        passed++;
                else {
                        failed++;
                        fprintf(stderr, "sv-client: handshake %lu failed: %s\n", i + 1,
                                r == 1 ? wire_error_name(code) : strerror(-r));
                }
        }
        printf("%lu passed, %lu failed\n", passed, failed);
        bundle_free(&cl.b);
        free(cl.next);
        free(cl.data);
        return failed == 0 ? 0 : 1;
}
