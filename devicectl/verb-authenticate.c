/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "devicectl.h"

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
               "                          where the session key goes (default @u)\n"
               "     --lifetime SECONDS   expiry of the key in the keyring (default %d)\n"
               "     --timeout SECONDS    give up on the server after this long (default %d)\n"
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

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 1;
                case ARG_SERVER:
                        if (!bundle_server_valid(optarg)) {
                                fprintf(stderr, "devicectl: invalid server '%s': expected HOST:PORT or [V6]:PORT\n", optarg);
                                return -EINVAL;
                        }
                        o->server = optarg;
                        break;
                case ARG_KEYRING:
                        if (strcmp(optarg, "@u") && strcmp(optarg, "@s") && strcmp(optarg, "@p") && strcmp(optarg, "none")) {
                                fprintf(stderr, "devicectl: invalid keyring '%s': expected @u, @s, @p or none\n", optarg);
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
                        return -EINVAL;
                }
        if (optind != argc) {
                fprintf(stderr, "devicectl: authenticate takes no arguments, got '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

/* One step through vaultd: the server's frame in, our next frame out (into s->frame). */
static int vaultd_step(struct auth_session *s, uint8_t op, const char *what, struct ipc_reply *rep) {
        int r;

        r = vaultd_call(&s->vaultd, op, 0, s->frame, s->frame_len, -1, s->packet, sizeof s->packet, rep);
        if (r < 0) {
                fprintf(stderr, "devicectl: vaultd failed during %s: %s\n", what, strerror(-r));
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (rep->status != IPC_OK)
                return vaultd_reply_error(what, rep);
        return EXIT_OK;
}

/* Sends s->frame; with reply_type, reads the reply of that type and body size into it. */
static int server_exchange(struct auth_session *s, const char *server, uint8_t reply_type, size_t reply_len) {
        int r;

        r = net_send_frame(s->tcp, s->frame, s->frame_len, s->deadline);
        if (r >= 0 && reply_type)
                r = net_recv_frame(s->tcp, s->frame, sizeof s->frame, &s->frame_len, s->deadline,
                                   reply_type, reply_len);
        if (r < 0) {
                fprintf(stderr, "devicectl: exchange with server '%s' failed: %s\n", server,
                        r == -ETIMEDOUT ? "timed out" : r == -ECONNRESET ? "connection closed" : strerror(-r));
                return r == -ETIMEDOUT || r == -ECONNRESET || r == -EPIPE ? EXIT_SERVER_UNREACHABLE : EXIT_PROTOCOL;
        }
        return EXIT_OK;
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
                        for (size_t i = 0; i < sizeof res->session_key; i++)
                                printf("%02x", res->session_key[i]);
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
                        for (size_t i = 0; i < sizeof res->session_key; i++)
                                printf("%02x", res->session_key[i]);
                        printf("\n");
                }
        }
        fflush(stdout);
}

int verb_authenticate(struct devicectl *ctl, int argc, char *argv[]) {
        struct auth_options o = {
                .keyring = "@u",
                .lifetime_s = DEVICECTL_DEFAULT_LIFETIME_S,
                .timeout_s = DEVICECTL_DEFAULT_TIMEOUT_S,
        };
        struct auth_session s = { .tcp = -1, .vaultd.fd = -1 };
        struct ipc_status_info info;
        struct ipc_confirm_result res = { 0 };
        struct ipc_reply rep;
        const char *server;
        int32_t serial = 0;
        int r, ret;

        r = parse_options(ctl, argc, argv, &o);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;

        r = vaultd_connect(&s.vaultd, ctl->socket_path);
        if (r < 0) {
                fprintf(stderr, "devicectl: cannot reach vaultd at '%s': %s\n", ctl->socket_path, strerror(-r));
                return EXIT_VAULTD_UNAVAILABLE;
        }
        s.frame_len = 0;
        ret = vaultd_step(&s, IPC_OP_STATUS, "status", &rep);
        if (ret != EXIT_OK)
                goto out;
        if (ipc_decode_status(rep.body, rep.body_len, &info) < 0) {
                fprintf(stderr, "devicectl: vaultd sent a malformed status\n");
                ret = EXIT_FAILURE_OTHER;
                goto out;
        }
        if (!info.provisioned) {
                fprintf(stderr, "devicectl: no vault provisioned: run 'devicectl provision BUNDLE' first\n");
                ret = EXIT_NOT_PROVISIONED;
                goto out;
        }
        server = o.server ? o.server : info.server;
        if (!server[0]) {
                fprintf(stderr, "devicectl: the bundle names no server: pass --server HOST:PORT\n");
                ret = EXIT_USAGE;
                goto out;
        }

        /* M1 from vaultd, then one round trip to the server per vaultd step. */
        ret = vaultd_step(&s, IPC_OP_HELLO, "hello", &rep);
        if (ret != EXIT_OK)
                goto out;
        memcpy(s.frame, rep.body, rep.body_len);
        s.frame_len = rep.body_len;

        s.deadline = now_ms() + (int64_t) o.timeout_s * 1000;
        r = net_connect(server, (int) o.timeout_s * 1000, &s.tcp);
        if (r < 0) {
                fprintf(stderr, "devicectl: cannot connect to server '%s': %s\n", server, strerror(-r));
                ret = EXIT_SERVER_UNREACHABLE;
                goto out;
        }
        ret = server_exchange(&s, server, SV_MSG_CHALLENGE, SV_CHALLENGE_BODY_LEN(info.params.p));
        if (ret == EXIT_OK)
                ret = vaultd_step(&s, IPC_OP_RESPOND, "response", &rep);
        if (ret != EXIT_OK)
                goto out;
        memcpy(s.frame, rep.body, rep.body_len);
        s.frame_len = rep.body_len;
        ret = server_exchange(&s, server, SV_MSG_CONFIRM, SV_CONFIRM_BODY_LEN);
        if (ret == EXIT_OK)
                ret = vaultd_step(&s, IPC_OP_CONFIRM, "confirmation", &rep);
        if (ret != EXIT_OK)
                goto out;
        if (ipc_decode_confirm(rep.body, rep.body_len, &res) < 0) {
                fprintf(stderr, "devicectl: vaultd sent a malformed confirmation\n");
                ret = EXIT_FAILURE_OTHER;
                goto out;
        }

        /* vaultd has made the new vault durable: from here on this side has succeeded, and a lost
         * M5 is recovered by the server at the next handshake (protocol §6). */
        memcpy(s.frame, res.m5, res.m5_len);
        s.frame_len = res.m5_len;
        if (server_exchange(&s, server, 0, 0) != EXIT_OK)
                fprintf(stderr, "devicectl: warning: M5 may not have reached the server; it recovers at the next handshake\n");

        if (strcmp(o.keyring, "none") != 0) {
                r = keyring_add_session_key(o.keyring, info.params.device_id, res.session_key, o.lifetime_s, &serial);
                if (r < 0) {
                        fprintf(stderr, "devicectl: authenticated, but adding the key to keyring %s failed: %s\n",
                                o.keyring, strerror(-r));
                        ret = EXIT_FAILURE_OTHER;
                        goto out;
                }
        }
        report(ctl, &o, &info, server, &res, serial);
        ret = EXIT_OK;
out:
        OPENSSL_cleanse(&res, sizeof res);
        OPENSSL_cleanse(s.packet, sizeof s.packet);
        if (s.tcp >= 0)
                close(s.tcp);
        vaultd_disconnect(&s.vaultd);
        return ret;
}
