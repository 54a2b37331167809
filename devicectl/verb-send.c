/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "devicectl.h"
#include "log.h"
#include "record.h"
#include "text.h"

/*
 * devicectl send: authenticate, then carry messages over the data channel of protocol 1.1
 * §11 with the two secrets vaultd handed out at CONFIRM. Every MESSAGE (or every line of
 * standard input) is one DATA record; every DATA record of the server is printed on a line
 * of its own; the channel ends with CLOSE both ways. Without the server's CLOSE the channel
 * was cut (EXIT_CHANNEL_CUT): what was sent may or may not have been acted on.
 */

struct send_options {
        struct server_options net;      /* --server, --timeout */
        char **messages;
        size_t n_messages;
};

struct channel {
        int fd;
        const char *server;
        unsigned timeout_s;
        bool json;
        bool server_closed;             /* the server's CLOSE opened */
        bool input_left;                /* standard input not read to its end when it came */
        uint64_t sent, received;
        struct record_chain tx, rx;
        uint8_t frame[RECORD_FRAME_MAX];
        uint8_t payload[RECORD_PAYLOAD_MAX];
};

static void help(void) {
        printf("Usage: devicectl send [OPTIONS] [MESSAGE...]\n\n"
               "Authenticate, then send each MESSAGE (without any: each line of standard input)\n"
               "as one record of the data channel, print every record the server sends back on\n"
               "a line of its own, and close the channel.\n\n"
               "     --server HOST:PORT   the authserver (default: the one in the bundle)\n"
               "     --timeout SECONDS    give up on the server after this long without an\n"
               "                          answer it owes (default %d)\n"
               "     --json               one JSON object per line: {\"data\":...} per record,\n"
               "                          then a summary\n\n"
               "A message is at most %d bytes. Exit 14 if the server cut the channel (no CLOSE).\n",
               DEVICECTL_DEFAULT_TIMEOUT_S, RECORD_PAYLOAD_MAX);
}

const struct option verb_send_options[] = { SERVER_VERB_OPTIONS, { 0 } };

static int parse_options(struct devicectl *ctl, int argc, char *argv[], struct send_options *o) {
        static const struct server_verb verb = { "send", verb_send_options, help, NULL };
        int r;

        r = parse_server_verb_options(ctl, &verb, argc, argv, &o->net, NULL);
        if (r != 0)
                return r;
        o->messages = argv + optind;
        o->n_messages = (size_t) (argc - optind);
        /* Checked before anything is sent: a message that cannot be one record is a usage error. */
        for (size_t i = 0; i < o->n_messages; i++)
                if (strlen(o->messages[i]) > RECORD_PAYLOAD_MAX) {
                        log_error("message %zu is %zu bytes, more than a record carries (%d)", i + 1,
                                  strlen(o->messages[i]), RECORD_PAYLOAD_MAX);
                        return -EINVAL;
                }
        return 0;
}

/*
 * A payload as one line of text: printable ASCII as it is, a backslash doubled, any other
 * byte (a line end of its own, a control character) as \xNN, so that one record stays one
 * line and nothing the server sends can drive the terminal.
 */
static void print_payload(const struct channel *ch, const uint8_t *p, size_t len) {
        static const char hex[] = "0123456789abcdef";
        char line[4 * RECORD_PAYLOAD_MAX + 1], json[6 * 4 * RECORD_PAYLOAD_MAX + 1];
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                if (p[i] == '\\') {
                        line[o++] = '\\';
                        line[o++] = '\\';
                } else if (p[i] >= 0x20 && p[i] < 0x7f)
                        line[o++] = (char) p[i];
                else {
                        line[o++] = '\\';
                        line[o++] = 'x';
                        line[o++] = hex[p[i] >> 4];
                        line[o++] = hex[p[i] & 0xf];
                }
        }
        line[o] = '\0';
        if (ch->json)
                printf("{\"data\":\"%s\"}\n", text_json_escape(line, json, sizeof json) < 0 ? "" : json);
        else
                printf("%s\n", line);
        fflush(stdout);
}

