/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"

/* Upper bounds of the store latency histogram, in microseconds (the last is +Inf). */
static const uint64_t latency_le_us[STATS_LATENCY_BUCKETS - 1] = {
        100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000,
};

struct slot {
        int64_t stamp;                  /* the second (or minute) it counts; -1: empty */
        uint32_t counts[STATS_OUTCOMES_MAX];
        uint32_t desyncs;
};

struct last {
        char id[SV_ID_MAX + 1];
        int64_t time;
        const char *outcome;
        bool ok;
        char peer[64];
};

struct stats {
        pthread_mutex_t lock;
        int64_t start_mono_s, start_real_s;
        /* Under lock: */
        const char *names[STATS_OUTCOMES_MAX];  /* outcomes seen, in the order first seen */
        bool ok[STATS_OUTCOMES_MAX];
        unsigned n_names;
        uint64_t totals[STATS_OUTCOMES_MAX];
        uint64_t desyncs;
        struct slot seconds[60], minutes[60];
        struct last *last;              /* STATS_LAST_MAX, by a hash of the id */
        /* Atomics: */
        uint64_t latency_buckets[STATS_LATENCY_BUCKETS];        /* not cumulative */
        uint64_t latency_sum_us, latency_count;
};

static int64_t mono_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec;
}

int stats_new(struct stats **ret) {
        struct stats *st = calloc(1, sizeof *st);

        if (!st)
                return -ENOMEM;
        st->last = calloc(STATS_LAST_MAX, sizeof *st->last);
        if (!st->last || pthread_mutex_init(&st->lock, NULL) != 0) {
                free(st->last);
                free(st);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < 60; i++)
                st->seconds[i].stamp = st->minutes[i].stamp = -1;
        st->start_mono_s = mono_s();
        st->start_real_s = (int64_t) time(NULL);
        *ret = st;
        return 0;
}

void stats_free(struct stats *st) {
        if (!st)
                return;
        pthread_mutex_destroy(&st->lock);
        free(st->last);
        free(st);
}

static struct slot *slot_at(struct slot *ring, int64_t stamp) {
        struct slot *s = &ring[stamp % 60];

        if (s->stamp != stamp)
                *s = (struct slot) { .stamp = stamp };
        return s;
}

static unsigned id_hash(const char *id) {
        uint32_t h = 2166136261u;       /* FNV-1a: a table index, not a defence */

        for (; *id; id++)
                h = (h ^ (uint8_t) *id) * 16777619u;
        return h % STATS_LAST_MAX;
}

void stats_outcome(struct stats *st, bool ok, const char *outcome, bool desync, bool took_over,
                   const char *device_id, const char *peer) {
        int64_t now = mono_s();
        unsigned i;

        struct last *l;

        if (!st || !outcome)
                return;
        l = device_id && device_id[0] ? &st->last[id_hash(device_id)] : NULL;
        pthread_mutex_lock(&st->lock);
        /* A device that uses its pending generation right after an authenticated session only
         * outran that session's commit (the group commit is asynchronous): unless it took over
         * a session still waiting for its M5 (took_over), a desync is a return after a session
         * that did not end well, or one this server did not see (it restarted, or the
         * device's slot was taken by another id). */
        if (desync && !took_over && l && l->outcome && l->ok && strcmp(l->id, device_id) == 0)
                desync = false;
        for (i = 0; i < st->n_names; i++)
                if (st->names[i] == outcome || strcmp(st->names[i], outcome) == 0)
                        break;
        if (i == st->n_names) {
                if (st->n_names == STATS_OUTCOMES_MAX) {
                        pthread_mutex_unlock(&st->lock);
                        return;
                }
                st->names[i] = outcome;
                st->ok[i] = ok;
                st->n_names++;
        }
        st->totals[i]++;
        slot_at(st->seconds, now)->counts[i]++;
        slot_at(st->minutes, now / 60)->counts[i]++;
        if (desync) {
                st->desyncs++;
                slot_at(st->seconds, now)->desyncs++;
                slot_at(st->minutes, now / 60)->desyncs++;
        }
        if (l) {
                snprintf(l->id, sizeof l->id, "%s", device_id);
                l->time = (int64_t) time(NULL);
                l->outcome = st->names[i];
                l->ok = ok;
                snprintf(l->peer, sizeof l->peer, "%s", peer ? peer : "");
        }
        pthread_mutex_unlock(&st->lock);
}

