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
        { "authenticate", "run the protocol against authserver and hand on the session key", verb_authenticate,
          verb_authenticate_options },
        { "send",         "authenticate, send messages over the data channel, print the answers", verb_send,
          verb_send_options },
        { "status",       "show what vaultd reports about the vault",                       verb_status,
          verb_status_options },
        { "provision",    "give vaultd an enrollment bundle, then destroy the bundle",       verb_provision,
          verb_provision_options },
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
               "  -s --socket PATH   vaultd's socket (default: $VAULTD_SOCKET, else " DEVICECTL_DEFAULT_SOCKET ")\n"
               "     --json         machine-readable output, and errors as JSON objects on stderr\n"
               "     --log-level LEVEL\n"
               "                    show messages up to LEVEL: emerg..debug or 0..7 (default info)\n"
               "  -h --help         show this help ('devicectl VERB --help' for a verb)\n"
               "     --version      show the version\n"
               "Options may come before or after the verb: 'devicectl --server H:P authenticate'\n"
               "is 'devicectl authenticate --server H:P'.\n"
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
               "  9 no usable vault: none provisioned, or refused by vaultd (see 'journalctl -u vaultd');\n"
               "    also 'status' when it shows no usable vault\n"
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
static bool json_errors;

void option_error(const char *verb, int c, char *argv[], const struct option *options) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        const char *sep = verb ? " " : "";
        bool long_with_value = false;
        char msg[512];
        FILE *out = json_errors ? fmemopen(msg, sizeof msg - 1, "w") : stderr;

        if (!out)
                out = stderr;
        memset(msg, 0, sizeof msg);

        if (!verb)
                verb = "";
        if (strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
                for (const struct option *o = options; o->name; o++)
                        if (o->val == optopt && strncmp(arg + 2, o->name, strlen(o->name)) == 0 &&
                            arg[2 + strlen(o->name)] == '=')
                                long_with_value = true;

        if (c == ':' && strncmp(arg, "--", 2) == 0)
                fprintf(out, "devicectl%s%s: option '%s' requires an argument\n", sep, verb, arg);
        else if (c == ':')
                fprintf(out, "devicectl%s%s: option requires an argument -- '%c'\n", sep, verb, optopt);
        else if (optopt == 0)
                fprintf(out, "devicectl%s%s: unrecognized option '%s'\n", sep, verb, arg);
        else if (long_with_value)
                fprintf(out, "devicectl%s%s: option '%.*s' takes no value\n", sep, verb,
                        (int) (strchr(arg, '=') - arg), arg);
        else
                fprintf(out, "devicectl%s%s: invalid option -- '%c'\n", sep, verb,
                        optopt > 0x20 && optopt < 0x7f ? optopt : '?');
        fprintf(out, "Try 'devicectl %s%s--help'.", verb, sep);
        if (out != stderr) {
                /* --json: the same text as one JSON error object (newlines become spaces). */
                fclose(out);
                for (char *p = msg; *p; p++)
                        if (*p == '\n')
                                *p = ' ';
                log_error("%s", msg);
        } else
                fputc('\n', out);
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
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h" GLOBAL_SHORT_OPTIONS, verb->options, NULL)) >= 0)
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
                default:
                        r = global_option(ctl, c, optarg);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                        if (c < SERVER_VERB_ARG_OWN || !verb->own_option) {
                                option_error(verb->name, c, argv, verb->options);
                                return -EINVAL;
                        }
                        if (verb->own_option(userdata, c, optarg) < 0)
                                return -EINVAL;
                }
        return 0;
}

int global_option(struct devicectl *ctl, int c, const char *arg) {
        int level;

        switch (c) {
        case 's':
                ctl->socket_path = arg;
                return 1;
        case GLOBAL_ARG_LOG_LEVEL:
                level = log_level_from_string(arg);
                if (level < 0)
                        return log_error_errno(EINVAL, "invalid log level '%s': expected emerg, alert, crit, err, "
                                               "warning, notice, info, debug or 0..7", arg);
                log_set_max_level(level);
                return 1;
        case GLOBAL_ARG_JSON:
                ctl->json = true;
                log_open("devicectl", LOG_TARGET_JSON, LOG_TARGET_JSON, NULL);
                return 1;
        default:
                return 0;
        }
}

/* Whether the long option NAME (up to '=' or the end) takes a value, in `options`:
 * 1 yes, 0 no, -ENOENT not there. */
static int option_has_value(const struct option *options, const char *name) {
        size_t len = strcspn(name, "=");

        for (const struct option *o = options; o->name; o++)
                if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                        return o->has_arg == required_argument;
        return -ENOENT;
}