static int64_t deadline(const struct channel *ch) {
        return now_ms() + (int64_t) ch->timeout_s * 1000;
}

/* A transport failure before the server's CLOSE: the channel was cut. */
static int channel_cut(const struct channel *ch, int r) {
        /* After the server's CLOSE, a reset on our answering CLOSE ends a clean channel. */
        if (ch->server_closed)
                log_debug_errno(r, "server '%s' gone before our CLOSE reached it: %m", ch->server);
        else if (r == -ETIMEDOUT)
                log_error("server '%s' sent nothing for %u seconds (--timeout): channel cut without CLOSE "
                          "after %" PRIu64 " messages sent", ch->server, ch->timeout_s, ch->sent);
        else if (r == -ECONNRESET || r == -EPIPE)
                log_error("server '%s' cut the channel without CLOSE after %" PRIu64 " messages sent",
                          ch->server, ch->sent);
        else
                log_error_errno(r, "channel with server '%s' cut without CLOSE after %" PRIu64 " messages sent: %m",
                                ch->server, ch->sent);
        return EXIT_CHANNEL_CUT;
}

/* Reads and handles one record of the server; sets server_closed at its CLOSE. */
static int read_record(struct channel *ch) {
        size_t len = 0, plen = 0;
        int r;

        r = net_recv_record(ch->fd, ch->frame, sizeof ch->frame, &len, deadline(ch));
        if (r == -EPROTONOSUPPORT || r == -EPROTO || r == -EMSGSIZE || r == -EBADMSG) {
                log_error("server '%s' sent a malformed record", ch->server);
                return EXIT_PROTOCOL;
        }
        if (r < 0)
                return channel_cut(ch, r);
        r = record_open(&ch->rx, ch->frame, len, ch->payload, sizeof ch->payload, &plen);
        if (r < 0) {
                /* Forged, replayed, reordered, reflected or damaged (§11): nothing more is read. */
                log_error("server '%s' sent a record that does not open: the channel is not to be trusted",
                          ch->server);
                return EXIT_PROTOCOL;
        }
        if (r == SV_MSG_CLOSE) {
                ch->server_closed = true;
                return EXIT_OK;
        }
        ch->received++;
        print_payload(ch, ch->payload, plen);
        OPENSSL_cleanse(ch->payload, plen);
        return EXIT_OK;
}

static bool readable_now(int fd) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        return poll(&pfd, 1, 0) > 0;
}

/* Prints what the server has sent so far, without waiting for more. */
static int drain(struct channel *ch) {
        int ret = EXIT_OK;

        while (ret == EXIT_OK && !ch->server_closed && readable_now(ch->fd))
                ret = read_record(ch);
        return ret;
}

static int seal_and_send(struct channel *ch, uint8_t type, const void *p, size_t len) {
        size_t flen = 0;
        int r;

        r = record_seal(&ch->tx, type, p, len, ch->frame, sizeof ch->frame, &flen);
        if (r < 0)
                return log_error_errno(r, "cannot seal a record: %m"), EXIT_FAILURE_OTHER;
        r = net_send_frame(ch->fd, ch->frame, flen, deadline(ch));
        if (r < 0)
                return channel_cut(ch, r);
        return EXIT_OK;
}

static int send_message(struct channel *ch, const void *p, size_t len) {
        int ret = seal_and_send(ch, SV_MSG_DATA, p, len);

        if (ret == EXIT_OK)
                ch->sent++;
        return ret == EXIT_OK ? drain(ch) : ret;
}

/*
 * Standard input, line by line, while printing the server's records as they come: poll()
 * on both, read(2) rather than stdio so that no line waits in a buffer poll() cannot see.
 * A last line without a line end is sent too. A line longer than a record is an error.
 */
