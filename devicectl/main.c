/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devicectl.h"
#include "log.h"
#include "text.h"

static const struct verb verbs[] = {
        { "authenticate", "run the protocol against authserver and hand on the session key", verb_authenticate },
        { "send",         "authenticate, send messages over the data channel, print the answers", verb_send },
        { "status",       "show what vaultd reports about the vault",                       verb_status },
        { "provision",    "give vaultd an enrollment bundle, then destroy the bundle",       verb_provision },
};

static void help(void) {
        printf("Usage: devicectl [OPTIONS] VERB [ARGS...]\n"
               "\n"
               "Device tool of secure-vault: talks to vaultd, which alone holds the vault.\n"
               "\n"
               "Verbs:\n");
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                printf("  %-14s %s\n", verbs[i].name, verbs[i].summary);
        printf("\n"
               "Options:\n"
               "  -s --socket PATH   vaultd's socket (default " DEVICECTL_DEFAULT_SOCKET ")\n"
               "     --json         machine-readable output\n"
               "     --log-level LEVEL\n"
               "                    show messages up to LEVEL: emerg..debug or 0..7 (default info)\n"
               "  -h --help         show this help ('devicectl VERB --help' for a verb)\n"
               "     --version      show the version\n"
               "\n"
               "Exit codes:\n"
               "  0 ok\n"
               "  1 other failure\n"
               "  2 usage error\n"
               "  3 server unreachable: name lookup or connection failed, connection lost, or timed out\n"
               "  4 the server refused (it answered ERROR)\n"
               "  5 the server failed to prove it holds the vault (bad M4)\n"
               "  6 vaultd unavailable: cannot connect, denied, timed out, or malformed reply\n"
               "  7 vault busy with another handshake\n"
               "  8 protocol error: a malformed or unexpected message from the server\n"
               "  9 no usable vault: none provisioned, or refused by vaultd (see 'journalctl -u vaultd')\n"
               " 10 not permitted: provisioning needs root, vaultd's user or a member of vault-admin\n"
               " 11 too many authentications: vaultd's rate limit; the message says when to retry\n"
               " 12 damaged bundle: its check does not match; nothing stored, the bundle kept\n"
               " 13 bundle without check (before protocol 1.1): refused without --accept-unchecked\n"
               " 14 send: the server cut the data channel (no CLOSE): the messages may or may not have arrived\n");
}

/*
 * glibc's getopt_long() leaves optind past the offending argument, except for a bad short
 * option inside a cluster ("-xf"), where it stays and only optopt names the character;
 * for an unknown long option optopt is 0, for a long option given a needless "=VALUE" it
 * is that option's val. That is enough to name the culprit exactly.
 */
void option_error(const char *verb, int c, char *argv[], const struct option *options) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        const char *sep = verb ? " " : "";
        bool long_with_value = false;

        if (!verb)
                verb = "";
        if (strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
                for (const struct option *o = options; o->name; o++)
                        if (o->val == optopt && strncmp(arg + 2, o->name, strlen(o->name)) == 0 &&
                            arg[2 + strlen(o->name)] == '=')
                                long_with_value = true;

        if (c == ':' && strncmp(arg, "--", 2) == 0)
                fprintf(stderr, "devicectl%s%s: option '%s' requires an argument\n", sep, verb, arg);
        else if (c == ':')
                fprintf(stderr, "devicectl%s%s: option requires an argument -- '%c'\n", sep, verb, optopt);
        else if (optopt == 0)
                fprintf(stderr, "devicectl%s%s: unrecognized option '%s'\n", sep, verb, arg);
        else if (long_with_value)
                fprintf(stderr, "devicectl%s%s: option '%.*s' takes no value\n", sep, verb,
                        (int) (strchr(arg, '=') - arg), arg);
        else
                fprintf(stderr, "devicectl%s%s: invalid option -- '%c'\n", sep, verb,
                        optopt > 0x20 && optopt < 0x7f ? optopt : '?');
        fprintf(stderr, "Try 'devicectl %s%s--help'.\n", verb, sep);
}

int parse_seconds(const char *s, const char *option, unsigned *ret) {
        unsigned long v;

        if (text_parse_unsigned(s, 1, 365UL * 24 * 3600, &v) < 0)
                return log_error_errno(EINVAL, "invalid value '%s' for %s: expected seconds, 1..31536000", s, option);
        *ret = (unsigned) v;
        return 0;
}

int parse_server_option(const char *s, const char **ret) {
        if (!bundle_server_valid(s))
                return log_error_errno(EINVAL, "invalid server '%s': expected HOST:PORT or [V6]:PORT", s);
        *ret = s;
        return 0;
}

int parse_server_verb_options(struct devicectl *ctl, const struct server_verb *verb, int argc, char *argv[],
                              struct server_options *o, void *userdata) {
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", verb->options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        verb->help();
                        return 1;
                case SERVER_VERB_ARG_SERVER:
                        if (parse_server_option(optarg, &o->server) < 0)
                                return -EINVAL;
                        break;
                case SERVER_VERB_ARG_TIMEOUT:
                        if (parse_seconds(optarg, "--timeout", &o->timeout_s) < 0)
                                return -EINVAL;
                        break;
                case SERVER_VERB_ARG_JSON:
                        ctl->json = true;
                        break;
                default:
                        if (c < SERVER_VERB_ARG_OWN || !verb->own_option) {
                                option_error(verb->name, c, argv, verb->options);
                                return -EINVAL;
                        }
                        if (verb->own_option(userdata, c, optarg) < 0)
                                return -EINVAL;
                }
        return 0;
}

void json_print_string(const char *s) {
        char buf[4 * 256 + 8];

        printf("\"%s\"", text_json_escape(s, buf, sizeof buf) < 0 ? "" : buf);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h' },
                { "version",   no_argument,       NULL, ARG_VERSION },
                { "socket",    required_argument, NULL, 's' },
                { "json",      no_argument,       NULL, ARG_JSON },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { 0 }
        };
        struct devicectl ctl = { .socket_path = DEVICECTL_DEFAULT_SOCKET };
        int c, level;

        /* Messages read "devicectl: ..." on stderr, as a command's should. */
        log_open("devicectl", LOG_TARGET_CONSOLE, LOG_TARGET_CONSOLE, NULL);

        /* '+': stop at the verb, whose own options follow it. ':' and opterr = 0: we print
         * getopt's complaints ourselves (option_error()). */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:hs:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case ARG_VERSION:
                        printf("devicectl " PACKAGE_VERSION "\n");
                        return EXIT_OK;
                case 's':
                        ctl.socket_path = optarg;
                        break;
                case ARG_JSON:
                        ctl.json = true;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                log_error("invalid log level '%s': expected emerg, alert, crit, err, warning, "
                                          "notice, info, debug or 0..7", optarg);
                                return EXIT_USAGE;
                        }
                        log_set_max_level(level);
                        break;
                default:
                        option_error(NULL, c, argv, options);
                        return EXIT_USAGE;
                }

        if (optind >= argc) {
                log_error("missing verb (try 'devicectl --help')");
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                if (strcmp(argv[optind], verbs[i].name) == 0) {
                        argv += optind;
                        argc -= optind;
                        optind = 0;
                        return verbs[i].run(&ctl, argc, argv);
                }
        log_error("unknown verb '%s' (try 'devicectl --help')", argv[optind]);
        return EXIT_USAGE;
}
