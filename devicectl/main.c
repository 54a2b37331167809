/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void help(void) {
        printf("Usage: devicectl [OPTIONS]\n"
               "\n"
               "the secure-vault device tool: provision, status, authenticate.\n"
               "\n"
               "  -h --help       Show this help\n"
               "     --version    Show the version\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help",    no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { 0 }
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("devicectl " PACKAGE_VERSION "\n");
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        fprintf(stderr, "devicectl: not implemented yet in this version; see --help.\n");
        return 2;
}
