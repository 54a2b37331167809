/* SPDX-License-Identifier: MIT */
/*
 * sv-probe: what an attacker who knows only device ids learns from authserver's answers.
 * Every probe comes from its own loopback /24 (127.A.B.1), so that the per-address failure
 * back-off never delays one; --first-source K starts at the K-th such address.
 *
 *   sv-probe --server HOST:PORT shape --prefix P --count N [--repeat R] [--profile NAME]
 *       Sends M1 for ids P0000..P(N-1), R times each, reads M2 and hangs up. Prints one
 *       line per probe: "ID p MAXINDEX" (M2 shows p and indices below n).
 *
 *   sv-probe --server HOST:PORT timing --pairs N BUNDLE...
 *       Interleaves N pairs of probes in random order: an enrolled id (the next BUNDLE in
 *       turn) answered with a wrong vault, and a fresh unknown id of the same shape. Before
 *       each pair that device authenticates with its real vault, which clears the id's
 *       back-off. Measures M1->M2 and M3->ERROR, and prints per phase:
 *         "PHASE median_known median_unknown iqr ks acc6 longer diff"
 *       (times in microseconds): the medians of both classes, the interquartile range of
 *       all samples, the two-sample Kolmogorov-Smirnov statistic, how often an attacker
 *       who takes the median of 6 probes per id classifies an id right, the share of pairs
 *       in which the known id took longer, and the median of the differences within pairs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bundle-file.h"
#include "crypto.h"
#include "devicectl.h"
#include "handshake.h"
#include "text.h"

#define IO_TIMEOUT_MS 10000

static const char *server;
static struct sockaddr_in server_addr;
static unsigned next_source;

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int parse_server(const char *s) {
        char host[64];
        const char *port;

        server_addr.sin_family = AF_INET;
        if (text_split_host_port(s, host, sizeof host, &port) < 0 || inet_pton(AF_INET, host, &server_addr.sin_addr) != 1)
                return -EINVAL;
        server_addr.sin_port = htons((uint16_t) strtoul(port, NULL, 10));
        return 0;
}

/* A connection from the next unused /24 of 127/8. */
static int connect_fresh(int *ret) {
        struct sockaddr_in from = { .sin_family = AF_INET };
        unsigned k = next_source++ % (254 * 256);
        int fd, one = 1;

        from.sin_addr.s_addr = htonl(127u << 24 | (1 + k / 256) << 16 | (k % 256) << 8 | 1);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &from, sizeof from) < 0 ||
            connect(fd, (struct sockaddr *) &server_addr, sizeof server_addr) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static int random_vault(struct vault_params *v, uint8_t **ret) {
        uint8_t *keys = malloc(vault_size(v));

        if (!keys || crypto_random(keys, vault_size(v)) < 0) {
                free(keys);
                return -ENOMEM;
        }
        *ret = keys;
        return 0;
}

/* A device of params with random keys (nobody's vault), connected from a fresh address,
 * its M1 in frame (SV_FRAME_MAX bytes) ready to send. */
static int probe_start(struct vault_params *v, struct hs_device *hs, uint8_t **ret_keys, int *ret_fd,
                       uint8_t *frame, size_t *ret_len) {
        int r;

        r = random_vault(v, ret_keys);
        if (r < 0)
                return r;
        hs_device_init(hs, v, *ret_keys, &hs_random_os);
        r = hs_device_hello(hs, frame, SV_FRAME_MAX, ret_len);
        return r < 0 ? r : connect_fresh(ret_fd);
}

