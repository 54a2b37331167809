/* SPDX-License-Identifier: MIT */
/* What the load generators of tests/bench/ share (svload, tls13_echo). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"

double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* Tcp OutSegs of this network namespace (/proc/net/snmp), -1 if unknown. */
long long tcp_outsegs(void) {
        char hdr[2048], val[2048], *sh, *sv, *th, *tv;
        long long res = -1;
        FILE *f = fopen("/proc/net/snmp", "re");

        if (!f)
                return -1;
        while (fgets(hdr, sizeof hdr, f)) {
                if (strncmp(hdr, "Tcp:", 4) != 0)
                        continue;
                if (!fgets(val, sizeof val, f))
                        break;
                th = strtok_r(hdr, " \n", &sh);
                tv = strtok_r(val, " \n", &sv);
                for (; th && tv; th = strtok_r(NULL, " \n", &sh), tv = strtok_r(NULL, " \n", &sv))
                        if (strcmp(th, "OutSegs") == 0) {
                                res = atoll(tv);
                                break;
                        }
                break;
        }
        fclose(f);
        return res;
}

int cmp_dbl(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

double pct(const double *v, long n, double p) {
        long i;

        if (n <= 0)
                return 0;
        i = (long) (p * (double) (n - 1) + 0.5);
        return v[i < n ? i : n - 1];
}
