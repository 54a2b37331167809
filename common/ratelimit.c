/* SPDX-License-Identifier: MIT */
#include <limits.h>

#include "ratelimit.h"

bool ratelimit_pass(struct ratelimit *rl, uint64_t now_usec, uint64_t interval_usec, unsigned *ret_suppressed) {
        if (now_usec < rl->next_usec) {
                if (rl->suppressed < UINT_MAX)
                        rl->suppressed++;
                return false;
        }
        rl->next_usec = now_usec + interval_usec;
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}