/* Whether ARG, an option getopt_long() did not know before the verb, is one of the verb's:
 * "--name[=value]" by name, "-x" (also in a cluster) by optopt. */
static bool verb_has_option(const struct verb *verb, const char *arg) {
        if (optopt == 0)
                return strncmp(arg, "--", 2) == 0 && option_has_value(verb->options, arg + 2) >= 0;
        for (const struct option *o = verb->options; o->name; o++)
                if (optopt != 0 && o->val == optopt)
                        return true;
        return false;
}

/*
 * The verb, wherever it is among the options: the first argument that is neither an option
 * nor the value of one. A long option takes the next argument as its value when devicectl's
 * or any verb's table says it has one ("devicectl --server H:P authenticate"); of the short
 * options only -s has one. Returns its index, or 0 when there is none (before "--").
 */
static int find_verb(int argc, char *argv[], const struct option *global) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                int v = -ENOENT;

                if (strcmp(a, "--") == 0)
                        return 0;
                if (a[0] != '-' || a[1] == '\0')
                        return i;
                if (a[1] == '-') {
                        if (strchr(a, '='))
                                continue;
                        v = option_has_value(global, a + 2);
                        for (size_t j = 0; v < 0 && j < sizeof verbs / sizeof verbs[0]; j++)
                                v = option_has_value(verbs[j].options, a + 2);
                        if (v > 0)
                                i++;
                        continue;
                }
                /* A short cluster: -s takes the rest of it, or the next argument. */
                for (const char *p = a + 1; *p; p++)
                        if (*p == 's') {
                                if (p[1] == '\0')
                                        i++;
                                break;
                        }
        }
        return 0;
}

void json_print_string(const char *s) {
        char buf[4 * 256 + 8];

        printf("\"%s\"", text_json_escape(s, buf, sizeof buf) < 0 ? "" : buf);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h' },
                { "version",   no_argument,       NULL, ARG_VERSION },
                GLOBAL_OPTIONS,
                { 0 }
        };
        const char *env = getenv("VAULTD_SOCKET");
        struct devicectl ctl = { .socket_path = env && *env ? env : DEVICECTL_DEFAULT_SOCKET };
        const struct verb *verb = NULL;
        char **verb_argv;
        int c, v, r;

        /* Messages read "devicectl: ..." on stderr, as a command's should. */
        log_open("devicectl", LOG_TARGET_CONSOLE, LOG_TARGET_CONSOLE, NULL);
        /* With --json anywhere, every error is JSON, also those met before it is parsed. */
        if (text_argv_has_json(argc, argv)) {
                log_open("devicectl", LOG_TARGET_JSON, LOG_TARGET_JSON, NULL);
                json_errors = true;
        }

        /*
         * Options may come on either side of the verb. The verb gets them all, those before
         * it first, and parses them with its table, which has devicectl's own as well; the
         * options before it are parsed here first only for --help, --version and the errors
         * of a command line without a verb. ':' and opterr = 0: we print getopt's complaints
         * ourselves (option_error()).
         */
        v = find_verb(argc, argv, options);
        for (size_t i = 0; v > 0 && i < sizeof verbs / sizeof verbs[0]; i++)
                if (strcmp(argv[v], verbs[i].name) == 0)
                        verb = &verbs[i];
        opterr = 0;
        while ((c = getopt_long(v > 0 ? v : argc, argv, "+:h" GLOBAL_SHORT_OPTIONS, options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case ARG_VERSION:
                        printf("devicectl " PACKAGE_VERSION "\n");
                        return EXIT_OK;
                default:
                        /* An option of the verb before the verb is the verb's to parse. */
                        if (c == '?' && verb && verb_has_option(verb, argv[optind - 1]))
                                break;
                        r = global_option(&ctl, c, optarg);
                        if (r < 0)
                                return EXIT_USAGE;
                        if (r == 0) {
                                option_error(NULL, c, argv, options);
                                return EXIT_USAGE;
                        }
                }

        if (v == 0) {
                log_error("missing verb (try 'devicectl --help')");
                return EXIT_USAGE;
        }
        if (!verb) {
                log_error("unknown verb '%s' (try 'devicectl --help')", argv[v]);
                return EXIT_USAGE;
        }
        /* VERB, the options before it, the arguments after it. */
        verb_argv = text_argv_verb_first(argc, argv, v);
        if (!verb_argv) {
                log_error("out of memory");
                return EXIT_FAILURE_OTHER;
        }
        optind = 0;
        r = verb->run(&ctl, argc - 1, verb_argv);
        free(verb_argv);
        return r;
}
