/* SPDX-License-Identifier: MIT */
/*
 * The one handshake vaultd runs at a time (docs/ipc.md §1): which connection holds it, and the
 * timer that ends it when its holder goes quiet, so that a stuck client cannot hold the vault
 * busy for ever. The handshake's secrets (d->sec->hs) and the next vault (d->next) live only as
 * long as it does: every way it ends wipes them.
 */
#include <inttypes.h>

#include <openssl/crypto.h>

#include "vaultd.h"

static int session_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vaultd *d = userdata;

        /* The event starts here: nobody above to report to, so the outcome is logged here. */
        log_peer(LOG_NOTICE, d->session.owner, NULL, d->hdr.params.device_id,
                 "handshake device=%s result=timeout epoch=%" PRIu64, d->hdr.params.device_id, d->hdr.params.epoch);
        session_end(d);
        return 0;
}

int session_begin(struct vaultd *d, struct conn *c) {
        int r;

        r = sd_event_add_time_relative(d->event, &d->session.timer, CLOCK_MONOTONIC,
                                       (uint64_t) VAULTD_HANDSHAKE_TIMEOUT_S * 1000000, 0, session_timeout, d);
        if (r < 0)
                return r;
        d->session.owner = c;
        return 0;
}

void session_end(struct vaultd *d) {
        if (d->sec)
                hs_device_wipe(&d->sec->hs);
        if (d->next)
                OPENSSL_cleanse(d->next, SV_VAULT_MAX);
        d->session.owner = NULL;
        d->session.timer = sd_event_source_disable_unref(d->session.timer);
}

bool session_busy(const struct vaultd *d) {
        return d->session.owner != NULL;
}

bool session_held_by(const struct vaultd *d, const struct conn *c) {
        return c && d->session.owner == c;
}
