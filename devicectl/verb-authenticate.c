/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "devicectl.h"
#include "log.h"
#include "text.h"
#include "wire.h"

/* M5 comes from vaultd's confirm record, of fixed size, and is sent from s->frame. */
_Static_assert(SV_COMMIT_FRAME_LEN <= SV_FRAME_MAX, "M5 must fit a frame buffer");

struct auth_options {
        const char *server;
        const char *keyring;
        bool print_key;
        unsigned lifetime_s;
        unsigned timeout_s;
};

struct auth_session {
        struct vaultd_conn vaultd;
        int tcp;
        const char *server;
        unsigned timeout_s;
        int64_t deadline;
        uint8_t frame[SV_FRAME_MAX];
        size_t frame_len;
        uint8_t packet[IPC_PACKET_MAX];
};

static void help(void) {
        printf("Usage: devicectl authenticate [OPTIONS]\n\n"
               "Authenticate this device and the server to each other with the vault, through\n"
               "vaultd, and hand the session key to the kernel keyring.\n\n"
               "     --server HOST:PORT   the authserver (default: the one in the bundle)\n"
               "     --keyring @u|@s|@p|none\n"
               "                          where the session key goes (default @u; @p, the process\n"
               "                          keyring, ends with devicectl: for testing only)\n"
               "     --lifetime SECONDS   expiry of the key in the keyring (default %d)\n"
               "     --timeout SECONDS    give up on the server after this long (default %d;\n"
               "                          the name lookup is not bounded by it)\n"
               "     --print-key          also print the session key in hex\n"
               "     --json               machine-readable output\n",
               DEVICECTL_DEFAULT_LIFETIME_S, DEVICECTL_DEFAULT_TIMEOUT_S);
}

