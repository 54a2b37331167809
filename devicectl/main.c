/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devicectl.h"
#include "text.h"

static const struct verb verbs[] = {
        { "authenticate", "run the protocol against authserver and hand on the session key", verb_authenticate },
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
               "  -h --help         show this help ('devicectl VERB --help' for a verb)\n"
               "     --version      show the version\n"
               "\n"
               "Exit codes: 0 ok, 1 other failure, 2 usage, 3 server unreachable, 4 server refused,\n"
               "5 server failed to prove itself, 6 vaultd unavailable, 7 vault busy,\n"
               "8 protocol error or timeout, 9 no vault provisioned.\n");
}

int parse_seconds(const char *s, const char *option, unsigned *ret) {
        unsigned long v;

        if (text_parse_unsigned(s, 1, 365UL * 24 * 3600, &v) < 0) {
                fprintf(stderr, "devicectl: invalid value '%s' for %s: expected seconds, 1..31536000\n", s, option);
                return -EINVAL;
        }
        *ret = (unsigned) v;
        return 0;
}

void json_print_string(const char *s) {
        char buf[4 * 256 + 8];

        printf("\"%s\"", text_json_escape(s, buf, sizeof buf) < 0 ? "" : buf);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON };
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h' },
                { "version", no_argument,       NULL, ARG_VERSION },
                { "socket",  required_argument, NULL, 's' },
                { "json",    no_argument,       NULL, ARG_JSON },
                { 0 }
        };
        struct devicectl ctl = { .socket_path = DEVICECTL_DEFAULT_SOCKET };
        int c;

        /* '+': stop at the verb, whose own options follow it. */
        while ((c = getopt_long(argc, argv, "+hs:", options, NULL)) >= 0)
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
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc) {
                fprintf(stderr, "devicectl: missing verb (try 'devicectl --help')\n");
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                if (strcmp(argv[optind], verbs[i].name) == 0) {
                        argv += optind;
                        argc -= optind;
                        optind = 0;
                        return verbs[i].run(&ctl, argc, argv);
                }
        fprintf(stderr, "devicectl: unknown verb '%s' (try 'devicectl --help')\n", argv[optind]);
        return EXIT_USAGE;
}
