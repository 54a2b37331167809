/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authserver.h"

/*
 * Nothing a peer sends before it proves a device (a verified M3) may write to the database,
 * nor cost a known id more than an unknown one: a write per failed handshake lets a flood
 * grow the database without bound, and a write only for enrolled ids tells them apart by
 * timing. So failures of unproven peers are counted here, in memory, per outcome and per
 * enrolled device, and written once per UPKEEP_SUMMARY_MS inside the group commit: one
 * audit_summary row per outcome, and one update of each device that failed meanwhile.
 * Their log lines are rate-limited per outcome. The same run prunes the audit trail.
 */

/* How often the counts are written: the lag of `authserver show`'s failure fields. */
#define UPKEEP_SUMMARY_MS       60000
/* How often the store is asked whether an admin command changed the devices. */
#define UPKEEP_TICK_US          1000000
/* At most one log line per outcome and interval for unproven peers. */
#define UPKEEP_LOG_INTERVAL_US  1000000
/* Audit rows deleted per run: a large backlog goes in small transactions, one per tick. */
#define UPKEEP_PRUNE_BATCH      1000
#define UPKEEP_BUCKETS          4096
/* Devices whose failures are kept between summaries; more only happens with a huge fleet
 * failing at once, and their counts are then dropped (and the drop logged). */
#define UPKEEP_DEVICES_MAX      100000

/* Under sh->lock, like every count here: the workers share them. */
static struct upkeep_tally *tally_for(struct shared *sh, const char *outcome) {
        for (unsigned i = 0; i < UPKEEP_OUTCOMES_MAX; i++) {
                struct upkeep_tally *t = &sh->tallies[i];

                if (!t->outcome)
                        t->outcome = outcome;
                if (strcmp(t->outcome, outcome) == 0)
                        return t;
        }
        return &sh->tallies[UPKEEP_OUTCOMES_MAX - 1];   /* not reached: conn.c has fewer outcomes */
}

void upkeep_failure(struct server *srv, const char *outcome) {
        struct upkeep_tally *t;

        pthread_mutex_lock(&srv->sh->lock);
        t = tally_for(srv->sh, outcome);
        if (t->count < UINT64_MAX)
                t->count++;
        pthread_mutex_unlock(&srv->sh->lock);
}

bool upkeep_log_pass(struct server *srv, const char *outcome, unsigned *ret_suppressed) {
        uint64_t now = server_now_usec();
        bool pass;

        pthread_mutex_lock(&srv->sh->lock);
        pass = ratelimit_pass(&tally_for(srv->sh, outcome)->log, now, UPKEEP_LOG_INTERVAL_US, ret_suppressed);
        pthread_mutex_unlock(&srv->sh->lock);
        return pass;
}

/* FNV-1a: the ids here are enrolled ones, which the operator chose, not the attacker. */
static struct upkeep_device **bucket_for(struct upkeep_device **devices, const char *id) {
        uint32_t h = 2166136261u;

        for (const char *p = id; *p; p++)
                h = (h ^ (uint8_t) *p) * 16777619u;
        return &devices[h % UPKEEP_BUCKETS];
}

void upkeep_device_failure(struct server *srv, const char *id, int64_t now) {
        struct shared *sh = srv->sh;
        struct upkeep_device **b, *d, *fresh = calloc(1, sizeof *fresh);

        pthread_mutex_lock(&sh->lock);
        b = bucket_for(sh->devices, id);
        for (d = *b; d; d = d->next)
                if (strcmp(d->id, id) == 0)
                        break;
        if (!d) {
                if (sh->n_devices >= UPKEEP_DEVICES_MAX || !fresh) {
                        sh->n_devices_dropped++;
                        pthread_mutex_unlock(&sh->lock);
                        free(fresh);
                        return;
                }
                d = fresh;
                fresh = NULL;
                snprintf(d->id, sizeof d->id, "%s", id);
                d->next = *b;
                *b = d;
                sh->n_devices++;
        }
        if (d->count < UINT32_MAX)
                d->count++;
        d->last = now;
        pthread_mutex_unlock(&sh->lock);
        free(fresh);
}

/* A verified M5 resets the device's failures (store_commit()): so do the ones not yet written. */
void upkeep_device_success(struct server *srv, const char *id) {
        struct shared *sh = srv->sh;
        struct upkeep_device *gone = NULL;

        pthread_mutex_lock(&sh->lock);
        for (struct upkeep_device **p = bucket_for(sh->devices, id); *p; p = &(*p)->next)
                if (strcmp((*p)->id, id) == 0) {
                        gone = *p;
                        *p = gone->next;
                        sh->n_devices--;
                        break;
                }
        pthread_mutex_unlock(&sh->lock);
        free(gone);
}