void stats_store_latency(struct stats *st, uint64_t usec) {
        unsigned b = 0;

        if (!st)
                return;
        while (b < STATS_LATENCY_BUCKETS - 1 && usec > latency_le_us[b])
                b++;
        __atomic_fetch_add(&st->latency_buckets[b], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&st->latency_sum_us, usec, __ATOMIC_RELAXED);
        __atomic_fetch_add(&st->latency_count, 1, __ATOMIC_RELAXED);
}

int stats_last(struct stats *st, const char *id, int64_t *ret_time, char *outcome, size_t outcome_cap,
               char *peer, size_t peer_cap) {
        struct last *l = &st->last[id_hash(id)];
        int found = 0;

        pthread_mutex_lock(&st->lock);
        if (l->outcome && strcmp(l->id, id) == 0) {
                *ret_time = l->time;
                snprintf(outcome, outcome_cap, "%s", l->outcome);
                snprintf(peer, peer_cap, "%s", l->peer);
                found = 1;
        }
        pthread_mutex_unlock(&st->lock);
        return found;
}

/* A copy of the counts taken under the lock, so that rendering holds it not. */
struct snapshot {
        const char *names[STATS_OUTCOMES_MAX];
        bool ok[STATS_OUTCOMES_MAX];
        unsigned n;
        uint64_t minute[STATS_OUTCOMES_MAX], hour[STATS_OUTCOMES_MAX], total[STATS_OUTCOMES_MAX];
        uint64_t desync_minute, desync_hour, desync_total;
        uint64_t buckets[STATS_LATENCY_BUCKETS], latency_sum_us, latency_count;
        int64_t uptime_s, start_real_s;
};

static void snapshot(struct stats *st, struct snapshot *s) {
        int64_t now = mono_s();

        *s = (struct snapshot) { .uptime_s = now - st->start_mono_s, .start_real_s = st->start_real_s };
        pthread_mutex_lock(&st->lock);
        s->n = st->n_names;
        for (unsigned i = 0; i < st->n_names; i++) {
                s->names[i] = st->names[i];
                s->ok[i] = st->ok[i];
                s->total[i] = st->totals[i];
        }
        s->desync_total = st->desyncs;
        for (unsigned k = 0; k < 60; k++) {
                const struct slot *sec = &st->seconds[k], *min = &st->minutes[k];

                if (sec->stamp >= 0 && sec->stamp > now - 60) {
                        for (unsigned i = 0; i < s->n; i++)
                                s->minute[i] += sec->counts[i];
                        s->desync_minute += sec->desyncs;
                }
                if (min->stamp >= 0 && min->stamp > now / 60 - 60) {
                        for (unsigned i = 0; i < s->n; i++)
                                s->hour[i] += min->counts[i];
                        s->desync_hour += min->desyncs;
                }
        }
        pthread_mutex_unlock(&st->lock);
        for (unsigned b = 0; b < STATS_LATENCY_BUCKETS; b++)
                s->buckets[b] = __atomic_load_n(&st->latency_buckets[b], __ATOMIC_RELAXED);
        s->latency_sum_us = __atomic_load_n(&st->latency_sum_us, __ATOMIC_RELAXED);
        s->latency_count = __atomic_load_n(&st->latency_count, __ATOMIC_RELAXED);
}

/* The smallest bucket bound under which at least q of the lookups fell, in µs; 0: none. */
static uint64_t quantile_us(const struct snapshot *s, double q) {
        uint64_t seen = 0;

        if (s->latency_count == 0)
                return 0;
        for (unsigned b = 0; b < STATS_LATENCY_BUCKETS - 1; b++) {
                seen += s->buckets[b];
                if ((double) seen >= q * (double) s->latency_count)
                        return latency_le_us[b];
        }
        return UINT64_MAX;
}

static void print_bound(FILE *out, uint64_t us) {
        if (us == UINT64_MAX)
                fprintf(out, "> %.3f ms", (double) latency_le_us[STATS_LATENCY_BUCKETS - 2] / 1000);
        else
                fprintf(out, "<= %.3f ms", (double) us / 1000);
}

