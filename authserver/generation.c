/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "authserver.h"

/*
 * Protocol §6: M1's epoch picks the committed vault, or the pending one when the device
 * already moved to it (the server missed M5). Anything else gets a decoy, so that M1
 * reveals nothing; the reason is logged, never sent.
 */
enum generation generation_choose(const struct store_device *dev, const struct msg_hello *hello,
                                  const char **ret_reason) {
        const char *reason;
        enum generation g = GENERATION_DECOY;

        if (!dev)
                reason = "unknown device";
        else if (dev->status != STORE_ACTIVE)
                reason = "revoked device";
        else if (dev->profile != hello->profile)
                reason = "profile mismatch";
        else if (hello->epoch == UINT64_MAX)
                reason = "epoch exhausted: enroll again";
        else if (hello->epoch == dev->epoch) {
                g = GENERATION_COMMITTED;
                reason = "committed generation";
        } else if (dev->has_pending && dev->epoch != UINT64_MAX && hello->epoch == dev->epoch + 1) {
                g = GENERATION_PENDING;
                reason = "pending generation";
        } else
                reason = "epoch desynchronised";
        if (ret_reason)
                *ret_reason = reason;
        return g;
}