static void devices_clear(struct upkeep_device **devices) {
        for (unsigned i = 0; devices && i < UPKEEP_BUCKETS; i++)
                while (devices[i]) {
                        struct upkeep_device *d = devices[i];

                        devices[i] = d->next;
                        free(d);
                }
}

/* Under sh->lock: a failed job's (or an unposted one's) devices go back to the shared table,
 * node by node (no allocation under the lock), their counts added to those counted since;
 * what is left to free is returned. */
static struct upkeep_device *devices_put_back(struct shared *sh, struct upkeep_device **devices) {
        struct upkeep_device *spare = NULL;

        for (unsigned i = 0; i < UPKEEP_BUCKETS; i++)
                while (devices[i]) {
                        struct upkeep_device *n = devices[i], *d, **b = bucket_for(sh->devices, n->id);

                        devices[i] = n->next;
                        for (d = *b; d; d = d->next)
                                if (strcmp(d->id, n->id) == 0)
                                        break;
                        if (d) {
                                d->count = n->count > UINT32_MAX - d->count ? UINT32_MAX : d->count + n->count;
                                if (n->last > d->last)
                                        d->last = n->last;
                        } else if (sh->n_devices < UPKEEP_DEVICES_MAX) {
                                n->next = *b;
                                *b = n;
                                sh->n_devices++;
                                continue;
                        } else
                                sh->n_devices_dropped++;
                        n->next = spare;
                        spare = n;
                }
        return spare;
}

/* The job's counts go back to the shared tables, under the lock, for the next summary. */
static void counts_put_back(struct server *srv, struct upkeep_job *j) {
        struct shared *sh = srv->sh;
        struct upkeep_device *spare;

        pthread_mutex_lock(&sh->lock);
        for (unsigned i = 0; i < UPKEEP_OUTCOMES_MAX; i++)
                if (j->tallies[i].outcome) {
                        struct upkeep_tally *t = tally_for(sh, j->tallies[i].outcome);

                        t->count = j->tallies[i].count > UINT64_MAX - t->count ? UINT64_MAX :
                                   t->count + j->tallies[i].count;
                }
        spare = devices_put_back(sh, j->devices);
        sh->n_devices_dropped += j->n_devices_dropped;
        pthread_mutex_unlock(&sh->lock);
        while (spare) {
                struct upkeep_device *d = spare;

                spare = d->next;
                free(d);
        }
}

/* On the writer thread: the job's counts, in the group commit's transaction, and the data version. */
static void add_failures(struct store *st, const struct upkeep_device *d) {
        int r = store_add_failures(st, d->id, d->count, d->last);

        if (r < 0 && r != -ENOENT)
                log_warning("Failed to record the failures of '%s': %s", d->id, store_last_error(st));
}

static int device_order(const void *a, const void *b) {
        return strcmp((*(struct upkeep_device *const *) a)->id, (*(struct upkeep_device *const *) b)->id);
}