int stats_status(struct stats *st, uint64_t conns, FILE *out) {
        struct snapshot s;
        char started[32];
        time_t t;
        struct tm tm;
        uint64_t ok[3] = { 0 }, failed[3] = { 0 };

        snapshot(st, &s);
        t = (time_t) s.start_real_s;
        if (!gmtime_r(&t, &tm) || strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(started, sizeof started, "?");
        for (unsigned i = 0; i < s.n; i++) {
                uint64_t *v = s.ok[i] ? ok : failed;

                v[0] += s.minute[i];
                v[1] += s.hour[i];
                v[2] += s.total[i];
        }
        fprintf(out, "authserver " PACKAGE_VERSION "\n"
                "  started:     %s (uptime %" PRId64 "d %02" PRId64 ":%02" PRId64 ":%02" PRId64 ")\n"
                "  connections: %" PRIu64 " open\n\n"
                "  %-24s %12s %12s %12s\n"
                "  %-24s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n"
                "  %-24s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n",
                started, s.uptime_s / 86400, s.uptime_s / 3600 % 24, s.uptime_s / 60 % 60, s.uptime_s % 60, conns,
                "HANDSHAKES", "LAST MINUTE", "LAST HOUR", "TOTAL",
                "authenticated", ok[0], ok[1], ok[2], "failed", failed[0], failed[1], failed[2]);
        for (unsigned i = 0; i < s.n; i++)
                if (!s.ok[i])
                        fprintf(out, "    %-22s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", s.names[i], s.minute[i],
                                s.hour[i], s.total[i]);
        fprintf(out, "  %-24s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n\n", "desyncs recovered", s.desync_minute,
                s.desync_hour, s.desync_total);
        fprintf(out, "  store lookups: %" PRIu64, s.latency_count);
        if (s.latency_count) {
                fprintf(out, ", mean %.3f ms, median ", (double) s.latency_sum_us / (double) s.latency_count / 1000);
                print_bound(out, quantile_us(&s, 0.5));
                fprintf(out, ", 99%% ");
                print_bound(out, quantile_us(&s, 0.99));
        }
        fprintf(out, "\n");
        return ferror(out) ? -EIO : 0;
}

int stats_metrics(struct stats *st, uint64_t conns, FILE *out) {
        struct snapshot s;
        uint64_t cumulative = 0, rejected = 0;

        snapshot(st, &s);
        fprintf(out, "# HELP authserver_handshakes_total Handshakes that ended, by outcome (ok: authenticated).\n"
                "# TYPE authserver_handshakes_total counter\n");
        for (unsigned i = 0; i < s.n; i++) {
                /* An M3 for an id that is not enrolled fails as "decoy" where an enrolled
                 * device's fails as "auth-failed" or "protocol": exported apart, they would tell
                 * anyone who can scrape the endpoint which ids are enrolled (one M1 and a bad M3,
                 * then which counter moved). One label for all three; `status`, for admins on
                 * the control socket, keeps them apart. */
                if (strcmp(s.names[i], "decoy") == 0 || strcmp(s.names[i], "auth-failed") == 0 ||
                    strcmp(s.names[i], "protocol") == 0) {
                        rejected += s.total[i];
                        continue;
                }
                /* Outcome names are conn.c's literals of [a-z0-9-]: nothing to escape. */
                fprintf(out, "authserver_handshakes_total{outcome=\"%s\"} %" PRIu64 "\n", s.names[i], s.total[i]);
        }
        fprintf(out, "authserver_handshakes_total{outcome=\"rejected\"} %" PRIu64 "\n", rejected);
        fprintf(out, "# HELP authserver_desyncs_recovered_total Devices that came back with their pending generation.\n"
                "# TYPE authserver_desyncs_recovered_total counter\n"
                "authserver_desyncs_recovered_total %" PRIu64 "\n"
                "# HELP authserver_connections Open device connections.\n"
                "# TYPE authserver_connections gauge\n"
                "authserver_connections %" PRIu64 "\n"
                "# HELP authserver_start_time_seconds Start time of the server since the Unix epoch.\n"
                "# TYPE authserver_start_time_seconds gauge\n"
                "authserver_start_time_seconds %" PRId64 "\n"
                "# HELP authserver_store_lookup_duration_seconds Latency of the store's device lookups.\n"
                "# TYPE authserver_store_lookup_duration_seconds histogram\n",
                s.desync_total, conns, s.start_real_s);
        for (unsigned b = 0; b < STATS_LATENCY_BUCKETS; b++) {
                cumulative += s.buckets[b];
                if (b < STATS_LATENCY_BUCKETS - 1)
                        fprintf(out, "authserver_store_lookup_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                                (double) latency_le_us[b] / 1e6, cumulative);
                else
                        fprintf(out, "authserver_store_lookup_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                                cumulative);
        }
        fprintf(out, "authserver_store_lookup_duration_seconds_sum %.6f\n"
                "authserver_store_lookup_duration_seconds_count %" PRIu64 "\n",
                (double) s.latency_sum_us / 1e6, cumulative);
        return ferror(out) ? -EIO : 0;
}
