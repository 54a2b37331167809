/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "authserver.h"
#include "fault.h"

/* Above this many queued writes the group commit runs at once instead of waiting for a quiet loop. */
#define FLUSH_BATCH_MAX 256
/* Audit rows waiting beyond this many are written at once, each its own transaction. */
#define AUDIT_QUEUE_MAX 4096
/* A busy loop may never be quiet: the group commit runs at the latest this long after its first
 * write was queued. Short next to one fsync, so batches are hardly smaller for it. */
#define FLUSH_DELAY_US  2000

/* One queued write: the pending vault of a verified M3 (sealed by the connection: the writer
 * never sees a plaintext vault), the commit of a verified M5, or the aggregate of a DATA
 * record. */
static int write_one(struct write_queue *q, struct write_record *w, bool *stored_pending) {
        int r;

        if (w->action == WRITE_AGGREGATE) {
                /* Durable before the answer leaves: the batch ends with an fsync. */
                *stored_pending = true;
                return store_aggregate_add(q->store, w->name, w->value, &w->agg);
        }
        if (w->action == WRITE_COMMIT) {
                fault_crash("before-commit");
                /* M1 named the generation the session used; after M3 it is the committed one (§6). */
                r = store_commit(q->store, w->device_id, w->enrollment, w->epoch, (int64_t) time(NULL));
                if (r == -ESTALE && w->superseded)
                        r = 0;  /* the device's next session already promoted this vault */
                if (r >= 0 && store_audit(q->store, (int64_t) time(NULL), w->device_id, w->peer, "ok",
                                          w->epoch + 1) < 0)
                        log_warning("Failed to write audit row: %s", store_last_error(q->store));
                return r;
        }
        *stored_pending = true;
        if (w->promote) {
                /* The device moved to the pending vault: it becomes committed first. A late M5 of
                 * the session that stored it may have committed it already. */
                r = store_promote_and_set_pending_sealed(q->store, w->device_id, w->enrollment, w->epoch - 1,
                                                         w->sealed, w->sealed_len);
                if (r == -ESTALE)
                        r = store_set_pending_sealed(q->store, w->device_id, w->enrollment, w->epoch, w->sealed,
                                                     w->sealed_len);
        } else
                r = store_set_pending_sealed(q->store, w->device_id, w->enrollment, w->epoch, w->sealed,
                                             w->sealed_len);
        return r;
}

static int audit_write(struct write_queue *q, const struct audit_record *a) {
        return store_audit(q->store, a->time, a->has_id ? a->device_id : NULL, a->peer, a->outcome, a->epoch);
}

/* Arms the group commit: at once when the loop is idle, at the latest after FLUSH_DELAY_US. */
static void flush_arm(struct write_queue *q) {
        (void) sd_event_source_set_enabled(q->flush_src, SD_EVENT_ONESHOT);
        if (q->records.n + q->audits.n == 1 && sd_event_source_set_time_relative(q->flush_timer, FLUSH_DELAY_US) >= 0)
                (void) sd_event_source_set_enabled(q->flush_timer, SD_EVENT_ONESHOT);
}

void queue_audit(struct write_queue *q, int64_t now, const char *id, const char *peer, const char *outcome,
                 uint64_t epoch) {
        struct audit_record *a = q->audits.n < AUDIT_QUEUE_MAX ? malloc(sizeof *a) : NULL;

        if (a) {
                *a = (struct audit_record) { .time = now, .epoch = epoch, .has_id = id != NULL };
                snprintf(a->device_id, sizeof a->device_id, "%s", id ?: "");
                snprintf(a->peer, sizeof a->peer, "%s", peer);
                snprintf(a->outcome, sizeof a->outcome, "%s", outcome);
                LIST_APPEND(audits, &q->audits, a);
                flush_arm(q);
                return;
        }
        /* Its own transaction (or the open batch's), as before the queue took audit rows. */
        if (store_audit(q->store, now, id, peer, outcome, epoch) < 0)
                log_warning("Failed to write audit row: %s", store_last_error(q->store));
}

/*
 * The group commit: every write queued since the last run (the sealed pending vault of a
 * verified M3, the commit of a verified M5 with its audit row, an aggregate, the audit rows of
 * proven devices' failures) is done in one transaction. If any stored a pending vault,
 * the transaction is made durable with one fsync before any M4 leaves (protocol §6: the
 * pending vault is on disk before M4); commits alone need no fsync. Running at idle priority
 * lets all ready connections join the batch first; a timer started by the first queued write
 * makes sure a flood of other events cannot starve it until the sessions time out.
 *
 * A failed sync is fatal. Linux marks the pages of a failed fsync clean, so a later sync
 * that succeeds may not have written them: a WAL frame could be missing on disk while this
 * process still reads it from the page cache, and an M4 sent after that would promise a
 * vault that a crash can lose. Only a fresh start, where SQLite recovers the WAL from what
 * is really on disk, is trustworthy again; systemd restarts the service.
 */
