/* SPDX-License-Identifier: MIT */
/*
 * syncfloor: what one durable write costs on a file system, and nothing else. authserver
 * must have the pending vault on disk before M4 leaves (PROTOCOL.md §6): at C = 1 every
 * handshake waits for one sync of the write-ahead log, so no handshake there can be faster
 * than the network's round trips plus this (docs/benchmarks.md, "Issue #13").
 *
 *   syncfloor --dir DIR [--n N] [--bytes B] [--label L]
 *
 * Appends B bytes (default 8192: a 4 KiB vault's WAL frames) to a fresh file in DIR and
 * fdatasync()s it, N times (default 300), as SQLite's WAL sync does. Prints one key=value
 * line: sync_p50_us, sync_p90_us, sync_p99_us (wall time of write + fdatasync) and
 * cpu_us_sync (this process's user + system time per sync).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

static void usage(void) {
        fprintf(stderr, "usage: syncfloor --dir DIR [--n N] [--bytes B] [--label L]\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "dir", required_argument, NULL, 'd' },
                { "n", required_argument, NULL, 'n' },
                { "bytes", required_argument, NULL, 'b' },
                { "label", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *dir = NULL, *label = "floor";
        long n = 300, bytes = 8192;
        char path[4096];
        double *lat, cpu0, cpu1;
        char *page;
        int c, fd;

        while ((c = getopt_long(argc, argv, "d:n:b:l:h", opts, NULL)) >= 0)
                switch (c) {
                case 'd': dir = optarg; break;
                case 'n': n = strtol(optarg, NULL, 10); break;
                case 'b': bytes = strtol(optarg, NULL, 10); break;
                case 'l': label = optarg; break;
                case 'h': usage(); return 0;
                default: usage(); return 2;
                }
        if (!dir || n < 10 || n > 100000 || bytes < 1 || bytes > (1L << 20)) {
                usage();
                return 2;
        }
        if ((size_t) snprintf(path, sizeof path, "%s/syncfloor.XXXXXX", dir) >= sizeof path) {
                fprintf(stderr, "syncfloor: directory name too long\n");
                return 2;
        }
        fd = mkstemp(path);
        if (fd < 0) {
                fprintf(stderr, "syncfloor: %s: %s\n", path, strerror(errno));
                return 1;
        }
        (void) unlink(path);
        lat = calloc((size_t) n, sizeof *lat);
        page = malloc((size_t) bytes);
        if (!lat || !page) {
                fprintf(stderr, "syncfloor: out of memory\n");
                return 1;
        }
        memset(page, 0x5a, (size_t) bytes);
        cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        for (long i = 0; i < n; i++) {
                double t0 = now_s(CLOCK_MONOTONIC);

                if (write(fd, page, (size_t) bytes) != (ssize_t) bytes || fdatasync(fd) < 0) {
                        fprintf(stderr, "syncfloor: write or sync: %s\n", strerror(errno));
                        return 1;
                }
                lat[i] = now_s(CLOCK_MONOTONIC) - t0;
        }
        cpu1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        close(fd);
        qsort(lat, (size_t) n, sizeof *lat, cmp_double);
        printf("bench=syncfloor label=%s n=%ld bytes=%ld sync_p50_us=%.1f sync_p90_us=%.1f sync_p99_us=%.1f "
               "cpu_us_sync=%.1f\n", label, n, bytes, lat[n / 2] * 1e6, lat[n * 9 / 10] * 1e6,
               lat[n * 99 / 100] * 1e6, (cpu1 - cpu0) / (double) n * 1e6);
        free(lat);
        free(page);
        return 0;
}
