/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "authserver.h"
#include "fault.h"

/* Audit rows waiting beyond this many: the queue is handed to the writer at once, and the
 * loop waits for it to take them (queue_audit()). */
#define AUDIT_QUEUE_MAX 4096
/* The writer is started on a batch when the loop is idle (all ready connections have queued
 * their writes), but a busy loop may never be: at the latest this long after the first write
 * was queued. Short next to one fsync, so batches are hardly smaller for it. */
#define FLUSH_DELAY_US  2000

/*
 * The group commit runs on a writer thread with its own store handle, so that the event loop
 * goes on with other handshakes while a batch is written and synced (it used to be blocked
 * for the whole fsync: docs/benchmarks.md, "All cores"). The hand-over: the loop appends a
 * write record under the lock, and kicks the writer (`kicked`, the `work` condition) when the
 * loop is idle or FLUSH_DELAY_US after the batch's first write, as the group commit always
 * waited; the writer takes everything queued as one batch (what is queued while it syncs
 * joins the next one: batches grow with the load), writes it, moves it to `finished` and
 * writes the eventfd; the loop then runs each record's done() on its own thread, so M4 still
 * leaves only after the fsync and no connection is ever touched by the writer. The writer
 * reads a record's fields only: the sealed vault it points to stays the connection's, which
 * is why queue_cancel() of a record being written waits for its batch.
 *
 * Only the writer thread touches its store (asserted in batch_run()): what the loop needs of
 * it, upkeep's counts and the data version that tells of admin changes, it posts as a job
 * (queue_post()), which the writer runs with its next batch and hands back like a record,
 * to the port (the loop) that posted it.
 */

/* One queued write: the pending vault of a verified M3 (sealed by the connection: the writer
 * never sees a plaintext vault), the commit of a verified M5, or the aggregate of a DATA
 * record. */