void queue_flush(struct write_queue *q, void (*extra)(void *userdata, int64_t now), void *userdata) {
        LIST_HEAD(struct audit_record) audits = { q->audits.first, q->audits.last, q->audits.n };
        struct write_record *w;
        struct audit_record *a;
        bool stored_pending = false;
        const char *why = NULL;
        int rb;

        (void) sd_event_source_set_enabled(q->flush_src, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(q->flush_timer, SD_EVENT_OFF);
        /* The batch leaves the queue: what is queued from here on joins the next one. */
        q->flushing.first = q->records.first;
        q->flushing.last = q->records.last;
        q->flushing.n = q->records.n;
        q->records.first = q->records.last = NULL;
        q->records.n = 0;
        LIST_FOREACH(queue, w, &q->flushing)
                w->state = WRITE_FLUSHING;
        q->audits.first = q->audits.last = NULL;
        q->audits.n = 0;
        if (!q->flushing.first && !audits.first && !extra)
                return;

        fault_crash("before-pending");
        rb = store_batch_begin(q->store);
        /* The caller's writes first (upkeep's counts: a commit in this batch resets a device's
         * failures after them). */
        if (rb >= 0 && extra)
                extra(userdata, (int64_t) time(NULL));
        LIST_FOREACH(queue, w, &q->flushing) {
                w->result = rb < 0 ? rb : write_one(q, w, &stored_pending);
                /* -ERANGE: an aggregate would leave the finite numbers, the device is told so. */
                if (w->result < 0 && w->result != -ESTALE && w->result != -ERANGE && rb >= 0)
                        log_warning("Failed to store for '%s': %s", w->device_id, store_last_error(q->store));
        }
        /* The audit rows of handshakes that ended without a write (never synced for them). */
        while ((a = audits.first)) {
                LIST_REMOVE(audits, &audits, a);
                if (rb >= 0 && audit_write(q, a) < 0)
                        log_warning("Failed to write audit row: %s", store_last_error(q->store));
                free(a);
        }
        if (rb >= 0) {
                rb = store_batch_commit(q->store, stored_pending);
                if (rb >= 0 && stored_pending) {
                        q->n_syncs++;
                        LIST_FOREACH(queue, w, &q->flushing)
                                q->n_vault_writes += w->action == WRITE_PENDING && w->result >= 0;
                }
                if (rb >= 0 && stored_pending && fault_fail("fail-sync")) {
                        q->n_syncs--;
                        rb = -EIO;
                        why = "injected fault";
                }
                if (rb == -EIO) {
                        /* Before the handshakes end, so that they write nothing more. */
                        q->fatal = true;
                        log_error("Failed to make the batch durable: %s; exiting, the database is "
                                  "recovered from its write-ahead log at the next start",
                                  why ? why : store_last_error(q->store));
                } else if (rb < 0)
                        log_error("Failed to commit the batch: %s", store_last_error(q->store));
        } else
                log_error("Failed to begin a batch: %s", store_last_error(q->store));

        /* One at a time from the front: a callback may end another connection of the batch,
         * which takes its record off (queue_cancel()). */
        while ((w = q->flushing.first)) {
                LIST_REMOVE(queue, &q->flushing, w);
                w->state = WRITE_IDLE;
                w->done(w, rb < 0 ? rb : w->result);
        }
        if (q->fatal && q->on_fatal)
                q->on_fatal(q->userdata);
}

static int flush_handler(sd_event_source *s, void *userdata) {
        queue_flush(userdata, NULL, NULL);
        return 0;
}

void queue_add(struct write_queue *q, struct write_record *w) {
        LIST_APPEND(queue, &q->records, w);
        w->state = WRITE_QUEUED;
        if (q->records.n >= FLUSH_BATCH_MAX) {
                queue_flush(q, NULL, NULL);
                return;
        }
        flush_arm(q);
}

void queue_cancel(struct write_queue *q, struct write_record *w) {
        if (w->state == WRITE_QUEUED)
                LIST_REMOVE(queue, &q->records, w);
        else if (w->state == WRITE_FLUSHING)
                LIST_REMOVE(queue, &q->flushing, w);
        w->state = WRITE_IDLE;
}

static int flush_timer_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        queue_flush(userdata, NULL, NULL);
        return 0;
}

int queue_init(struct write_queue *q, sd_event *event, struct store *store) {
        int r;

        *q = (struct write_queue) { .store = store };
        r = sd_event_add_defer(event, &q->flush_src, flush_handler, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->flush_src, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->flush_src, SD_EVENT_OFF);
        /* 0 accuracy: sd-event's default of 250 ms would make the deadline meaningless. */
        if (r >= 0)
                r = sd_event_add_time_relative(event, &q->flush_timer, CLOCK_MONOTONIC, FLUSH_DELAY_US, 0,
                                               flush_timer_handler, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->flush_timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->flush_timer, SD_EVENT_OFF);
        return r;
}

void queue_free(struct write_queue *q) {
        struct audit_record *a;

        /* Left only after a failed sync: the database is not touched again. */
        while ((a = q->audits.first)) {
                LIST_REMOVE(audits, &q->audits, a);
                free(a);
        }
        q->flush_src = sd_event_source_disable_unref(q->flush_src);
        q->flush_timer = sd_event_source_disable_unref(q->flush_timer);
}
