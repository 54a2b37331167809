/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "devicectl.h"
#include "log.h"

struct auth_options {
        struct server_options net;      /* --server, --timeout */
        const char *keyring;
        bool print_key;
        unsigned lifetime_s;
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

enum { ARG_KEYRING = SERVER_VERB_ARG_OWN, ARG_PRINT_KEY, ARG_LIFETIME };

static int own_option(void *userdata, int c, const char *arg) {
        struct auth_options *o = userdata;

        switch (c) {
        case ARG_KEYRING:
                if (strcmp(arg, "@u") && strcmp(arg, "@s") && strcmp(arg, "@p") && strcmp(arg, "none")) {
                        log_error("invalid keyring '%s': expected @u, @s, @p or none", arg);
                        return -EINVAL;
                }
                o->keyring = arg;
                return 0;
        case ARG_PRINT_KEY:
                o->print_key = true;
                return 0;
        case ARG_LIFETIME:
                return parse_seconds(arg, "--lifetime", &o->lifetime_s);
        }
        return -EINVAL;
}

const struct option verb_authenticate_options[] = {
        SERVER_VERB_OPTIONS,
        { "keyring",   required_argument, NULL, ARG_KEYRING },
        { "print-key", no_argument,       NULL, ARG_PRINT_KEY },
        { "lifetime",  required_argument, NULL, ARG_LIFETIME },
        { 0 }
};

static int parse_options(struct devicectl *ctl, int argc, char *argv[], struct auth_options *o) {
        static const struct server_verb verb = { "authenticate", verb_authenticate_options, help, own_option };
        int r;

        r = parse_server_verb_options(ctl, &verb, argc, argv, &o->net, o);
        if (r != 0)
                return r;
        if (optind != argc) {
                log_error("authenticate takes no arguments, got '%s'", argv[optind]);
                return -EINVAL;
        }
        return 0;
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
        char when[64] = "";

        /* Only a key in a keyring has an expiry; strftime() would read /etc/localtime. */
        if (serial > 0) {
                time_t expires = time(NULL) + o->lifetime_s;
                struct tm tm;

                if (gmtime_r(&expires, &tm))
                        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
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

int verb_authenticate(struct devicectl *ctl, int argc, char *argv[]) {
        struct auth_options o = {
                .net.timeout_s = DEVICECTL_DEFAULT_TIMEOUT_S,
                .keyring = "@u",
                .lifetime_s = DEVICECTL_DEFAULT_LIFETIME_S,
        };
        struct auth_result a = { .tcp = -1 };
        int32_t serial = 0;
        int r, ret;

        r = parse_options(ctl, argc, argv, &o);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;

        ret = auth_handshake(ctl, o.net.server, o.net.timeout_s, &a);
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
