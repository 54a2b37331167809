/* SPDX-License-Identifier: MIT */
#pragma once

#include <time.h>

#include <systemd/sd-event.h>

#include "authserver.h"
#include "list.h"
#include "netprefix.h"
#include "ratelimit.h"

/*
 * authserver serve, in layers. Calls go down, never up:
 *
 *   serve.c    the top: options, signals, systemd, the event loop; it wires the layers
 *              below together and decides what their reports lead to
 *   listen.c   the listening sockets: accept(), the pause when out of descriptors
 *   conn.c     one handshake per connection (common/handshake.h), back-off, address caps
 *   upkeep.c   what failed handshakes teach: counts, decoy shapes, audit retention
 *   queue.c    the group commit: write records, one transaction and one fsync per batch
 *   libstore   store.h (the device rows, sealed vaults); backoff.c, decoy.c and
 *              generation.c are pure helpers of any layer
 *
 * A lower layer reports upward only through a callback the layer above set: a write
 * record's done() (queue -> conn: on_pending_durable, on_commit_done), queue.on_fatal
 * (queue -> serve: stop), server.on_conn_closed (conn -> serve: resume listening, end the
 * drain).
 */

/* One TCP connection carries one handshake (protocol §3). */
enum conn_phase {
        CONN_READ_M1,
        CONN_BACKOFF,           /* M1 read; waiting out the failure delay */
        CONN_READ_M3,
        CONN_STORING,           /* M3 verified; next vault queued for the group commit */
        CONN_READ_M5,
        CONN_COMMITTING,        /* M5 verified; the commit is queued for the group commit */
        CONN_CLOSING,           /* flushing a last frame, then close */
};

struct server;

/* Failed handshakes of peers that proved no device, by outcome, since the last summary row. */
#define UPKEEP_OUTCOMES_MAX     16
struct upkeep_tally {
        const char *outcome;            /* a string literal of conn.c; NULL: free */
        uint64_t count;
        struct ratelimit log;           /* their log lines */
};

/* Failures of one enrolled device since the last summary (written to its row then). */
struct upkeep_device {
        struct upkeep_device *next;     /* in its hash bucket */
        uint32_t count;
        int64_t last;                   /* unix seconds */
        char id[SV_ID_MAX + 1];
};

/* Open connections from one network (IPv4 /24, IPv6 /48) that have not yet proven a device. */
struct conn_addr {
        struct conn_addr *next;         /* in its hash bucket */
        struct netprefix prefix;
        unsigned count;
};

/*
 * One write of the group commit (queue.c), built by the connection that needs it: the queue
 * does the write from these fields alone, never reading a connection, and reports the result
 * through done(), one callback per purpose.
 */
enum write_action {
        WRITE_PENDING,                  /* M3 verified: the next vault becomes pending, durable before M4 */
        WRITE_COMMIT,                   /* M5 verified: the epoch M1 named is committed, and audited */
};

struct write_record {
        LIST_FIELDS(struct write_record, queue);
        enum { WRITE_IDLE, WRITE_QUEUED, WRITE_FLUSHING } state;
        enum write_action action;
        char device_id[SV_ID_MAX + 1];
        uint64_t enrollment;            /* the token the lookup read: compare-and-set (store.h) */
        uint64_t epoch;                 /* the epoch M1 named */
        bool promote;                   /* PENDING: the device moved to its pending vault, promote it first */
        bool superseded;                /* COMMIT: the device's next session may have committed it already */
        const uint8_t *vault;           /* PENDING: the next vault, n·m bytes, the caller's until done() */
        size_t vault_len;
        char peer[64];                  /* COMMIT: for the audit row */
        int result;                     /* the queue's, until done() */
        void (*done)(struct write_record *w, int r);
        void *userdata;
};

struct conn {
        struct server *srv;
        LIST_FIELDS(struct conn, all);          /* server.conns */
        LIST_FIELDS(struct conn, inflight);     /* server.inflight, once M3 verified */
        LIST_FIELDS(struct conn, hello);        /* server.hellos, until M1 is in */
        struct write_record write;      /* its write in the group commit, while queued */
        bool verified;                  /* M3 verified: a proven device, audited row by row */
        bool superseded;                /* the device's next session took over (its M5 was late) */
        int fd;
        sd_event_source *io;
        sd_event_source *timer;         /* M1's deadline, then the whole handshake's */
        sd_event_source *delay;         /* failure back-off before answering M1 */
        struct conn_addr *addr;         /* counted against its address until M3 verifies */
        int64_t start_ms;               /* accepted at (monotonic ms) */
        bool expired;
        bool hello_expired;             /* closed for sending no M1 in time: not a guess */
        uint8_t expect_type;            /* of the next frame, checked from its header */
        uint16_t expect_len;            /* exact body length; 0 for M1's range */
        enum conn_phase phase;
        char peer[64];                  /* "addr:port" */
        char net[NETPREFIX_TEXT_MAX];   /* the peer's network, "192.0.2.0/24" or "2001:db8:1::/48" */
        char peer_key[NETPREFIX_TEXT_MAX + 8];  /* "peer:NETWORK" for the back-off table */
        char id_key[SV_ID_MAX + 4];     /* "id:DEVICE", set once M1 is read */
        char id_peer_key[SV_ID_MAX + NETPREFIX_TEXT_MAX + 8];  /* "idnet:DEVICE@NETWORK", likewise */
        uint8_t in[SV_FRAME_MAX];
        size_t in_len;
        uint8_t out[SV_FRAME_MAX];
        size_t out_len, out_pos;
        struct hs_server hs;
        struct msg_hello hello;
        bool hello_valid;
        struct store_device dev;
        bool known;
        enum generation gen;
        uint8_t *vault;                 /* the generation in use, n·m bytes */
        uint8_t *next_vault;
        size_t vault_len;
        const char *reason;             /* why a decoy was sent, for the log */
};

