/* SPDX-License-Identifier: MIT */
#pragma once

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);
/* Tcp OutSegs of this network namespace (/proc/net/snmp), -1 if unknown. */
long long tcp_outsegs(void);
/* qsort() comparison of doubles; the p-quantile (0..1) of n sorted values, 0 if none. */
int cmp_dbl(const void *a, const void *b);
double pct(const double *v, long n, double p);