/* shape: one M1, the M2's p and largest index. */
static int probe_shape(const char *id, uint8_t profile, unsigned *ret_p, unsigned *ret_max) {
        struct vault_params v = { .profile = profile, .n = SV_DEFAULT_N, .m = SV_DEFAULT_M, .p = SV_DEFAULT_P };
        struct hs_device hs;
        uint8_t frame[SV_FRAME_MAX], *keys = NULL;
        size_t len;
        unsigned p, max = 0;
        int fd = -1, r;

        r = vault_params_set_id(&v, id);
        if (r < 0)
                return r;
        r = probe_start(&v, &hs, &keys, &fd, frame, &len);
        if (r >= 0)
                r = net_send_frame(fd, frame, len, now_ms() + IO_TIMEOUT_MS);
        if (r >= 0)
                r = net_recv_frame(fd, frame, sizeof frame, &len, now_ms() + IO_TIMEOUT_MS, SV_MSG_CHALLENGE, 0);
        if (r >= 0 && frame[0] != 1)
                r = -EPROTO;
        if (r >= 0 && frame[1] == SV_MSG_ERROR)
                r = -ECONNREFUSED;
        if (r >= 0) {
                p = frame[SV_HEADER_LEN + SV_NONCE_LEN];
                if (len != SV_HEADER_LEN + wire_body_len(SV_MSG_CHALLENGE, &(struct wire_params) {
                                                           v.profile, SV_KEX_NONE, 0, p }))
                        r = -EBADMSG;
                for (unsigned i = 0; r >= 0 && i < p; i++) {
                        const uint8_t *x = frame + SV_HEADER_LEN + SV_NONCE_LEN + 1 + 2 * i;
                        unsigned idx = (unsigned) x[0] << 8 | x[1];

                        max = idx > max ? idx : max;
                }
                *ret_p = p;
                *ret_max = max;
        }
        hs_device_wipe(&hs);
        free(keys);
        if (fd >= 0)
                close(fd);
        return r;
}

/* A whole handshake with the device's real vault, from 127.0.0.1: the vault moves on. */
static int authenticate(struct bundle *b) {
        struct hs_device hs;
        uint8_t frame[SV_FRAME_MAX], *next;
        size_t len;
        int fd = -1, r;

        next = malloc(vault_size(&b->params));
        if (!next)
                return -ENOMEM;
        hs_device_init(&hs, &b->params, b->vault, &hs_random_os);
        r = hs_device_hello(&hs, frame, sizeof frame, &len);
        if (r >= 0)
                r = net_connect(server, IO_TIMEOUT_MS, &fd);
        if (r >= 0)
                r = net_send_frame(fd, frame, len, now_ms() + IO_TIMEOUT_MS);
        if (r >= 0)
                r = net_recv_frame(fd, frame, sizeof frame, &len, now_ms() + IO_TIMEOUT_MS, SV_MSG_CHALLENGE,
                                   vault_body_len(SV_MSG_CHALLENGE, &b->params));
        if (r >= 0)
                r = hs_device_respond(&hs, frame, len, frame, sizeof frame, &len);
        if (r >= 0)
                r = net_send_frame(fd, frame, len, now_ms() + IO_TIMEOUT_MS);
        if (r >= 0)
                r = net_recv_frame(fd, frame, sizeof frame, &len, now_ms() + IO_TIMEOUT_MS, SV_MSG_CONFIRM,
                                   SV_CONFIRM_BODY_LEN);
        if (r >= 0)
                r = hs_device_confirm(&hs, frame, len, next, frame, sizeof frame, &len);
        if (r >= 0) {
                memcpy(b->vault, next, vault_size(&b->params));
                b->params.epoch++;
                r = net_send_frame(fd, frame, len, now_ms() + IO_TIMEOUT_MS);
        }
        hs_device_wipe(&hs);
        free(next);
        if (fd >= 0)
                close(fd);
        return r;
}

/* One probe with a vault nobody holds: the M1->M2 and M3->ERROR times in ns. */
static int probe_timing(const struct vault_params *params, int64_t *ret_m2, int64_t *ret_m3) {
        struct vault_params v = *params;
        struct hs_device hs;
        uint8_t frame[SV_FRAME_MAX], *keys = NULL;
        size_t len;
        int64_t t0, t1, t2, t3;
        int fd = -1, r;

        r = probe_start(&v, &hs, &keys, &fd, frame, &len);
        /* From just before M1 is sent: the connection is set up by then. */
        t0 = now_ns();
        if (r >= 0)
                r = net_send_frame(fd, frame, len, now_ms() + IO_TIMEOUT_MS);
        if (r >= 0)
                r = net_recv_frame(fd, frame, sizeof frame, &len, now_ms() + IO_TIMEOUT_MS, SV_MSG_CHALLENGE,
                                   vault_body_len(SV_MSG_CHALLENGE, &v));
        t1 = now_ns();
        if (r >= 0)
                r = hs_device_respond(&hs, frame, len, frame, sizeof frame, &len);
        t2 = now_ns();
        if (r >= 0)
                r = net_send_frame(fd, frame, len, now_ms() + IO_TIMEOUT_MS);
        if (r >= 0)
                r = net_recv_frame(fd, frame, sizeof frame, &len, now_ms() + IO_TIMEOUT_MS, SV_MSG_CONFIRM,
                                   SV_CONFIRM_BODY_LEN);
        t3 = now_ns();
        /* The only right answer is ERROR 2. */
        if (r >= 0 && !(frame[1] == SV_MSG_ERROR && frame[SV_HEADER_LEN] == 2))
                r = -EPROTO;
        if (r >= 0) {
                *ret_m2 = t1 - t0;
                *ret_m3 = t3 - t2;
        }
        hs_device_wipe(&hs);
        free(keys);
        if (fd >= 0)
                close(fd);
        return r;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

        return x < y ? -1 : x > y;
}

