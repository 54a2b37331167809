/* SPDX-License-Identifier: MIT */

/*
 * store_copy() (store.h): a whole store into an empty one, for authserver migrate. Through
 * store.h only: store_dump() reads the source in one snapshot and checks every row, each row
 * goes into the one transaction store_load_begin() opened on the target, and the commit is
 * durable; any failure rolls the target back whole. Sealed vaults are copied as they are:
 * both stores must be sealed under the same master key, checked first.
 */

#include <errno.h>

#include "store.h"
#include "store-backend.h"

struct copy_ctx {
        struct store *to;
        struct store_copy_counts n;
        bool to_failed;                 /* the failure was the target's (its message is set) */
};

static int copy_device(const struct store_device *dev, const struct store_raw_vault vaults[2], void *userdata) {
        struct copy_ctx *c = userdata;
        int r;

        r = store_load_device(c->to, dev, vaults);
        if (r < 0) {
                c->to_failed = true;
                return r;
        }
        c->n.devices++;
        c->n.vaults += (uint64_t) vaults[0].present + vaults[1].present;
        return 0;
}

static int copy_audit(int64_t time, const char *device, const char *peer, const char *outcome, uint64_t epoch,
                      void *userdata) {
        struct copy_ctx *c = userdata;
        int r;

        r = store_audit(c->to, time, device, peer, outcome, epoch);
        if (r < 0) {
                c->to_failed = true;
                return r;
        }
        c->n.audit++;
        return 0;
}

static int copy_summary(int64_t time, const char *outcome, uint64_t count, void *userdata) {
        struct copy_ctx *c = userdata;
        int r;

        r = store_audit_summary(c->to, time, outcome, count);
        if (r < 0) {
                c->to_failed = true;
                return r;
        }
        c->n.summaries++;
        return 0;
}

static int copy_aggregate(const struct aggregate *a, void *userdata) {
        struct copy_ctx *c = userdata;
        int r;

        r = store_load_aggregate(c->to, a);
        if (r < 0) {
                c->to_failed = true;
                return r;
        }
        c->n.aggregates++;
        return 0;
}

int store_copy(struct store *from, struct store *to, struct store_copy_counts *ret) {
        static const struct store_dump_cb cb = {
                .device = copy_device,
                .audit = copy_audit,
                .summary = copy_summary,
                .aggregate = copy_aggregate,
        };
        struct copy_ctx c = { .to = to };
        uint64_t devices = 0;
        int r;

        r = store_same_master_key(from, to);
        if (r < 0)
                return r;
        r = store_load_begin(to);
        if (r < 0)
                return r;
        r = store_dump(from, &cb, &c);
        if (r < 0) {
                /* A failure of the source (a corrupt row, a lost connection) is worded on from. */
                if (!c.to_failed)
                        (void) store_fail(to, r, "%s", store_last_error(from));
                (void) store_batch_rollback(to);
                return r;
        }
        r = store_batch_commit(to, true);
        if (r < 0)
                return r;
        r = store_count(to, &devices);
        if (r < 0)
                return r;
        if (devices != c.n.devices)
                return store_fail(to, -EIO, "The database holds %llu devices after copying %llu",
                                  (unsigned long long) devices, (unsigned long long) c.n.devices);
        *ret = c.n;
        return 0;
}
