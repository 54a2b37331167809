/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * At most one log line per interval for a message a peer or a shortage can repeat at will,
 * counting the lines left out in between. The caller passes the time (no clock here).
 */
struct ratelimit {
        uint64_t next_usec;             /* the next line may be logged from then on */
        unsigned suppressed;            /* lines dropped since the last one logged */
};

/* true: log now, and *ret_suppressed says how many lines were dropped since the last one. */
bool ratelimit_pass(struct ratelimit *rl, uint64_t now_usec, uint64_t interval_usec, unsigned *ret_suppressed);