static double quantile(const int64_t *sorted, size_t n, double q) {
        return (double) sorted[(size_t) (q * (double) (n - 1) + 0.5)];
}

/* sup |F_known - F_unknown| over all sample values; both sorted. */
static double ks_statistic(const int64_t *a, size_t na, const int64_t *b, size_t nb) {
        size_t i = 0, j = 0;
        double d = 0;

        while (i < na && j < nb) {
                int64_t x = a[i] < b[j] ? a[i] : b[j];
                double diff;

                while (i < na && a[i] == x)
                        i++;
                while (j < nb && b[j] == x)
                        j++;
                diff = (double) i / (double) na - (double) j / (double) nb;
                if (diff < 0)
                        diff = -diff;
                d = diff > d ? diff : d;
        }
        return d;
}

/* The attacker of issue 10: the median of 6 probes per id, against a threshold. */
static double accuracy6(const int64_t *known, const int64_t *unknown, size_t n, double med_k, double med_u) {
        size_t groups = n / 6, right = 0;
        double threshold = (med_k + med_u) / 2;
        int64_t g[6];

        if (groups == 0)
                return 0;
        for (size_t k = 0; k < groups; k++) {
                for (int cls = 0; cls < 2; cls++) {
                        memcpy(g, (cls ? unknown : known) + 6 * k, sizeof g);
                        qsort(g, 6, sizeof g[0], cmp_i64);
                        double m = (double) (g[2] + g[3]) / 2;
                        bool says_known = med_k >= med_u ? m > threshold : m < threshold;

                        right += says_known == (cls == 0);
                }
        }
        return (double) right / (double) (2 * groups);
}

/* Pairs were measured moments apart: comparing within a pair cancels the load of the moment.
 * Returns the share of pairs where the known id took longer, and the median difference. */
static double paired(const int64_t *known, const int64_t *unknown, size_t n, double *ret_median_diff) {
        int64_t *d = malloc(n * sizeof *d);
        size_t longer = 0;

        if (!d)
                exit(1);
        for (size_t i = 0; i < n; i++) {
                d[i] = known[i] - unknown[i];
                longer += d[i] > 0;
        }
        qsort(d, n, sizeof *d, cmp_i64);
        *ret_median_diff = quantile(d, n, 0.5);
        free(d);
        return (double) longer / (double) n;
}

static void report(const char *phase, int64_t *known, int64_t *unknown, size_t n) {
        int64_t *all = malloc(2 * n * sizeof *all), *ks = malloc(n * sizeof *ks), *us = malloc(n * sizeof *us);
        double mk, mu, iqr, share, diff;

        if (!all || !ks || !us)
                exit(1);
        share = paired(known, unknown, n, &diff);
        memcpy(ks, known, n * sizeof *ks);
        memcpy(us, unknown, n * sizeof *us);
        memcpy(all, known, n * sizeof *all);
        memcpy(all + n, unknown, n * sizeof *all);
        qsort(ks, n, sizeof *ks, cmp_i64);
        qsort(us, n, sizeof *us, cmp_i64);
        qsort(all, 2 * n, sizeof *all, cmp_i64);
        mk = quantile(ks, n, 0.5);
        mu = quantile(us, n, 0.5);
        iqr = quantile(all, 2 * n, 0.75) - quantile(all, 2 * n, 0.25);
        /* In the order sampled: an attacker's consecutive probes. */
        printf("%s %.1f %.1f %.1f %.3f %.3f %.3f %.1f\n", phase, mk / 1000, mu / 1000, iqr / 1000,
               ks_statistic(ks, n, us, n), accuracy6(known, unknown, n, mk, mu), share, diff / 1000);
        free(all);
        free(ks);
        free(us);
}

