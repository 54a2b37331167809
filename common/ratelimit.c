/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "ratelimit.h"
#include "text.h"

#define USEC_PER_SEC ((uint64_t) 1000000)

uint64_t tokenbucket_take(struct tokenbucket *tb, uint64_t now_usec, uint64_t interval_usec, unsigned burst) {
        uint64_t start, full, window;

        assert(burst >= 1);
        if (interval_usec == 0)
                return 0;
        /* Saturate rather than wrap: at UINT64_MAX the bucket simply stays empty. */
        if (__builtin_mul_overflow(interval_usec, (uint64_t) burst, &window))
                window = UINT64_MAX;
        start = tb->full_usec > now_usec ? tb->full_usec : now_usec;
        if (__builtin_add_overflow(start, interval_usec, &full))
                full = UINT64_MAX;
        /* After taking, the bucket would be full at `full`: that may be at most `burst`
         * intervals away (an empty bucket), never more. */
        if (full - now_usec > window)
                return full - now_usec - window;
        tb->full_usec = full;
        return 0;
}

bool ratelimit_pass(struct ratelimit *rl, uint64_t now_usec, uint64_t interval_usec, unsigned *ret_suppressed) {
        if (tokenbucket_take(&rl->bucket, now_usec, interval_usec, 1) > 0) {
                if (rl->suppressed < UINT_MAX)
                        rl->suppressed++;
                return false;
        }
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}

int ratelimit_parse_rate(const char *s, uint64_t *ret_interval_usec) {
        const char *slash = strchr(s, '/');
        uint64_t unit;
        char count[16];
        unsigned long n;

        if (strcmp(s, "0") == 0) {
                *ret_interval_usec = 0;
                return 0;
        }
        if (!slash || (size_t) (slash - s) >= sizeof count)
                return -EINVAL;
        memcpy(count, s, (size_t) (slash - s));
        count[slash - s] = '\0';
        if (text_parse_unsigned(count, 0, RATELIMIT_COUNT_MAX, &n) < 0 || text_time_unit(slash + 1, &unit) < 0)
                return -EINVAL;
        unit *= USEC_PER_SEC;
        *ret_interval_usec = n == 0 ? 0 : (unit + n - 1) / n;
        return 0;
}