static void upkeep_run(struct queue_job *job, struct store *st, int64_t now) {
        struct upkeep_job *j = (struct upkeep_job *) job;
        struct upkeep_device **sorted;
        uint64_t total = 0;
        size_t n;
        int r;

        /* Read on the writer's connection, which only other processes' commits (the admin
         * verbs) change: a loop's own would change with every group commit. */
        j->has_version = store_data_version(st, &j->data_version) >= 0;
        if (!j->summary)
                return;
        for (unsigned i = 0; i < UPKEEP_OUTCOMES_MAX; i++) {
                if (!j->tallies[i].outcome || j->tallies[i].count == 0)
                        continue;
                total += j->tallies[i].count;
                if (store_audit_summary(st, now, j->tallies[i].outcome, j->tallies[i].count) < 0)
                        log_warning("Failed to write the audit summary: %s", store_last_error(st));
        }
        /* By id, the order in which a batch writes device rows (queue.c): no deadlock with
         * another server's batch on a shared database. */
        n = 0;
        for (unsigned i = 0; i < UPKEEP_BUCKETS; i++)
                for (struct upkeep_device *d = j->devices[i]; d; d = d->next)
                        n++;
        sorted = n ? calloc(n, sizeof *sorted) : NULL;
        n = 0;
        /* (Out of memory: in the buckets' order.) */
        for (unsigned i = 0; i < UPKEEP_BUCKETS; i++)
                for (struct upkeep_device *d = j->devices[i]; d; d = d->next) {
                        if (sorted)
                                sorted[n++] = d;
                        else
                                add_failures(st, d);
                }
        if (sorted)
                qsort(sorted, n, sizeof *sorted, device_order);
        for (size_t i = 0; i < n; i++)
                add_failures(st, sorted[i]);
        free(sorted);
        if (total > 0)
                log_notice("%" PRIu64 " failed handshakes of unproven peers since the last summary", total);
        if (j->n_devices_dropped > 0)
                log_warning("Failures of %" PRIu64 " devices were not recorded: more than %d devices failed "
                            "within one summary interval", j->n_devices_dropped, UPKEEP_DEVICES_MAX);
        if (j->audit_retention_s > 0) {
                r = store_audit_prune(st, now - (int64_t) j->audit_retention_s, UPKEEP_PRUNE_BATCH);
                if (r < 0)
                        log_warning("Failed to prune the audit trail: %s", store_last_error(st));
                j->prune_more = r == UPKEEP_PRUNE_BATCH;
        }
        r = store_backoff_prune(st, UPKEEP_PRUNE_BATCH);
        if (r < 0)
                log_warning("Failed to prune the shared back-off: %s", store_last_error(st));
        else if (r == UPKEEP_PRUNE_BATCH)
                j->prune_more = true;
}

static int shape_add(uint8_t profile, uint16_t n, uint8_t m, uint8_t p, uint64_t count, int64_t stand_in,
                     void *userdata) {
        struct decoy_shape s = { .profile = profile, .n = n, .m = m, .p = p, .count = count, .stand_in = stand_in };

        return decoy_table_add(userdata, &s);
}

/* Each shape gets its sealed decoy vault now, so that an M1 only ever opens one. */
static int seal_shape(struct server *srv, struct decoy_shape *s) {
        size_t len = (size_t) s->n * s->m;

        s->sealed = malloc(STORE_SEALED_LEN(len));
        if (!s->sealed)
                return -ENOMEM;
        return store_decoy_seal(srv->store, len, s->sealed);
}

/* Reloads the decoy shapes on the main thread's own store handle (read after the data version
 * was), and swaps them in under the write lock: a worker copies what its M1 needs of the table
 * (a shape, its sealed decoy) under the read lock. */
static void refresh_shapes(struct server *srv) {
        struct decoy_table t, swap;
        int r;

        decoy_table_init(&t);
        r = store_shapes(srv->store, shape_add, &t);
        for (size_t i = 0; r >= 0 && i < t.n_shapes; i++)
                r = seal_shape(srv, &t.shapes[i]);
        if (r < 0) {
                /* The previous table stays: an admin change shows at the next try. */
                log_warning("Failed to load the decoy shapes: %s", store_last_error(srv->store));
                decoy_table_free(&t);
                srv->has_data_version = false;
                return;
        }
        pthread_rwlock_wrlock(&srv->sh->decoy_lock);
        swap = srv->sh->decoys;
        srv->sh->decoys = t;
        pthread_rwlock_unlock(&srv->sh->decoy_lock);
        decoy_table_free(&swap);
}

/* On the main thread's loop (the job's port), once the writer ran the job. */
static void upkeep_done(struct queue_job *job, int result) {
        struct upkeep_job *j = (struct upkeep_job *) job;
        struct server *srv = (struct server *) ((char *) j - offsetof(struct server, upkeep_job));

        srv->upkeep_posted = false;
        /* The batch failed (say, another process held the write lock past the busy time-out):
         * its counts go back, for the next summary, as they stayed before the job moved them. */
        if (j->summary && result < 0)
                counts_put_back(srv, j);
        devices_clear(j->devices);
        if (j->summary && j->prune_more && result >= 0)
                srv->next_summary_ms = 0;       /* more to prune: again at the next tick */
        if (j->has_version && (!srv->has_data_version || j->data_version != srv->sh->data_version)) {
                srv->sh->data_version = j->data_version;
                srv->has_data_version = true;
                refresh_shapes(srv);
        }
}

/* Posts the job: the data version always, the counts (moved out of the shared tables under
 * their lock) if summary. -EBUSY while the previous job is the writer's. */