static int run_timing(unsigned pairs, char **paths, int n_paths) {
        struct bundle *b = calloc((size_t) n_paths, sizeof *b);
        int64_t *m2k = calloc(pairs, sizeof(int64_t)), *m2u = calloc(pairs, sizeof(int64_t));
        int64_t *m3k = calloc(pairs, sizeof(int64_t)), *m3u = calloc(pairs, sizeof(int64_t));
        unsigned line;
        int r;

        if (!b || !m2k || !m2u || !m3k || !m3u)
                return 1;
        for (int i = 0; i < n_paths; i++)
                if (bundle_file_load(paths[i], &b[i], &line) < 0) {
                        fprintf(stderr, "sv-probe: cannot read '%s'\n", paths[i]);
                        return 1;
                }
        for (unsigned k = 0; k < pairs; k++) {
                struct bundle *dev = &b[k % (unsigned) n_paths];
                struct vault_params unknown = dev->params;
                uint8_t coin;
                char id[SV_ID_MAX + 1];

                r = authenticate(dev);
                if (r < 0) {
                        fprintf(stderr, "sv-probe: '%s' failed to authenticate: %s\n", dev->params.device_id, strerror(-r));
                        return 1;
                }
                /* Let the commit of that handshake land before the probes. */
                usleep(3000);
                /* The same length as the enrolled ids, never enrolled, never used twice. */
                snprintf(id, sizeof id, "%.*s", (int) dev->params.id_len, dev->params.device_id);
                snprintf(id + (dev->params.id_len > 6 ? dev->params.id_len - 6 : 0), 7, "%06u", 100000 + k);
                id[0] = id[0] == 'z' ? 'y' : 'z';
                if (vault_params_set_id(&unknown, id) < 0 || crypto_random(&coin, 1) < 0)
                        return 1;
                for (int i = 0; i < 2; i++) {
                        bool known = (i == 0) == (coin & 1);

                        r = probe_timing(known ? &dev->params : &unknown, known ? &m2k[k] : &m2u[k],
                                         known ? &m3k[k] : &m3u[k]);
                        if (r < 0) {
                                fprintf(stderr, "sv-probe: %s probe %u failed: %s\n", known ? "known" : "unknown", k,
                                        strerror(-r));
                                return 1;
                        }
                }
        }
        report("m2", m2k, m2u, pairs);
        report("m3", m3k, m3u, pairs);
        for (int i = 0; i < n_paths; i++) {
                if (bundle_file_save(paths[i], &b[i]) < 0)
                        return 1;
                bundle_free(&b[i]);
        }
        free(b);
        free(m2k);
        free(m2u);
        free(m3k);
        free(m3u);
        return 0;
}

static int run_shape(const char *prefix, unsigned count, unsigned repeat, uint8_t profile) {
        for (unsigned i = 0; i < count; i++)
                for (unsigned j = 0; j < repeat; j++) {
                        char id[SV_ID_MAX + 1];
                        unsigned p = 0, max = 0;
                        int r;

                        snprintf(id, sizeof id, "%s%04u", prefix, i);
                        r = probe_shape(id, profile, &p, &max);
                        if (r < 0) {
                                fprintf(stderr, "sv-probe: probe of '%s' failed: %s\n", id, strerror(-r));
                                return 1;
                        }
                        printf("%s %u %u\n", id, p, max);
                }
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "server",       required_argument, NULL, 's' },
                { "first-source", required_argument, NULL, 'f' },
                { "prefix",       required_argument, NULL, 'x' },
                { "count",        required_argument, NULL, 'n' },
                { "repeat",       required_argument, NULL, 'r' },
                { "profile",      required_argument, NULL, 'p' },
                { "pairs",        required_argument, NULL, 'P' },
                { 0 }
        };
        const char *prefix = "probe-";
        unsigned count = 1, repeat = 1, pairs = 200;
        int profile = SV_PROFILE_HARDENED, c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's': server = optarg; break;
                case 'f': next_source = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'x': prefix = optarg; break;
                case 'n': count = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'r': repeat = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'p': profile = vault_profile_from_string(optarg); break;
                case 'P': pairs = (unsigned) strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!server || parse_server(server) < 0 || optind >= argc || profile < 0 || pairs == 0) {
                fprintf(stderr, "usage: sv-probe --server IPV4:PORT shape|timing [OPTIONS] [BUNDLE...]\n");
                return 2;
        }
        if (strcmp(argv[optind], "shape") == 0)
                return run_shape(prefix, count, repeat, (uint8_t) profile);
        if (strcmp(argv[optind], "timing") == 0 && optind + 1 < argc)
                return run_timing(pairs, argv + optind + 1, argc - optind - 1);
        fprintf(stderr, "sv-probe: unknown mode '%s'\n", argv[optind]);
        return 2;
}