/* queue.c: the group commit. */
struct write_queue {
        struct store *store;
        LIST_HEAD(struct write_record) records;         /* the next batch */
        LIST_HEAD(struct write_record) flushing;        /* the batch being written */
        sd_event_source *flush_src;     /* idle: the batch is as full as the loop allows */
        sd_event_source *flush_timer;   /* but no later than FLUSH_DELAY_US after its first write */
        bool fatal;                     /* the database may have lost a write: exit, do not touch it */
        uint64_t n_vault_writes, n_syncs;      /* group commit effect */
        /* Set by the top layer: a sync failed (fatal is set), the server must stop. */
        void (*on_fatal)(void *userdata);
        void *userdata;
};

struct server {
        struct config *cfg;
        sd_event *event;
        struct store *store;
        struct backoff *backoff;
        uint8_t *scratch;               /* 2 × SV_VAULT_MAX: both generations of one lookup */
        int listen_fds[AUTHSERVER_LISTEN_MAX];
        sd_event_source *listen_src[AUTHSERVER_LISTEN_MAX];
        unsigned n_listen;
        LIST_HEAD(struct conn) conns;   /* every connection */
        struct conn_addr **addr_buckets;        /* per-address counts; NULL without a limit */
        unsigned n_addr_buckets;                /* a power of two */
        uint8_t addr_salt[16];
        bool accept_paused;             /* out of descriptors: listeners off until accept_timer */
        sd_event_source *accept_timer;
        struct ratelimit accept_log;    /* "Failed to accept" lines */
        LIST_HEAD(struct conn) inflight;        /* sessions past M3, at most one per device: each
                                                 * owns its device until it ends */
        LIST_HEAD(struct conn) hellos;  /* no M1 yet: oldest first, evicted first */
        struct write_queue queue;
        sd_event_source *status_timer;
        bool draining;
        uint64_t n_ok, n_failed, n_rejected;
        uint64_t n_evicted;             /* idle (no M1) connections closed to make room */
        /* Set by the top layer (serve.c): a connection was closed and freed. */
        void (*on_conn_closed)(struct server *srv);
        /* upkeep.c */
        struct decoy_table decoys;      /* shapes of the active devices, a sealed decoy vault each */
        struct decoy_shape decoy_fallback;      /* while no device of M1's profile is enrolled */
        uint64_t data_version;          /* of the store when decoys was loaded */
        struct upkeep_tally tallies[UPKEEP_OUTCOMES_MAX];
        struct upkeep_device **devices; /* UPKEEP_BUCKETS chains */
        unsigned n_devices;
        uint64_t n_devices_dropped;
        sd_event_source *upkeep_timer;
        int64_t next_summary_ms;
};

/* CLOCK_MONOTONIC in microseconds, the clock of time-outs, back-off and log limits. */
static inline uint64_t server_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* listen.c */
int listen_open(struct server *srv);
void listen_close(struct server *srv);
/* Listeners back on after a pause for lack of descriptors, e.g. when a connection closed. */
void listen_resume(struct server *srv);

/* conn.c */
int conn_accept(struct server *srv, int fd);
int conn_addr_table_init(struct server *srv);
void conn_addr_table_free(struct server *srv);
void conn_free(struct conn *c);

/* queue.c */
int queue_init(struct write_queue *q, sd_event *event, struct store *store);
void queue_free(struct write_queue *q);
/* w->done(w, result) runs once its batch is durable (or failed). */
void queue_add(struct write_queue *q, struct write_record *w);
/* Takes w off the queue: its connection ends before the batch ran. */
void queue_cancel(struct write_queue *q, struct write_record *w);
/* Runs the group commit now; extra(userdata, now), if given, writes first in its transaction. */
void queue_flush(struct write_queue *q, void (*extra)(void *userdata, int64_t now), void *userdata);

/* upkeep.c: what the server learns from failed handshakes, kept in memory and written once
 * per interval; the decoy shapes; the audit retention. */
int upkeep_init(struct server *srv);
void upkeep_free(struct server *srv);
/* A failed handshake of a peer that proved no device: counted, never written as it happens. */
void upkeep_failure(struct server *srv, const char *outcome);
/* Whether the log line of such a failure may be written now (rate-limited per outcome). */
bool upkeep_log_pass(struct server *srv, const char *outcome, unsigned *ret_suppressed);
void upkeep_device_failure(struct server *srv, const char *id, int64_t now);
void upkeep_device_success(struct server *srv, const char *id);
/* Runs the group commit now with, inside its transaction, the summary rows, the devices'
 * failure counts, and one batch of audit pruning. */
void upkeep_flush(struct server *srv);
/* Reloads the decoy shapes if an admin command changed the store. */
void upkeep_refresh_shapes(struct server *srv, bool force);