static int upkeep_post(struct server *srv, bool summary) {
        struct shared *sh = srv->sh;
        struct upkeep_job *j = &srv->upkeep_job;
        struct upkeep_device **swap;
        int r;

        if (srv->upkeep_posted)
                return -EBUSY;
        j->summary = summary;
        j->job.needs_batch = summary;
        j->has_version = j->prune_more = false;
        if (summary) {
                /* The job's table is empty (upkeep_done() cleared it): the two trade places. */
                pthread_mutex_lock(&sh->lock);
                for (unsigned i = 0; i < UPKEEP_OUTCOMES_MAX; i++) {
                        j->tallies[i].outcome = sh->tallies[i].outcome;
                        j->tallies[i].count = sh->tallies[i].count;
                        sh->tallies[i].count = 0;
                }
                swap = j->devices;
                j->devices = sh->devices;
                sh->devices = swap;
                sh->n_devices = 0;
                j->n_devices_dropped = sh->n_devices_dropped;
                sh->n_devices_dropped = 0;
                pthread_mutex_unlock(&sh->lock);
                j->audit_retention_s = srv->cfg->audit_retention_s;
        }
        r = queue_post(&srv->queue, &j->job);
        if (r < 0) {
                if (summary)
                        counts_put_back(srv, j);
                return r;
        }
        srv->upkeep_posted = true;
        return 0;
}

void upkeep_flush(struct server *srv) {
        /* The job in flight first, then the last interval's counts. */
        queue_wait_job(&srv->queue);
        if (upkeep_post(srv, true) >= 0)
                queue_wait_job(&srv->queue);
}

static int upkeep_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        struct server *srv = userdata;
        int64_t now_ms = (int64_t) (server_now_usec() / 1000);
        bool summary = now_ms >= srv->next_summary_ms && !srv->queue.fatal;

        /* Not while the previous job is the writer's (a batch may wait for the database for
         * seconds): the next tick then, and the counts wait in memory. */
        if (upkeep_post(srv, summary) >= 0 && summary)
                srv->next_summary_ms = now_ms + UPKEEP_SUMMARY_MS;
        (void) sd_event_source_set_time_relative(s, UPKEEP_TICK_US);
        return 0;
}

int upkeep_init(struct server *srv) {
        int r;

        srv->sh->devices = calloc(UPKEEP_BUCKETS, sizeof *srv->sh->devices);
        srv->upkeep_job = (struct upkeep_job) {
                .job = { .run = upkeep_run, .done = upkeep_done },
                .devices = calloc(UPKEEP_BUCKETS, sizeof *srv->sh->devices),
        };
        if (!srv->sh->devices || !srv->upkeep_job.devices)
                return -ENOMEM;
        decoy_table_init(&srv->sh->decoys);
        /* Sealed once, before any worker starts: read-only from then on. */
        srv->sh->decoy_fallback = (struct decoy_shape) {
                .n = srv->cfg->decoy_n, .m = SV_DEFAULT_M, .p = srv->cfg->decoy_p, .count = 1,
        };
        r = seal_shape(srv, &srv->sh->decoy_fallback);
        if (r < 0) {
                log_error("Failed to seal the decoy vault: %s", store_last_error(srv->store));
                return r;
        }
        /* Now, so that decoys exist from the first M1; again once the first job has read the
         * data version (has_data_version is false), so that no admin change is missed. */
        refresh_shapes(srv);
        /* The first run, at the first tick, prunes what expired while the server was down. */
        srv->next_summary_ms = 0;
        r = sd_event_add_time_relative(srv->event, &srv->upkeep_timer, CLOCK_MONOTONIC, UPKEEP_TICK_US, 0,
                                       upkeep_tick, srv);
        if (r >= 0)
                r = sd_event_source_set_enabled(srv->upkeep_timer, SD_EVENT_ON);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the upkeep timer: %m");
        return 0;
}

void upkeep_free(struct server *srv) {
        srv->upkeep_timer = sd_event_source_disable_unref(srv->upkeep_timer);
        devices_clear(srv->sh->devices);
        free(srv->sh->devices);
        srv->sh->devices = NULL;
        srv->sh->n_devices = 0;
        /* Still the job's only after a failed sync (queue_port_free() dropped the job). */
        devices_clear(srv->upkeep_job.devices);
        free(srv->upkeep_job.devices);
        srv->upkeep_job.devices = NULL;
        decoy_table_free(&srv->sh->decoys);
        free(srv->sh->decoy_fallback.sealed);
        srv->sh->decoy_fallback.sealed = NULL;
}