static int send_stdin(struct channel *ch) {
        static char buf[RECORD_PAYLOAD_MAX + 1];
        size_t have = 0;
        bool eof = false;
        int ret = EXIT_OK;

        while (ret == EXIT_OK && !eof && !ch->server_closed) {
                struct pollfd pfd[2] = { { .fd = ch->fd, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
                ssize_t n;
                char *nl;

                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "poll failed: %m"), EXIT_FAILURE_OTHER;
                }
                if (pfd[0].revents) {
                        ret = read_record(ch);
                        continue;
                }
                if (!pfd[1].revents)
                        continue;
                n = read(STDIN_FILENO, buf + have, sizeof buf - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(errno, "cannot read standard input: %m"), EXIT_FAILURE_OTHER;
                if (n == 0)
                        eof = true;
                have += (size_t) n;
                while (ret == EXIT_OK && (nl = memchr(buf, '\n', have))) {
                        size_t line = (size_t) (nl - buf);

                        ret = send_message(ch, buf, line);
                        memmove(buf, nl + 1, have - line - 1);
                        have -= line + 1;
                }
                if (ret == EXIT_OK && have == sizeof buf) {
                        log_error("line %" PRIu64 " of standard input is longer than a record carries (%d bytes)",
                                  ch->sent + 1, RECORD_PAYLOAD_MAX);
                        return EXIT_USAGE;
                }
                if (ret == EXIT_OK && eof && have > 0)
                        ret = send_message(ch, buf, have);
        }
        ch->input_left = ch->server_closed && !eof;
        return ret;
}

int verb_send(struct devicectl *ctl, int argc, char *argv[]) {
        struct send_options o = { .net.timeout_s = DEVICECTL_DEFAULT_TIMEOUT_S };
        struct auth_result a = { .tcp = -1 };
        struct channel ch = { .fd = -1 };
        int r, ret, closing;

        r = parse_options(ctl, argc, argv, &o);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;

        ret = auth_handshake(ctl, o.net.server, o.net.timeout_s, &a);
        if (ret != EXIT_OK)
                return ret;
        ch.fd = a.tcp;
        ch.server = a.server;
        ch.timeout_s = o.net.timeout_s;
        ch.json = ctl->json;
        /* record_init() takes the secrets over and wipes them where vaultd's record put them. */
        record_init(&ch.tx, a.res.c2s);
        record_init(&ch.rx, a.res.s2c);

        if (o.n_messages > 0)
                for (size_t i = 0; i < o.n_messages && ret == EXIT_OK && !ch.server_closed; i++)
                        ret = send_message(&ch, o.messages[i], strlen(o.messages[i]));
        else
                ret = send_stdin(&ch);

        /* CLOSE both ways: ours (also after a line too long, so the server ends cleanly, or in
         * answer to the server's own), then every record up to the server's CLOSE. */
        if (ret == EXIT_OK || ret == EXIT_USAGE) {
                closing = seal_and_send(&ch, SV_MSG_CLOSE, NULL, 0);
                while (closing == EXIT_OK && !ch.server_closed)
                        closing = read_record(&ch);
                if (closing != EXIT_OK && !(ch.server_closed && closing == EXIT_CHANNEL_CUT))
                        ret = closing;
        }
        if (ret == EXIT_OK && (o.n_messages > ch.sent || ch.input_left)) {
                log_error("server '%s' closed the channel after %" PRIu64 " messages, before all were sent",
                          ch.server, ch.sent);
                ret = EXIT_FAILURE_OTHER;
        }
        if (ret == EXIT_OK && ctl->json) {
                printf("{\"device\":");
                json_print_string(a.info.params.device_id);
                printf(",\"server\":");
                json_print_string(a.server);
                printf(",\"epoch\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"closed\":true}\n",
                       a.res.epoch, ch.sent, ch.received);
        }
        record_wipe(&ch.tx);
        record_wipe(&ch.rx);
        OPENSSL_cleanse(ch.payload, sizeof ch.payload);
        auth_result_done(&a);
        return ret;
}