static int write_one(struct write_queue *q, struct write_record *w, bool *stored_pending) {
        bool audited;
        int r;

        if (w->action == WRITE_AGGREGATE) {
                /* Durable before the answer leaves: the batch ends with an fsync. */
                *stored_pending = true;
                return store_aggregate_add(q->store, w->name, w->value, &w->agg);
        }
        if (w->action == WRITE_RELEASE)
                return store_release_claim(q->store, w->device_id, w->epoch);
        /* Here only when the batch could not be ordered (out of memory): backoff_write(). */
        if (w->action == WRITE_BACKOFF)
                return (w->backoff_reset ? store_backoff_reset : store_backoff_failure)(q->store, w->backoff_keys,
                                                                                        w->n_backoff_keys);
        if (w->action == WRITE_COMMIT) {
                fault_crash("before-commit");
                /* M1 named the generation the session used; after M3 it is the committed one (§6). */
                r = store_commit_audited(q->store, w->device_id, w->enrollment, w->epoch, (int64_t) time(NULL),
                                         w->peer, &audited);
                if (r == -ESTALE && w->superseded) {
                        /* The device's next session already promoted this vault. */
                        r = 0;
                        audited = store_audit(q->store, (int64_t) time(NULL), w->device_id, w->peer, "ok",
                                              w->epoch + 1) >= 0;
                }
                if (r >= 0 && !audited)
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

/*
 * The order a batch writes its records in. On a database that several servers share, each
 * batch is one transaction holding its row locks to the end: two servers' batches that lock
 * two devices' rows in opposite orders deadlock, and PostgreSQL aborts one of them after
 * deadlock_timeout (its handshakes fail, one second late). Every server writes in the same
 * order instead: device rows by id (the records of one device keep their order, its commit
 * before its next session's pending vault), then aggregates by name, then the back-off's rows.
 * A store without row locks (SQLite: a batch locks the whole file) is written in queue order.
 */
struct ordered {
        struct write_record *w;
        size_t pos;
};

static int record_class(const struct write_record *w) {
        return w->action == WRITE_AGGREGATE ? 1 : w->action == WRITE_BACKOFF ? 2 : 0;
}

static int record_order(const void *a, const void *b) {
        const struct ordered *x = a, *y = b;
        int cx = record_class(x->w), cy = record_class(y->w), r = 0;

        if (cx != cy)
                return cx < cy ? -1 : 1;
        if (cx == 0)
                r = strcmp(x->w->device_id, y->w->device_id);
        else if (cx == 1)
                r = strcmp(x->w->name, y->w->name);
        /* The back-off's records stay in queue order: backoff_write() orders their keys. */
        if (r)
                return r;
        return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The batch's records in that order; NULL if the store has no row locks or out of memory
 * (then written as queued). */
static struct ordered *batch_order(struct write_queue *q, struct write_record *batch, size_t *ret_n) {
        struct ordered *o;
        size_t n = 0;

        if (!store_locks_rows(q->store))
                return NULL;
        for (struct write_record *w = batch; w; w = w->queue_next)
                n++;
        o = n ? calloc(n, sizeof *o) : NULL;
        if (!o)
                return NULL;
        n = 0;
        for (struct write_record *w = batch; w; w = w->queue_next, n++)
                o[n] = (struct ordered) { .w = w, .pos = n };
        qsort(o, n, sizeof *o, record_order);
        *ret_n = n;
        return o;
}

/* One record of the batch begun with result rb: its result set; 1 if it stored a vault. */
static unsigned batch_write(struct write_queue *q, struct write_record *w, int rb, bool *stored_pending) {
        w->result = rb < 0 ? rb : write_one(q, w, stored_pending);
        /* -ERANGE: an aggregate would leave the finite numbers, the device is told so. */
        if (w->result < 0 && w->result != -ESTALE && w->result != -ERANGE && rb >= 0)
                log_warning("Failed to store for '%s': %s", w->device_id, store_last_error(q->store));
        return w->action == WRITE_PENDING && w->result >= 0;
}

/*
 * The back-off's records of the batch (WRITE_BACKOFF, at its end), key by key in the order of
 * the keys: a record names three, so records in any order of their own would lock the rows of
 * two batches in opposite orders. The writes of one key keep the order of their records.
 */
struct backoff_op {
        int64_t key;
        size_t pos;
        struct write_record *w;
};

static int backoff_op_order(const void *a, const void *b) {
        const struct backoff_op *x = a, *y = b;

        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void backoff_write(struct write_queue *q, struct ordered *recs, size_t n, int rb) {
        struct backoff_op *ops;
        size_t n_ops = 0;
        bool unused = false;

        if (n == 0)
                return;
        ops = calloc(n * _STORE_BACKOFF_KEYS, sizeof *ops);
        if (!ops) {
                for (size_t i = 0; i < n; i++)
                        (void) batch_write(q, recs[i].w, rb, &unused);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                recs[i].w->result = rb < 0 ? rb : 0;
                for (unsigned k = 0; k < recs[i].w->n_backoff_keys && k < _STORE_BACKOFF_KEYS; k++)
                        ops[n_ops++] = (struct backoff_op) { .key = recs[i].w->backoff_keys[k], .pos = recs[i].pos,
                                                             .w = recs[i].w };
        }
        qsort(ops, n_ops, sizeof *ops, backoff_op_order);
        for (size_t i = 0; rb >= 0 && i < n_ops; i++) {
                struct write_record *w = ops[i].w;
                int r = (w->backoff_reset ? store_backoff_reset : store_backoff_failure)(q->store, &ops[i].key, 1);

                if (r < 0 && w->result >= 0) {
                        w->result = r;
                        log_warning("Failed to update the shared back-off: %s", store_last_error(q->store));
                }
        }
        free(ops);
}

static int audit_write(struct write_queue *q, const struct audit_record *a) {
        return store_audit(q->store, a->time, a->has_id ? a->device_id : NULL, a->peer, a->outcome, a->epoch);
}

static void audits_free(void *first) {
        struct audit_record *a = first;

        while (a) {
                struct audit_record *next = a->audits_next;

                free(a);
                a = next;
        }
}

/*
 * One batch, in one transaction: every write record (the sealed pending vault of a verified
 * M3, the commit of a verified M5 with its audit row, an aggregate), the audit rows of proven
 * devices' failures, and the job's writes first. If any stored a pending vault, the transaction
 * is made durable with one fsync before any M4 leaves (protocol §6: the pending vault is on
 * disk before M4); commits alone need no fsync. Runs on the writer thread with busy set,
 * without the lock; batch, audits and job are the caller's. Returns the batch's result (< 0:
 * every record failed with it).
 *
 * A failed sync is fatal. Linux marks the pages of a failed fsync clean, so a later sync
 * that succeeds may not have written them: a WAL frame could be missing on disk while this
 * process still reads it from the page cache, and an M4 sent after that would promise a
 * vault that a crash can lose. Only a fresh start, where SQLite recovers the WAL from what
 * is really on disk, is trustworthy again; systemd restarts the service. A batch the
 * database refused and rolled back whole (-ECANCELED: PostgreSQL after a lock time-out or a
 * deadlock) is not: its records fail with it and the server goes on. Nor is a commit whose
 * connection to PostgreSQL was lost (-ENOTCONN: the primary died, a fail-over): no M4 leaves
 * for its records, whether the server committed them or not, which the protocol recovers as
 * after a crash past the commit (§6); the database server keeps its own durability (its WAL,
 * its synchronous standby), so this process has no page cache to distrust, and the next
 * batch reconnects (with back-off) to whichever host of the connection string accepts
 * writes. Exiting instead would only have systemd restart authserver into a database that
 * may have no primary yet, which it refuses at start.
 */
static int batch_run(struct write_queue *q, struct write_record *batch, struct audit_record *audits,
                     struct queue_job *job, bool *ret_fatal) {
        struct write_record *w;
        struct ordered *order;
        size_t n_order = 0;
        bool stored_pending = false;
        const char *why = NULL;
        unsigned n_vault = 0;
        int rb;

        assert(pthread_equal(pthread_self(), q->thread));
        /* A job that only reads (the data version) needs no transaction, nor the write lock. */
        if (job && !job->needs_batch) {
                job->run(job, q->store, (int64_t) time(NULL));
                if (!batch && !audits)
                        return 0;
                job = NULL;
        }
        fault_crash("before-pending");
        rb = store_batch_begin(q->store);
        /* The job's writes first (upkeep's counts: a commit in this batch resets a device's
         * failures after them). */
        if (rb >= 0 && job)
                job->run(job, q->store, (int64_t) time(NULL));
        order = batch_order(q, batch, &n_order);
        if (order) {
                size_t i;

                for (i = 0; i < n_order && order[i].w->action != WRITE_BACKOFF; i++)
                        n_vault += batch_write(q, order[i].w, rb, &stored_pending);
                backoff_write(q, order + i, n_order - i, rb);
                free(order);
        } else
                for (w = batch; w; w = w->queue_next)
                        n_vault += batch_write(q, w, rb, &stored_pending);
        /* The audit rows of handshakes that ended without a write (never synced for them). */
        for (struct audit_record *a = audits; rb >= 0 && a; a = a->audits_next)
                if (audit_write(q, a) < 0)
                        log_warning("Failed to write audit row: %s", store_last_error(q->store));
        audits_free(audits);
        if (rb < 0) {
                log_error("Failed to begin a batch: %s", store_last_error(q->store));
                return rb;
        }
        rb = store_batch_commit(q->store, stored_pending);
        if (rb >= 0 && stored_pending && fault_fail("fail-sync")) {
                rb = -EIO;
                why = "injected fault";
        }
        if (rb == -EIO) {
                *ret_fatal = true;
                log_error("Failed to make the batch durable: %s; exiting, the database is "
                          "recovered from its write-ahead log at the next start",
                          why ? why : store_last_error(q->store));
        } else if (rb < 0)
                log_error("Failed to commit the batch: %s", store_last_error(q->store));
        if (rb >= 0 && stored_pending) {
                pthread_mutex_lock(&q->lock);
                q->n_syncs++;
                q->n_vault_writes += n_vault;
                pthread_mutex_unlock(&q->lock);
        }
        return rb;
}

/* Under the lock: the next batch, its audit rows and the posted job leave the queue, marked as
 * being written. */
static void batch_take(struct write_queue *q, struct write_record **ret_batch, struct audit_record **ret_audits,
                       struct queue_job **ret_job) {
        struct write_record *w;

        q->flushing.first = q->records.first;
        q->flushing.last = q->records.last;
        q->flushing.n = q->records.n;
        q->records.first = q->records.last = NULL;
        q->records.n = 0;
        LIST_FOREACH(queue, w, &q->flushing)
                w->state = WRITE_FLUSHING;
        *ret_batch = q->flushing.first;
        *ret_audits = q->audits.first;
        q->audits.first = q->audits.last = NULL;
        q->audits.n = 0;
        *ret_job = q->job && q->job->state == JOB_POSTED ? q->job : NULL;
        if (*ret_job)
                q->job->state = JOB_RUNNING;
        q->busy = true;
        /* queue_audit() may wait for the audit rows to leave. */
        pthread_cond_broadcast(&q->idle);
}

/* Under the lock: the batch is written (rb: its result); its records and job wait for done()
 * on the loop that queued them (each loop with records or its job is owed a wake-up, every
 * loop after a failed sync). */
static void batch_finish(struct write_queue *q, struct queue_job *job, int rb, bool fatal) {
        struct write_record *w;

        if (job) {
                job->result = job->needs_batch && rb < 0 ? rb : 0;
                job->state = JOB_FINISHED;
                job->port->wake = true;
        }

        while ((w = q->flushing.first)) {
                LIST_REMOVE(queue, &q->flushing, w);
                if (!w->port) {
                        free(w);        /* a claim release whose loop is gone: nobody collects it */
                        continue;
                }
                if (rb < 0)
                        w->result = rb;
                w->state = WRITE_FINISHED;
                LIST_APPEND(queue, &w->port->finished, w);
                w->port->wake = true;
        }
        q->failed = q->failed || fatal;
        for (unsigned i = 0; q->failed && i < q->n_ports; i++)
                q->ports[i]->wake = true;
        q->busy = false;
        pthread_cond_broadcast(&q->idle);
}

/* Called without the lock: writes the eventfd of each loop owed a wake-up. */
static void ports_wake(struct write_queue *q) {
        int fds[AUTHSERVER_WORKERS_MAX + 1];
        unsigned n = 0;

        pthread_mutex_lock(&q->lock);
        for (unsigned i = 0; i < q->n_ports; i++)
                if (q->ports[i]->wake) {
                        q->ports[i]->wake = false;
                        fds[n++] = q->ports[i]->wake_fd;
                }
        /* Under the lock: a port unregisters under it before it closes its eventfd. */
        for (unsigned i = 0; i < n; i++)
                (void) eventfd_write(fds[i], 1);
        pthread_mutex_unlock(&q->lock);
}

static void *writer_main(void *userdata) {
        struct write_queue *q = userdata;

        pthread_mutex_lock(&q->lock);
        for (;;) {
                struct write_record *batch;
                struct audit_record *audits;
                struct queue_job *job;
                bool fatal = false, empty = !q->records.first && !q->audits.first &&
                                            !(q->job && q->job->state == JOB_POSTED);
                int rb;

                if ((empty && q->stop) || q->failed)
                        break;
                if (empty)
                        q->kicked = false;      /* its records were cancelled */
                if (empty || q->busy || (!q->kicked && !q->stop)) {
                        pthread_cond_wait(&q->work, &q->lock);
                        continue;
                }
                q->kicked = false;
                batch_take(q, &batch, &audits, &job);
                pthread_mutex_unlock(&q->lock);
                rb = batch_run(q, batch, audits, job, &fatal);
                pthread_mutex_lock(&q->lock);
                batch_finish(q, job, rb, fatal);
                pthread_mutex_unlock(&q->lock);
                /* Wakes the loops; an eventfd write fails only on overflow, which still wakes it. */
                ports_wake(q);
                pthread_mutex_lock(&q->lock);
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

/* On the loop: the finished records' done(), one at a time from the front, since a callback
 * may end another connection of the batch, which takes its record off (queue_cancel()). */
static void run_finished(struct write_port *p) {
        struct write_queue *q = p->q;
        struct write_record *w;
        struct queue_job *j;
        bool failed;

        pthread_mutex_lock(&q->lock);
        failed = q->failed;
        pthread_mutex_unlock(&q->lock);
        /* Before the handshakes end, so that they write nothing more. */
        if (failed)
                p->fatal = true;
        for (;;) {
                pthread_mutex_lock(&q->lock);
                w = p->finished.first;
                if (w) {
                        LIST_REMOVE(queue, &p->finished, w);
                        w->state = WRITE_IDLE;
                }
                pthread_mutex_unlock(&q->lock);
                if (!w)
                        break;
                w->done(w, w->result);
        }
        pthread_mutex_lock(&q->lock);
        j = q->job && q->job->port == p && q->job->state == JOB_FINISHED ? q->job : NULL;
        if (j) {
                q->job = NULL;
                j->state = JOB_IDLE;
        }
        pthread_mutex_unlock(&q->lock);
        if (j)
                j->done(j, j->result);
        if (p->fatal && p->on_fatal)
                p->on_fatal(p->userdata);
}

static int wake_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        eventfd_t v;

        (void) eventfd_read(fd, &v);
        run_finished(userdata);
        return 0;
}

/* The writer may start on the batch: the loop is idle, or the batch's deadline passed. */
static void kick(struct write_port *p) {
        struct write_queue *q = p->q;

        (void) sd_event_source_set_enabled(p->flush_src, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->flush_timer, SD_EVENT_OFF);
        p->armed = false;
        pthread_mutex_lock(&q->lock);
        q->kicked = true;
        pthread_cond_signal(&q->work);
        pthread_mutex_unlock(&q->lock);
}

static int flush_handler(sd_event_source *s, void *userdata) {
        kick(userdata);
        return 0;
}

static int flush_timer_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        kick(userdata);
        return 0;
}

/* On the loop: a write was queued; the writer is kicked when the loop is idle, at the latest
 * FLUSH_DELAY_US after this loop's first write since its last kick. */
static void work_signal(struct write_port *p) {
        (void) sd_event_source_set_enabled(p->flush_src, SD_EVENT_ONESHOT);
        if (!p->armed && sd_event_source_set_time_relative(p->flush_timer, FLUSH_DELAY_US) >= 0 &&
            sd_event_source_set_enabled(p->flush_timer, SD_EVENT_ONESHOT) >= 0)
                p->armed = true;
}

void queue_audit(struct write_port *p, int64_t now, const char *id, const char *peer, const char *outcome,
                 uint64_t epoch) {
        struct write_queue *q = p->q;
        struct audit_record *a = malloc(sizeof *a);
        bool dropped;

        if (!a)
                return;
        *a = (struct audit_record) { .time = now, .epoch = epoch, .has_id = id != NULL };
        snprintf(a->device_id, sizeof a->device_id, "%s", id ?: "");
        snprintf(a->peer, sizeof a->peer, "%s", peer);
        snprintf(a->outcome, sizeof a->outcome, "%s", outcome);
        pthread_mutex_lock(&q->lock);
        /* A full queue is handed to the writer at once, and the loop waits for it to take it
         * (at most one batch): the rows are bounded, and the loop never writes itself. */
        while (q->audits.n >= AUDIT_QUEUE_MAX && !q->failed) {
                q->kicked = true;
                pthread_cond_signal(&q->work);
                pthread_cond_wait(&q->idle, &q->lock);
        }
        dropped = q->failed;
        if (!dropped) {
                LIST_APPEND(audits, &q->audits, a);
                work_signal(p);
        }
        pthread_mutex_unlock(&q->lock);
        /* After a failed sync the database is not touched again. */
        if (dropped)
                free(a);
}

void queue_add(struct write_port *p, struct write_record *w) {
        struct write_queue *q = p->q;

        w->port = p;
        pthread_mutex_lock(&q->lock);
        LIST_APPEND(queue, &q->records, w);
        w->state = WRITE_QUEUED;
        pthread_mutex_unlock(&q->lock);
        work_signal(p);
}

void queue_cancel(struct write_port *p, struct write_record *w) {
        struct write_queue *q = p->q;

        pthread_mutex_lock(&q->lock);
        /* The writer reads the record (and the sealed vault it points to) until its batch is over. */
        while (w->state == WRITE_FLUSHING)
                pthread_cond_wait(&q->idle, &q->lock);
        if (w->state == WRITE_QUEUED)
                LIST_REMOVE(queue, &q->records, w);
        else if (w->state == WRITE_FINISHED)
                LIST_REMOVE(queue, &w->port->finished, w);
        w->state = WRITE_IDLE;
        pthread_mutex_unlock(&q->lock);
}

int queue_post(struct write_port *p, struct queue_job *j) {
        struct write_queue *q = p->q;
        int r = 0;

        pthread_mutex_lock(&q->lock);
        if (q->failed)
                r = -EIO;
        else if (q->job)
                r = -EBUSY;
        else {
                j->port = p;
                q->job = j;
                j->state = JOB_POSTED;
                q->kicked = true;
                pthread_cond_signal(&q->work);
        }
        pthread_mutex_unlock(&q->lock);
        return r;
}

void queue_wait_job(struct write_port *p) {
        struct write_queue *q = p->q;

        pthread_mutex_lock(&q->lock);
        while (q->job && q->job->port == p && q->job->state != JOB_FINISHED && !q->failed && q->started)
                pthread_cond_wait(&q->idle, &q->lock);
        pthread_mutex_unlock(&q->lock);
        run_finished(p);
}

int queue_port_init(struct write_port *p, struct write_queue *q, sd_event *event) {
        int r;

        *p = (struct write_port) { .q = q, .wake_fd = -1 };
        p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (p->wake_fd < 0)
                return -errno;
        r = sd_event_add_io(event, &p->wake_src, p->wake_fd, EPOLLIN, wake_handler, p);
        if (r < 0)
                return r;
        /* Before the connections' events: a finished batch sends its M4s first. */
        r = sd_event_source_set_priority(p->wake_src, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return r;
        r = sd_event_add_defer(event, &p->flush_src, flush_handler, p);
        if (r >= 0)
                r = sd_event_source_set_priority(p->flush_src, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->flush_src, SD_EVENT_OFF);
        /* 0 accuracy: sd-event's default of 250 ms would make the deadline meaningless. */
        if (r >= 0)
                r = sd_event_add_time_relative(event, &p->flush_timer, CLOCK_MONOTONIC, FLUSH_DELAY_US, 0,
                                               flush_timer_handler, p);
        if (r >= 0)
                r = sd_event_source_set_priority(p->flush_timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->flush_timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        pthread_mutex_lock(&q->lock);
        if (q->n_ports < sizeof q->ports / sizeof q->ports[0]) {
                q->ports[q->n_ports++] = p;
                p->registered = true;
                /* A sync that failed before this loop came: it learns so at once. */
                p->wake = q->failed;
        } else
                r = -E2BIG;
        pthread_mutex_unlock(&q->lock);
        return r;
}

/*
 * The claim releases and back-off writes p's connections queued as they ended (conn.c
 * claim_release(), db_backoff_queue()) belong to no connection: the loop frees each in its
 * done(). When the loop goes, those it would have collected are freed here, and those still
 * to be written are left to the writer without a port (batch_finish() frees them after their
 * batch; the claim is released, the back-off counted, all the same). Called with the lock held.
 */
static bool connless(const struct write_record *w) {
        return w->action == WRITE_RELEASE || w->action == WRITE_BACKOFF;
}

static void orphan_releases(struct write_queue *q, struct write_port *p) {
        struct write_record *w, *next;

        for (w = q->records.first; w; w = w->queue_next)
                if (w->port == p && connless(w))
                        w->port = NULL;
        for (w = q->flushing.first; w; w = w->queue_next)
                if (w->port == p && connless(w))
                        w->port = NULL;
        for (w = p->finished.first; w; w = next) {
                next = w->queue_next;
                if (connless(w)) {
                        LIST_REMOVE(queue, &p->finished, w);
                        free(w);
                }
        }
}

/* Its connections are freed (each cancelled its record): no record of this loop is left but
 * claim releases, which orphan_releases() hands over. */
void queue_port_free(struct write_port *p) {
        struct write_queue *q = p->q;

        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        /* Its job, if the writer still holds one (a failed sync, or no wait for it), is dropped:
         * one being run is waited for, since batch_finish() wakes its port. */
        while (q->job && q->job->port == p && q->job->state == JOB_RUNNING)
                pthread_cond_wait(&q->idle, &q->lock);
        if (q->job && q->job->port == p) {
                q->job->state = JOB_IDLE;
                q->job = NULL;
        }
        orphan_releases(q, p);
        for (unsigned i = 0; p->registered && i < q->n_ports; i++)
                if (q->ports[i] == p) {
                        q->ports[i] = q->ports[--q->n_ports];
                        break;
                }
        p->registered = false;
        pthread_mutex_unlock(&q->lock);
        p->wake_src = sd_event_source_disable_unref(p->wake_src);
        p->flush_src = sd_event_source_disable_unref(p->flush_src);
        p->flush_timer = sd_event_source_disable_unref(p->flush_timer);
        if (p->wake_fd >= 0)
                close(p->wake_fd);
        p->wake_fd = -1;
        p->q = NULL;
}

int queue_init(struct write_queue *q, struct store *store) {
        int r;

        *q = (struct write_queue) { .store = store, .initialized = true };
        if (pthread_mutex_init(&q->lock, NULL) != 0)
                return -ENOMEM;
        if (pthread_cond_init(&q->work, NULL) != 0 || pthread_cond_init(&q->idle, NULL) != 0)
                return -ENOMEM;
        r = -pthread_create(&q->thread, NULL, writer_main, q);
        if (r < 0)
                return r;
        q->started = true;
        return 0;
}

void queue_free(struct write_queue *q) {
        if (!q->initialized)
                return;
        if (q->started) {
                /* What is still queued is written before the writer ends (unless a sync failed). */
                pthread_mutex_lock(&q->lock);
                q->stop = true;
                pthread_cond_signal(&q->work);
                pthread_mutex_unlock(&q->lock);
                pthread_join(q->thread, NULL);
                q->started = false;
        }
        /* Left only after a failed sync: the database is not touched again. Every loop is gone,
         * so what is left is port-less claim releases. */
        for (struct write_record *w; (w = q->records.first);) {
                LIST_REMOVE(queue, &q->records, w);
                if (!w->port)
                        free(w);
        }
        audits_free(q->audits.first);
        q->audits.first = q->audits.last = NULL;
        q->audits.n = 0;
        store_close(q->store);
        q->store = NULL;
        q->initialized = false;
}
