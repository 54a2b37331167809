/* SPDX-License-Identifier: MIT */
/*
 * Test helper: writes an enrollment bundle (protocol §8) with a random vault, to stand in for
 * `authserver enroll`. The same bundle goes to every file named, so a test can hand one copy to
 * vaultd and keep another as the fake server's state.
 *
 *   mkbundle [--id ID] [--profile hardened|paper] [--n N] [--m M] [--p P] [--epoch E]
 *            [--server HOST:PORT] [--kex none|x25519] FILE...
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle-file.h"
#include "crypto.h"

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || !*s || *end || *s == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "id",      required_argument, NULL, 'i' },
                { "profile", required_argument, NULL, 'P' },
                { "n",       required_argument, NULL, 'n' },
                { "m",       required_argument, NULL, 'm' },
                { "p",       required_argument, NULL, 'p' },
                { "epoch",   required_argument, NULL, 'e' },
                { "server",  required_argument, NULL, 's' },
                { "kex",     required_argument, NULL, 'k' },
                { 0 }
        };
        struct bundle b = { .params = { .profile = SV_PROFILE_HARDENED, .n = SV_DEFAULT_N,
                                        .m = SV_DEFAULT_M, .p = SV_DEFAULT_P } };
        uint64_t v;
        int c, r;

        vault_params_set_id(&b.params, "sensor-1");
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'i':
                        if (vault_params_set_id(&b.params, optarg) < 0)
                                goto bad;
                        break;
                case 'P':
                        r = vault_profile_from_string(optarg);
                        if (r < 0)
                                goto bad;
                        b.params.profile = (uint8_t) r;
                        break;
                case 'n':
                        if (parse_u64(optarg, SV_N_MAX, &v) < 0)
                                goto bad;
                        b.params.n = (uint16_t) v;
                        break;
                case 'm':
                        if (parse_u64(optarg, 32, &v) < 0)
                                goto bad;
                        b.params.m = (uint8_t) v;
                        break;
                case 'p':
                        if (parse_u64(optarg, SV_P_MAX, &v) < 0)
                                goto bad;
                        b.params.p = (uint8_t) v;
                        break;
                case 'e':
                        if (parse_u64(optarg, UINT64_MAX, &b.params.epoch) < 0)
                                goto bad;
                        break;
                case 's':
                        if (strlen(optarg) > BUNDLE_SERVER_MAX)
                                goto bad;
                        strcpy(b.server, optarg);
                        break;
                case 'k':
                        r = profile_kex_from_name(optarg);
                        if (r < 0)
                                goto bad;
                        b.kex = (uint8_t) r;
                        break;
                default:
                        return 2;
                }
        }
        if (optind >= argc || vault_params_validate(&b.params) < 0) {
                fprintf(stderr, "mkbundle: invalid parameters or no output file\n");
                return 2;
        }
        b.vault = malloc(vault_size(&b.params));
        if (!b.vault || crypto_random(b.vault, vault_size(&b.params)) < 0)
                return 1;
        for (int i = optind; i < argc; i++) {
                r = bundle_file_save(argv[i], &b);
                if (r < 0) {
                        fprintf(stderr, "mkbundle: cannot write '%s': %s\n", argv[i], strerror(-r));
                        return 1;
                }
        }
        bundle_free(&b);
        return 0;
bad:
        fprintf(stderr, "mkbundle: invalid value '%s'\n", optarg);
        return 2;
}