static int parse_options(struct devicectl *ctl, int argc, char *argv[], struct auth_options *o) {
        enum { ARG_SERVER = 0x100, ARG_KEYRING, ARG_PRINT_KEY, ARG_LIFETIME, ARG_TIMEOUT, ARG_JSON };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h' },
                { "server",    required_argument, NULL, ARG_SERVER },
                { "keyring",   required_argument, NULL, ARG_KEYRING },
                { "print-key", no_argument,       NULL, ARG_PRINT_KEY },
                { "lifetime",  required_argument, NULL, ARG_LIFETIME },
                { "timeout",   required_argument, NULL, ARG_TIMEOUT },
                { "json",      no_argument,       NULL, ARG_JSON },
                { 0 }
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 1;
                case ARG_SERVER:
                        if (!bundle_server_valid(optarg)) {
                                log_error("invalid server '%s': expected HOST:PORT or [V6]:PORT", optarg);
                                return -EINVAL;
                        }
                        o->server = optarg;
                        break;
                case ARG_KEYRING:
                        if (strcmp(optarg, "@u") && strcmp(optarg, "@s") && strcmp(optarg, "@p") && strcmp(optarg, "none")) {
                                log_error("invalid keyring '%s': expected @u, @s, @p or none", optarg);
                                return -EINVAL;
                        }
                        o->keyring = optarg;
                        break;
                case ARG_PRINT_KEY:
                        o->print_key = true;
                        break;
                case ARG_LIFETIME:
                        if (parse_seconds(optarg, "--lifetime", &o->lifetime_s) < 0)
                                return -EINVAL;
                        break;
                case ARG_TIMEOUT:
                        if (parse_seconds(optarg, "--timeout", &o->timeout_s) < 0)
                                return -EINVAL;
                        break;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                default:
                        option_error("authenticate", c, argv, options);
                        return -EINVAL;
                }
        if (optind != argc) {
                log_error("authenticate takes no arguments, got '%s'", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

/* One step through vaultd: the server's frame in, our next frame out (into s->frame). */
static int vaultd_step(struct auth_session *s, uint8_t op, const char *what, struct ipc_reply *rep) {
        int r;

        r = vaultd_call(&s->vaultd, op, 0, s->frame, s->frame_len, -1, s->packet, sizeof s->packet, rep);
        if (r < 0) {
                log_error_errno(r, "vaultd failed during %s: %m", what);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (rep->status != IPC_OK)
                return vaultd_reply_error(what, rep);
        return EXIT_OK;
}

/*
 * vaultd's reply becomes the next frame we send the server. vaultd is trusted to hold the
 * vault, not to be free of bugs: a reply body may be up to IPC_PACKET_MAX - IPC_HEADER_LEN
 * bytes, more than a frame, so it is bounded by s->frame and must be one whole frame of the
 * type (and, where known, the exact size) this step produces, before it is copied.
 */
static int take_vaultd_frame(struct auth_session *s, const struct ipc_reply *rep, uint8_t type, size_t body_len,
                             const char *what) {
        if (rep->body_len > sizeof s->frame || wire_frame_check(rep->body, rep->body_len, type, body_len) < 0) {
                log_error("vaultd sent a malformed %s (%zu bytes)", what, rep->body_len);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        memcpy(s->frame, rep->body, rep->body_len);
        s->frame_len = rep->body_len;
        return EXIT_OK;
}

/*
 * Sends s->frame; with reply_type, reads the reply of that type and body size into it.
 * A transport failure (connection lost, --timeout) is "server unreachable"; a frame that
 * is malformed or not the one expected here is a protocol error.
 */
static int server_exchange(struct auth_session *s, uint8_t reply_type, size_t reply_len) {
        int r;

        r = net_send_frame(s->tcp, s->frame, s->frame_len, s->deadline);
        if (r >= 0 && reply_type)
                r = net_recv_frame(s->tcp, s->frame, sizeof s->frame, &s->frame_len, s->deadline,
                                   reply_type, reply_len);
        switch (r) {
        case 0:
                return EXIT_OK;
        case -EPROTONOSUPPORT:
                log_error("server '%s' speaks another protocol version", s->server);
                return EXIT_PROTOCOL;
        case -EMSGSIZE:
                log_error("server '%s' sent a frame larger than the protocol allows", s->server);
                return EXIT_PROTOCOL;
        case -EPROTO:
                log_error("server '%s' sent an unexpected message", s->server);
                return EXIT_PROTOCOL;
        case -EBADMSG:
                log_error("server '%s' sent a message of the wrong length", s->server);
                return EXIT_PROTOCOL;
        case -ETIMEDOUT:
                log_error("server '%s' did not answer within %u seconds (--timeout)",
                        s->server, s->timeout_s);
                return EXIT_SERVER_UNREACHABLE;
        case -ECONNRESET:
        case -EPIPE:
                log_error("server '%s' closed the connection", s->server);
                return EXIT_SERVER_UNREACHABLE;
        default:
                log_error_errno(r, "exchange with server '%s' failed: %m", s->server);
                return EXIT_SERVER_UNREACHABLE;
        }
}

/*
 * STATUS reports a vault that vaultd refused (rolled back, foreign, tampered) as not
 * provisioned, without the reason; HELLO, which needs a usable vault, is refused with it
 * (docs/ipc.md §3). So ask for HELLO to tell the two apart and to show vaultd's reason.
 */
static int explain_no_vault(struct auth_session *s) {
        struct ipc_reply rep;
        int r;

        r = vaultd_call(&s->vaultd, IPC_OP_HELLO, 0, NULL, 0, -1, s->packet, sizeof s->packet, &rep);
        if (r < 0) {
                log_error_errno(r, "vaultd failed during hello: %m");
                return EXIT_VAULTD_UNAVAILABLE;
        }
        switch (rep.status) {
        case IPC_NOT_PROVISIONED:
                log_error("no vault provisioned: run 'devicectl provision BUNDLE' first");
                return EXIT_NOT_PROVISIONED;
        case IPC_INTERNAL:
                if (text_is_printable(rep.body, rep.body_len, TEXT_SPACE) && rep.body_len > 0 &&
                    rep.body_len <= IPC_MESSAGE_MAX)
                        log_error("no usable vault: vaultd says: %.*s (see 'journalctl -u vaultd')",
                                (int) rep.body_len, (const char *) rep.body);
                else
                        log_error("no usable vault: vaultd refused it (see 'journalctl -u vaultd')");
                return EXIT_NOT_PROVISIONED;
        case IPC_OK:
                /* Provisioned since our STATUS. Closing the connection aborts the handshake
                 * this HELLO began; starting over is simpler than patching up the status. */
                log_error("a vault was provisioned meanwhile: run 'devicectl authenticate' again");
                return EXIT_FAILURE_OTHER;
        default:
                return vaultd_reply_error("hello", &rep);
        }
}

/*
 * The one place the session key is written out (--print-key), in lower-case hex. The digits
 * are computed without a table or a branch on the key's bits, and the text is wiped after
 * use; what stdio keeps in its own buffer is beyond reach, one more reason --print-key is
 * for testing.
 */
static void print_key_hex(const uint8_t key[SV_KEY_LEN]) {
        char hex[2 * SV_KEY_LEN + 1];

        for (size_t i = 0; i < SV_KEY_LEN; i++)
                for (size_t j = 0; j < 2; j++) {
                        int n = (key[i] >> (4 - 4 * j)) & 0xf;

                        /* (9 - n) >> 8 is all ones for n > 9: skip from '9' + 1 to 'a'. */
                        hex[2 * i + j] = (char) ('0' + n + (((9 - n) >> 8) & ('a' - '0' - 10)));
                }
        hex[2 * SV_KEY_LEN] = '\0';
        fputs(hex, stdout);
        OPENSSL_cleanse(hex, sizeof hex);
}

static void report(const struct devicectl *ctl, const struct auth_options *o, const struct ipc_status_info *info,
                   const char *server, const struct ipc_confirm_result *res, int32_t serial) {
        time_t expires = time(NULL) + o->lifetime_s;
        char when[64] = "";
        struct tm tm;

        if (gmtime_r(&expires, &tm))
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (ctl->json) {
                printf("{\"device\":");
                json_print_string(info->params.device_id);
                printf(",\"server\":");
                json_print_string(server);
                printf(",\"epoch\":%" PRIu64, res->epoch);
                if (serial > 0)
                        printf(",\"keyring\":\"%s\",\"key_serial\":%" PRId32 ",\"expires\":\"%s\"", o->keyring, serial, when);
                if (o->print_key) {
                        printf(",\"session_key\":\"");
                        print_key_hex(res->session_key);
                        printf("\"");
                }
                printf("}\n");
        } else {
                printf("authenticated device '%s' with server %s, epoch %" PRIu64, info->params.device_id, server, res->epoch);
                if (serial > 0)
                        printf(", key %" PRId32 " in %s (secure-vault:%s) expires %s", serial, o->keyring,
                               info->params.device_id, when);
                printf("\n");
                if (o->print_key) {
                        print_key_hex(res->session_key);
                        printf("\n");
                }
        }
        fflush(stdout);
}

void auth_result_done(struct auth_result *a) {
        OPENSSL_cleanse(&a->res, sizeof a->res);
        if (a->tcp >= 0)
                close(a->tcp);
        a->tcp = -1;
}

int auth_handshake(struct devicectl *ctl, const char *server, unsigned timeout_s, struct auth_result *ret) {
        struct auth_session s = { .tcp = -1, .vaultd.fd = -1 };
        struct ipc_status_info info;
        struct ipc_confirm_result res = { 0 };
        struct ipc_reply rep;
        struct addrinfo *addrs = NULL;
        const char *lookup_error = NULL;
        int r, ret_code;

        r = vaultd_connect(&s.vaultd, ctl->socket_path);
        if (r < 0) {
                log_error_errno(r, "cannot reach vaultd at '%s': %m", ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        s.frame_len = 0;
        ret_code = vaultd_step(&s, IPC_OP_STATUS, "status", &rep);
        if (ret_code != EXIT_OK)
                goto out;
        if (ipc_decode_status(rep.body, rep.body_len, &info) < 0) {
                log_error("vaultd at '%s' sent a malformed status", ctl->socket_path);
                ret_code = EXIT_VAULTD_UNAVAILABLE;
                goto out;
        }
        if (!info.provisioned) {
                ret_code = explain_no_vault(&s);
                goto out;
        }
        s.server = server ? server : info.server;
        s.timeout_s = timeout_s;
        if (!s.server[0]) {
                log_error("the bundle names no server: pass --server HOST:PORT");
                ret_code = EXIT_USAGE;
                goto out;
        }

        /* M1 from vaultd, then one round trip to the server per vaultd step. */
        ret_code = vaultd_step(&s, IPC_OP_HELLO, "hello", &rep);
        if (ret_code == EXIT_OK)
                ret_code = take_vaultd_frame(&s, &rep, SV_MSG_HELLO, 0, "M1");
        if (ret_code != EXIT_OK)
                goto out;

        /* The name lookup cannot be bounded; --timeout starts after it, for connecting and
         * the whole exchange. Milliseconds in 64 bits: --timeout goes up to a year. */
        r = net_resolve(s.server, &addrs, &lookup_error);
        if (r < 0) {
                if (lookup_error)
                        log_error("cannot resolve server '%s': %s", s.server, lookup_error);
                else
                        log_error_errno(r, "invalid server '%s': %m", s.server);
                ret_code = r == -EHOSTUNREACH ? EXIT_SERVER_UNREACHABLE : EXIT_USAGE;
                goto out;
        }
        s.deadline = now_ms() + (int64_t) timeout_s * 1000;
        r = net_connect_resolved(addrs, s.deadline, &s.tcp);
        freeaddrinfo(addrs);
        if (r < 0) {
                if (r == -ETIMEDOUT)
                        log_error("cannot connect to server '%s': no answer within %u seconds (--timeout)",
                                s.server, timeout_s);
                else
                        log_error_errno(r, "cannot connect to server '%s': %m", s.server);
                ret_code = EXIT_SERVER_UNREACHABLE;
                goto out;
        }
        /* info.params passed ipc_decode_status()'s vault_params_validate(): every length is
         * known, the key share's (kex) included. */
        ret_code = server_exchange(&s, SV_MSG_CHALLENGE, vault_body_len(SV_MSG_CHALLENGE, &info.params));
        if (ret_code == EXIT_OK)
                ret_code = vaultd_step(&s, IPC_OP_RESPOND, "response", &rep);
        if (ret_code == EXIT_OK)
                ret_code = take_vaultd_frame(&s, &rep, SV_MSG_RESPONSE, vault_body_len(SV_MSG_RESPONSE, &info.params), "M3");
        if (ret_code != EXIT_OK)
                goto out;
        ret_code = server_exchange(&s, SV_MSG_CONFIRM, vault_body_len(SV_MSG_CONFIRM, &info.params));
        if (ret_code == EXIT_OK)
                ret_code = vaultd_step(&s, IPC_OP_CONFIRM, "confirmation", &rep);
        if (ret_code != EXIT_OK)
                goto out;
        if (ipc_decode_confirm(rep.body, rep.body_len, &res) < 0) {
                log_error("vaultd at '%s' sent a malformed confirmation", ctl->socket_path);
                ret_code = EXIT_VAULTD_UNAVAILABLE;
                goto out;
        }

        /* vaultd has made the new vault durable: from here on this side has succeeded, and a lost
         * M5 is recovered by the server at the next handshake (protocol §6). ipc_decode_confirm()
         * checked m5_len == SV_COMMIT_FRAME_LEN, which fits s.frame. */
        memcpy(s.frame, res.m5, res.m5_len);
        s.frame_len = res.m5_len;
        if (server_exchange(&s, 0, 0) != EXIT_OK)
                log_warning("warning: M5 may not have reached the server; it recovers at the next handshake");

        *ret = (struct auth_result) { .tcp = s.tcp, .info = info, .res = res, .server = s.server };
        s.tcp = -1;
        ret_code = EXIT_OK;
out:
        OPENSSL_cleanse(&res, sizeof res);
        OPENSSL_cleanse(s.packet, sizeof s.packet);
        if (s.tcp >= 0)
                close(s.tcp);
        vaultd_disconnect(&s.vaultd);
        return ret_code;
}

int verb_authenticate(struct devicectl *ctl, int argc, char *argv[]) {
        struct auth_options o = {
                .keyring = "@u",
                .lifetime_s = DEVICECTL_DEFAULT_LIFETIME_S,
                .timeout_s = DEVICECTL_DEFAULT_TIMEOUT_S,
        };
        struct auth_result a = { .tcp = -1 };
        int32_t serial = 0;
        int r, ret;

        r = parse_options(ctl, argc, argv, &o);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;

        ret = auth_handshake(ctl, o.server, o.timeout_s, &a);
        if (ret != EXIT_OK)
                return ret;
        if (strcmp(o.keyring, "none") != 0) {
                r = keyring_add_session_key(o.keyring, a.info.params.device_id, a.res.session_key, o.lifetime_s, &serial);
                if (r < 0) {
                        log_error_errno(r, "authenticated, but adding the key to keyring %s failed: %m", o.keyring);
                        ret = EXIT_FAILURE_OTHER;
                        goto out;
                }
        }
        report(ctl, &o, &a.info, a.server, &a.res, serial);
        ret = EXIT_OK;
out:
        auth_result_done(&a);
        return ret;
}
