/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * A token bucket: it holds at most `burst` tokens, gains one every `interval_usec`, and each
 * event takes one. The caller passes the time (no clock here) and the two parameters, so one
 * zero-initialised struct serves any rate; a zeroed bucket is full.
 *
 * The bucket is kept as a single time, `full_usec`, from which on it would be full again (the
 * "generic cell rate algorithm", equivalent to counting tokens): taking a token moves it one
 * interval later, and a token may be taken while it stays within burst intervals of now. No
 * division, no rounding, no drift, however long the gaps between calls.
 */
struct tokenbucket {
        uint64_t full_usec;
};

/* 0: a token was taken. Otherwise none is left, nothing changed, and the result is how many
 * microseconds until one is (>= 1). interval_usec == 0: unlimited, always 0. burst >= 1. */
uint64_t tokenbucket_take(struct tokenbucket *tb, uint64_t now_usec, uint64_t interval_usec, unsigned burst);

/* Most events per unit a rate may name: one per microsecond is already beyond any use. */
#define RATELIMIT_COUNT_MAX     1000000

/*
 * Parses a rate "N/UNIT" (UNIT: s, min, h or d; N in 1..RATELIMIT_COUNT_MAX) into the interval
 * between two tokens in microseconds, rounded up so that the rate is never exceeded; "0" or
 * "0/UNIT" means no limit (interval 0). -EINVAL for anything else.
 */
int ratelimit_parse_rate(const char *s, uint64_t *ret_interval_usec);

/*
 * At most one log line per interval for a message a peer or a shortage can repeat at will,
 * counting the lines left out in between: a bucket of one token. The caller passes the time.
 */
struct ratelimit {
        struct tokenbucket bucket;
        unsigned suppressed;            /* lines dropped since the last one logged */
};

/* true: log now, and *ret_suppressed says how many lines were dropped since the last one. */
bool ratelimit_pass(struct ratelimit *rl, uint64_t now_usec, uint64_t interval_usec, unsigned *ret_suppressed);
