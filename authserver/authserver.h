/* SPDX-License-Identifier: MIT */
#pragma once

#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "handshake.h"
#include "list.h"
#include "log.h"
#include "netprefix.h"
#include "ratelimit.h"
#include "record.h"
#include "sinkmsg.h"
#include "store.h"

/*
 * The one private header of authserver: the settings and admin verbs (config.c, admin.c,
 * main.c), the pure helpers (generation.c, decoy.c, backoff.c), and the server (serve.c and
 * the layers under it, below). libstore's store.h and store-crypto.h stay apart:
 * a library does not include its program's header.
 *
 * authserver serve, in layers. Calls go down, never up:
 *
 *   serve.c    the top: options, signals, systemd, the main thread's loop and the workers'
 *              threads (--workers: a loop, listeners, store handle and connections each;
 *              struct shared holds what they share); it wires the layers below together
 *              and decides what their reports lead to
 *   listen.c   the listening sockets: accept(), the pause when out of descriptors
 *   conn.c     one handshake per connection (common/handshake.h), back-off, address caps
 *   sink.c     with --sink, each data channel's link to the local application (docs/sink.md)
 *   upkeep.c   what failed handshakes teach: counts, decoy shapes, audit retention
 *   queue.c    the group commit: write records, one transaction and one fsync per batch,
 *              on a writer thread of its own (its done() callbacks run on the loop)
 *   libstore   store.h (the device rows, sealed vaults); backoff.c, decoy.c and
 *              generation.c are pure helpers of any layer
 *
 * A lower layer reports upward only through a callback the layer above set: a write
 * record's done() (queue -> conn: on_pending_durable, on_commit_done), queue.on_fatal
 * (queue -> serve: stop), server.on_conn_closed (conn -> serve: resume listening, end the
 * drain), a sink link's on_message and on_end (sink -> conn: an answer, a link that failed).
 */

#define AUTHSERVER_CONFIG_PATH          "/etc/secure-vault/authserver.conf"
#define AUTHSERVER_DEFAULT_DB           "/var/lib/authserver/devices.db"
#define AUTHSERVER_DEFAULT_LISTEN       "[::]:7410"
#define AUTHSERVER_CREDENTIAL_NAME      "authserver.key"
#define AUTHSERVER_DEFAULT_TIMEOUT_MS   10000
/* A device sends M1 as soon as it is connected: a connection silent for longer is idle and
 * only holds a slot. Short, so that idle floods cannot keep the table full (protocol §7). */
#define AUTHSERVER_DEFAULT_HELLO_TIMEOUT_MS 2000
#define AUTHSERVER_DEFAULT_MAX_CONN     1024
/* Connections one network (IPv4 /24, IPv6 /48) may hold before it has proven a device: enough
 * for a site of devices behind one NAT address, far from all of --max-connections. 0 = no limit. */
#define AUTHSERVER_DEFAULT_MAX_PER_ADDR 64
/* The data channel after M5 (protocol §11): records one connection may send, and how long it
 * may stay silent between them; on either bound the server sends CLOSE. */
#define AUTHSERVER_DEFAULT_MAX_RECORDS  1000
#define AUTHSERVER_DEFAULT_CHANNEL_IDLE_MS 30000
/* --sink: how long the application may take to answer one DATA record before the device gets
 * CLOSE (docs/sink.md). */
#define AUTHSERVER_DEFAULT_SINK_TIMEOUT_MS 5000
#define AUTHSERVER_LISTEN_MAX           8
/* serve --workers: at most this many protocol threads (default: the CPUs it may run on). */
#define AUTHSERVER_WORKERS_MAX          64
#define AUTHSERVER_SERVER_ID_MAX        64
/* SIGTERM lets open handshakes finish for at most this long. */
#define AUTHSERVER_DRAIN_MS             5000
/* Audit rows older than this many days are pruned by the running server. */
/* Days; a unit suffix (s, min, h, d) may say otherwise. At most 100 years. */
#define AUTHSERVER_DEFAULT_AUDIT_RETENTION 90
#define AUTHSERVER_AUDIT_RETENTION_MAX_S (36500ULL * 86400)
/*
 * The key share mode `enroll` gives a hardened device without --kex or enroll-kex: x25519
 * (protocol 1.1 §10, forward secrecy). A paper device has none only (§10: the share is
 * hardened only), so it needs no default of its own.
 */
#define AUTHSERVER_ENROLL_KEX_HARDENED_DEFAULT SV_KEX_X25519
#define AUTHSERVER_ENROLL_KEX_UNSET     (-1)

/* Exit codes of the admin verbs and of serve. */
enum {
        AS_EXIT_OK = 0,
        AS_EXIT_FAILURE = 1,
        AS_EXIT_USAGE = 2,
        AS_EXIT_NOT_FOUND = 3,
        AS_EXIT_EXISTS = 4,
        AS_EXIT_DATABASE = 5,
};

struct config {
        const char *config_path;
        char *db_path;
        char *master_key_path;
        char *listen[AUTHSERVER_LISTEN_MAX];
        unsigned n_listen;
        unsigned timeout_ms;
        unsigned hello_timeout_ms;      /* for M1; the handshake's timeout_ms still bounds it */
        unsigned max_connections;
        unsigned max_per_address;       /* 0: no limit */
        uint16_t decoy_n;               /* the decoy shape while no device of M1's profile is enrolled */
        uint8_t decoy_p;
        int enroll_kex;                 /* SV_KEX_* for hardened enrollments, or _UNSET: the default */
        uint64_t audit_retention_s;     /* 0: keep the audit trail forever */
        unsigned max_records;           /* DATA records per connection after M5 */
        unsigned channel_idle_ms;       /* silence allowed between records */
        char *sink_path;                /* NULL: the built-in handler answers records */
        bool sink_keys;                 /* the sink gets each session key too */
        unsigned sink_timeout_ms;       /* for the sink's answer to one DATA record */
        unsigned workers;               /* protocol threads (serve --workers) */
        char *control_path;             /* NULL: AUTHSERVER_DEFAULT_CONTROL (control.h), "none": off */
        char *control_group;            /* NULL: AUTHSERVER_DEFAULT_CONTROL_GROUP */
        char *metrics;                  /* serve --metrics ADDR:PORT; NULL: off */
        char *server_id;                /* serve --server-id: this server's stable name on a shared
                                         * PostgreSQL store; NULL: a random one per process */
};

/* Options every verb takes: --db, --master-key, --config, --log-level, --control. */
enum {
        ARG_DB = 0x100,
        ARG_MASTER_KEY,
        ARG_CONFIG,
        ARG_LOG_LEVEL,
        ARG_CONTROL,
};

#define COMMON_OPTIONS \
        { "help",       no_argument,       NULL, 'h' }, \
        { "db",         required_argument, NULL, ARG_DB }, \
        { "master-key", required_argument, NULL, ARG_MASTER_KEY }, \
        { "config",     required_argument, NULL, ARG_CONFIG }, \
        { "log-level",  required_argument, NULL, ARG_LOG_LEVEL }, \
        { "control",    required_argument, NULL, ARG_CONTROL }

/* 1 if opt was a common option and was applied; 0 if it is not one of them; -errno on a bad value. */
int common_option(struct config *c, int opt, const char *arg);
/* Prints the help text of COMMON_OPTIONS, for each verb's --help (main.c). */
void common_options_help(void);

/* config.c */
void config_init(struct config *c);
void config_free(struct config *c);
/* Reads `key = value` lines; a missing file is fine unless `required`. Errors are logged. */
int config_load(struct config *c, const char *path, bool required);
int config_set(struct config *c, const char *key, const char *value, const char *origin);
/* Checks the settings that constrain each other (decoy-p against decoy-n); logs the error. */
int config_check(const struct config *c, const char *origin);
/* Master key from --master-key or $CREDENTIALS_DIRECTORY/authserver.key. */
int config_master_key(const struct config *c, uint8_t key[STORE_MASTER_KEY_LEN]);
int config_open_store(const struct config *c, int flags, struct store **ret);
int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret);

/* admin.c */
int verb_init(struct config *c, int argc, char *argv[]);
int verb_enroll(struct config *c, int argc, char *argv[]);
int verb_revoke(struct config *c, int argc, char *argv[]);
int verb_list(struct config *c, int argc, char *argv[]);
int verb_show(struct config *c, int argc, char *argv[]);
int verb_stats(struct config *c, int argc, char *argv[]);

/* migrate.c */
int verb_migrate(struct config *c, int argc, char *argv[]);
/* status.c */
int verb_status(struct config *c, int argc, char *argv[]);
int verb_audit(struct config *c, int argc, char *argv[]);

/* serve.c */
int verb_serve(struct config *c, int argc, char *argv[]);

/* generation.c: which vault generation answers an M1 (protocol §6). Pure. */
enum generation {
        GENERATION_DECOY,
        GENERATION_COMMITTED,
        GENERATION_PENDING,
};
enum generation generation_choose(const struct store_device *dev, const struct msg_hello *hello,
                                  const char **ret_reason);

/* decoy.c: the shapes decoys take, weighted like the enrolled fleet (protocol §6). Pure. */
struct decoy_shape {
        uint8_t profile;
        uint16_t n;
        uint8_t m;
        uint8_t p;
        uint64_t count;                 /* active devices of this shape */
        int64_t stand_in;               /* the store's rowid of one of them */
        uint8_t *sealed;                /* a decoy vault of n·m bytes sealed by the store, or NULL */
};
struct decoy_table {
        struct decoy_shape *shapes;     /* in the store's order: by profile, n, m, p */
        size_t n_shapes, cap;
};
void decoy_table_init(struct decoy_table *t);
/* Frees the table and the sealed blobs it holds. */
void decoy_table_free(struct decoy_table *t);
/* Appends a shape (its sealed blob is not copied); -EINVAL for an invalid shape or count 0. */
int decoy_table_add(struct decoy_table *t, const struct decoy_shape *s);
const struct decoy_shape *decoy_shape_find(const struct decoy_table *t, uint8_t profile, uint16_t n,
                                           uint8_t m, uint8_t p);
/* The shape of the decoy for an id of keyed hash h claiming profile: each shape of that profile
 * with a probability proportional to its count; fallback if the table has none. */
const struct decoy_shape *decoy_shape_pick(const struct decoy_table *t, uint8_t profile, uint64_t h,
                                           const struct decoy_shape *fallback);

/* backoff.c: exponentially growing delay after failures, per key (network, id and network,
 * id); BACKOFF_BASE_MS, BACKOFF_MAX_MS and BACKOFF_ID_MAX_MS are store.h's (the shared
 * back-off of a PostgreSQL store counts the same way). */
#define BACKOFF_SLOTS           4096
struct backoff_entry {
        uint64_t hash;
        uint32_t failures;
        int64_t next_ms;                /* no attempt may start before this (monotonic ms) */
};
struct backoff {
        struct backoff_entry slots[BACKOFF_SLOTS];
        uint8_t salt[16];
};
void backoff_init(struct backoff *b);
/* How long (ms) an attempt for key must still wait at now_ms; 0 if none. */
int64_t backoff_wait(const struct backoff *b, const char *key, int64_t now_ms);
/* An attempt for key starts at start_ms (>= now + backoff_wait()): after a failure, the next
 * attempt may only start one delay later, so parallel attempts are spread out, not let through
 * together; but never later than limit_ms (INT64_MAX: no limit). No effect on a key without
 * failures. */
void backoff_reserve(struct backoff *b, const char *key, int64_t start_ms, int64_t limit_ms);
void backoff_failure(struct backoff *b, const char *key, int64_t now_ms);
void backoff_success(struct backoff *b, const char *key);

/* json.c */
void json_string(const char *s);

/* The server (serve.c and the layers under it). */

/* One TCP connection carries one handshake (protocol §3). */
enum conn_phase {
        CONN_READ_M1,
        CONN_BACKOFF,           /* M1 read; waiting out the failure delay */
        CONN_READ_M3,
        CONN_STORING,           /* M3 verified; next vault queued for the group commit */
        CONN_READ_M5,
        CONN_COMMITTING,        /* M5 verified; the commit is queued for the group commit */
        CONN_CHANNEL,           /* committed: reading records of the data channel (§11) */
        CONN_AGGREGATING,       /* a DATA record's aggregate is queued for the group commit */
        CONN_SINKING,           /* a DATA record went to the --sink application, its answer is due */
        CONN_CLOSING,           /* flushing a last frame, then close */
};

struct server;
struct write_port;

/* A session past M3 owns its device (shared by the workers, under shared.lock): at most one
 * per device id. Freed by its owner; another session may unlink it (superseded). */
struct inflight {
        LIST_FIELDS(struct inflight, inflight);
        char device_id[SV_ID_MAX + 1];
        uint64_t epoch;                 /* the epoch its M1 named */
        bool awaiting_m5;               /* its owner sent M4 and waits for M5 */
        bool superseded;                /* the device's next session took over (its M5 was late) */
        bool linked;
};

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
        WRITE_AGGREGATE,                /* a DATA record after M5: folded into its aggregate, durable */
        WRITE_RELEASE,                  /* a session that took the device's claim ended uncommitted */
        WRITE_BACKOFF,                  /* the shared back-off (store.h): a failure, or a reset */
};

struct write_record {
        LIST_FIELDS(struct write_record, queue);
        enum { WRITE_IDLE, WRITE_QUEUED, WRITE_FLUSHING, WRITE_FINISHED } state;
        enum write_action action;
        char device_id[SV_ID_MAX + 1];
        uint64_t enrollment;            /* the token the lookup read: compare-and-set (store.h) */
        uint64_t epoch;                 /* the epoch M1 named */
        bool promote;                   /* PENDING: the device moved to its pending vault, promote it first */
        bool superseded;                /* COMMIT: the device's next session may have committed it already */
        const uint8_t *sealed;          /* PENDING: the next vault sealed at rest (store_seal_next()
                                         * for epoch), never the plaintext; the caller's until done() */
        size_t sealed_len;
        char peer[64];                  /* COMMIT: for the audit row */
        int64_t backoff_keys[_STORE_BACKOFF_KEYS];      /* BACKOFF: the keys, n_backoff_keys of them */
        unsigned n_backoff_keys;
        bool backoff_reset;             /* BACKOFF: a success (all three keys), else a failure */
        char name[AGGREGATE_NAME_MAX + 1];      /* AGGREGATE: the NAME and NUMBER of the payload */
        double value;
        struct aggregate agg;           /* AGGREGATE: the aggregate after the fold, once done */
        int result;                     /* the queue's, until done() */
        void (*done)(struct write_record *w, int r);
        void *userdata;
        struct write_port *port;        /* the loop that queued it, where done() runs */
};

/* Work the loop hands the writer thread (queue_post()): run() there, on the writer's store,
 * first in the next batch's transaction if needs_batch, else outside any transaction; then
 * done() on the loop, with the batch's result (0 outside a batch). run() must not touch
 * what the loop owns: what it needs is copied into the job. */
struct queue_job {
        enum { JOB_IDLE, JOB_POSTED, JOB_RUNNING, JOB_FINISHED } state;  /* under the queue's lock */
        bool needs_batch;
        int result;
        void (*run)(struct queue_job *j, struct store *st, int64_t now);
        void (*done)(struct queue_job *j, int result);
        struct write_port *port;        /* the loop that posted it, where done() runs */
};

/* upkeep.c's job (the main thread's): its counts, moved out of struct shared's tables under
 * its lock when a summary is due (put back there if its batch fails), and the store's data
 * version, read on the writer's connection, which only other processes' commits (the admin
 * verbs) change. */
struct upkeep_job {
        struct queue_job job;
        bool summary;                   /* write the counts below and prune */
        struct {
                const char *outcome;
                uint64_t count;
        } tallies[UPKEEP_OUTCOMES_MAX];
        struct upkeep_device **devices; /* UPKEEP_BUCKETS chains, the job's while posted */
        uint64_t n_devices_dropped;
        uint64_t audit_retention_s;     /* 0: no pruning */
        /* Written by run(), read by done(): */
        bool has_version;
        uint64_t data_version;
        bool prune_more;                /* a full batch was pruned: again at the next tick */
};

/* An audit row of a handshake that ended without a write of its own (a proven device's
 * failure after M3), waiting for the next group commit: queue_audit() copies it. */
struct audit_record {
        LIST_FIELDS(struct audit_record, audits);
        int64_t time;
        uint64_t epoch;
        bool has_id;
        char device_id[SV_ID_MAX + 1];
        char peer[64];
        char outcome[32];
};

/* sink.c: one data channel's link to the --sink application. */
struct sink_link {
        int fd;                         /* -1: none */
        sd_event_source *io;
        sd_event_source *timer;         /* the answer's deadline, armed by sink_link_expect() */
        /* Set by conn.c. on_message: a DATA or CLOSE packet came (m and its payload are valid
         * during the call only). on_end: the link failed and is closed already ("sink-gone",
         * "sink-garbage", "sink-timeout"). Either may free the link's owner. */
        void (*on_message)(struct sink_link *l, const struct sink_msg *m, void *userdata);
        void (*on_end)(struct sink_link *l, const char *why, int err, void *userdata);
        void *userdata;
};

struct conn {
        struct server *srv;
        LIST_FIELDS(struct conn, all);          /* server.conns */
        struct inflight *owns;          /* its device, once M3 verified (shared.inflight) */
        LIST_FIELDS(struct conn, hello);        /* server.hellos, until M1 is in */
        struct write_record write;      /* its write in the group commit, while queued */
        bool verified;                  /* M3 verified: a proven device, audited row by row */
        bool claimed;                   /* its pending write took the device's claim in the database */
        bool superseded;                /* the device's next session took over (its M5 was late) */
        bool took_over;                 /* it is that next session (status: a desync recovered) */
        int fd;
        sd_event_source *io;
        sd_event_source *timer;         /* M1's deadline, then the whole handshake's */
        /* The io source stays enabled from accept to close (each enable or disable, and each
         * change of its events, is an epoll_ctl): */
        bool io_out;                    /* EPOLLOUT is in its events: a frame is half sent */
        bool rx_event;                  /* it reported input while no frame was expected */
        bool rx_eof;                    /* recv() saw the peer's end: nothing is left to drain */
        int64_t idle_since_ms;          /* data channel: the last answer left (the timer is lazy) */
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
        struct store_backoff db_backoff;        /* the shared back-off's keys (store.h), from M1 on */
        bool db_backoff_on;             /* its keys are set: failures are counted in the database */
        bool db_backoff_waited;         /* the wait it asked for is served: not asked again */
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
        uint8_t *sealed_next;           /* the next vault sealed at rest, STORE_SEALED_LEN(vault_len) */
        size_t vault_len;
        const char *reason;             /* why a decoy was sent, for the log */
        struct record_chain rx, tx;     /* the data channel: opens c2s, seals s2c (§11) */
        unsigned n_records;             /* DATA records received */
        struct sink_link sink;          /* with --sink, once the channel is open */
};

/* queue.c: the group commit, on a writer thread of its own with its own store handle. */
/* One loop's end of the queue (each worker's, and the main thread's): its finished records
 * and the eventfd that wakes it; its kick of the writer. */
struct write_port {
        struct write_queue *q;
        int wake_fd;                    /* eventfd: the writer finished a batch */
        sd_event_source *wake_src;      /* on the loop: runs the finished records' done() */
        sd_event_source *flush_src;     /* idle: the batch is as full as the loop allows, kick */
        sd_event_source *flush_timer;   /* but no later than FLUSH_DELAY_US after its first write */
        bool armed;                     /* flush_timer runs for a write of this loop */
        /* Under q->lock: */
        LIST_HEAD(struct write_record) finished;        /* written, done() not yet run */
        bool wake;                      /* the writer owes it a wake-up (a record or its job) */
        bool registered;
        /* The loop's alone: */
        bool fatal;                     /* the database may have lost a write: exit, do not touch it */
        /* Set by the top layer: a sync failed (fatal is set), the server must stop. */
        void (*on_fatal)(void *userdata);
        void *userdata;
};

struct write_queue {
        struct store *store;            /* the writer thread's alone (queue_free() closes it) */
        bool initialized;               /* by queue_init(), which owns store from then on */
        pthread_t thread;
        bool started;
        /* Under lock: */
        pthread_mutex_t lock;
        pthread_cond_t work;            /* signals the writer: records, audits, or stop */
        pthread_cond_t idle;            /* signals the loop: a batch is over (busy is false) */
        LIST_HEAD(struct write_record) records;         /* the next batch */
        LIST_HEAD(struct write_record) flushing;        /* the batch being written */
        LIST_HEAD(struct audit_record) audits;          /* rows for the next batch */
        struct write_port *ports[AUTHSERVER_WORKERS_MAX + 1];
        unsigned n_ports;
        struct queue_job *job;          /* posted, being run, or finished until its done() */
        bool busy;                      /* the writer is in a batch */
        bool kicked;                    /* the loop let the writer start on the batch */
        bool stop;
        bool failed;                    /* a sync failed: the writer touches the database no more */
        uint64_t n_vault_writes, n_syncs;      /* group commit effect */
};

/*
 * What the workers share (serve --workers, docs/architecture.md): the per-device rules and
 * the caps hold across them. Under lock, held for short sections only (never across a
 * syscall or crypto); the decoy table under decoy_lock (replaced by the main thread; an M1
 * copies what it needs of it, never holding the lock across a database round trip); the
 * counts are atomics (__atomic builtins).
 */
struct shared {
        pthread_mutex_t lock;
        struct backoff *backoff;
        struct conn_addr **addr_buckets;        /* per-address counts; NULL without a limit */
        unsigned n_addr_buckets;                /* a power of two */
        uint8_t addr_salt[16];
        LIST_HEAD(struct inflight) inflight;    /* sessions past M3, at most one per device */
        struct upkeep_tally tallies[UPKEEP_OUTCOMES_MAX];
        struct upkeep_device **devices; /* UPKEEP_BUCKETS chains */
        unsigned n_devices;
        uint64_t n_devices_dropped;
        struct ratelimit accept_log;    /* "Failed to accept" lines, of every worker */
        /* Atomics: */
        uint64_t n_conns;               /* every worker's connections, against max-connections */
        uint64_t n_ok, n_failed, n_rejected;
        uint64_t n_evicted;             /* idle (no M1) connections closed to make room */
        pthread_rwlock_t decoy_lock;
        struct decoy_table decoys;      /* shapes of the active devices, a sealed decoy vault each */
        struct decoy_shape decoy_fallback;      /* while no device of M1's profile is enrolled */
        uint64_t data_version;          /* of the store when decoys was loaded (main thread's) */
        struct write_queue queue;       /* the one writer */
        struct stats *stats;            /* status and metrics (control.h) */
        bool db_backoff;                /* the store keeps the back-off shared by its servers */
};

static inline void shared_count(uint64_t *v) {
        __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
}

/* One loop: a worker's (listeners, connections), or the main thread's (signals, upkeep). */
struct server {
        struct config *cfg;
        struct shared *sh;
        unsigned id;                    /* worker number, from 0 */
        sd_event *event;
        struct store *store;            /* this thread's own handle: its lookups and sealing */
        uint8_t *scratch;               /* 2 × SV_VAULT_MAX: the sealed blob of a lookup, the
                                         * plaintext next vault of M3 until it is sealed */
        int listen_fds[AUTHSERVER_LISTEN_MAX];
        sd_event_source *listen_src[AUTHSERVER_LISTEN_MAX];
        bool listen_nodelay[AUTHSERVER_LISTEN_MAX];     /* its connections inherit TCP_NODELAY */
        bool listen_passed;             /* by systemd: the workers share them (listen_clone()) */
        unsigned n_listen;
        LIST_HEAD(struct conn) conns;   /* every connection of this worker */
        bool accept_paused;             /* out of descriptors: listeners off until accept_timer */
        sd_event_source *accept_timer;
        LIST_HEAD(struct conn) hellos;  /* no M1 yet: oldest first, evicted first */
        struct write_port queue;        /* this loop's end of shared.queue */
        sd_event_source *status_timer;
        bool draining;
        /* Set by the top layer (serve.c): a connection was closed and freed. */
        void (*on_conn_closed)(struct server *srv);
        /* upkeep.c (the main thread's) */
        sd_event_source *upkeep_timer;
        int64_t next_summary_ms;
        struct upkeep_job upkeep_job;
        bool upkeep_posted;             /* upkeep_job is the writer's until its done() */
        bool has_data_version;          /* data_version was read since the start */
};

/* CLOCK_MONOTONIC in microseconds, the clock of time-outs, back-off and log limits. */
static inline uint64_t server_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* listen.c */
/* reuseport: each address SO_REUSEPORT, for clones (listen_clone()) in other workers. */
int listen_open(struct server *srv, bool reuseport);
/* srv listens where from does: SO_REUSEPORT clones of its sockets, or (passed by systemd)
 * duplicates of the same ones. */
int listen_clone(struct server *srv, const struct server *from);
void listen_close(struct server *srv);
/* Listeners back on after a pause for lack of descriptors, e.g. when a connection closed. */
void listen_resume(struct server *srv);

/* conn.c */
/* fd: accepted from a listener; ss, ss_len: the peer's address as accept() gave it (ss_len 0:
 * unknown); nodelay: fd inherited TCP_NODELAY from its listener. */
int conn_accept(struct server *srv, int fd, const struct sockaddr_storage *ss, socklen_t ss_len, bool nodelay);
/* Draining: every connection waiting for a record gets CLOSE and ends. */
void conn_drain(struct server *srv);
int conn_addr_table_init(struct shared *sh, const struct config *cfg);
void conn_addr_table_free(struct shared *sh);
void conn_free(struct conn *c);

/* sink.c */
void sink_link_init(struct sink_link *l);
bool sink_link_open(const struct sink_link *l);
/* Connects to the application at path, non-blocking; -errno if it is not there to accept. */
int sink_link_connect(struct sink_link *l, sd_event *event, const char *path,
                      void (*on_message)(struct sink_link *, const struct sink_msg *, void *),
                      void (*on_end)(struct sink_link *, const char *, int, void *), void *userdata);
/* Sends one packet now or fails (-EAGAIN: the application did not read the last ones). */
int sink_link_send(struct sink_link *l, const uint8_t *pkt, size_t len);
/* The next packet is due within timeout_ms, else on_end(.., "sink-timeout", ..). */
int sink_link_expect(struct sink_link *l, unsigned timeout_ms);
/* Closes the link without a report (the application reads end of file). */
void sink_link_close(struct sink_link *l);

/* queue.c. The writer thread owns store (opened by the caller, closed by queue_free()); every
 * function taking a port is called on that port's loop thread, and every done() runs there. */
int queue_init(struct write_queue *q, struct store *store);
/* Runs what is still queued, stops the writer and closes its store (after every port's free). */
void queue_free(struct write_queue *q);
int queue_port_init(struct write_port *p, struct write_queue *q, sd_event *event);
void queue_port_free(struct write_port *p);
/* w->done(w, result) runs once its batch is durable (or failed). */
void queue_add(struct write_port *p, struct write_record *w);
/* Takes w off the queue: its connection ends. If the writer is writing it, waits for that batch. */
void queue_cancel(struct write_port *p, struct write_record *w);
/* Hands j to the writer, which starts on it at once (with what is queued); its done() runs on
 * p's loop. -EBUSY if a job is already posted (one at a time, of every port), -EIO after a
 * failed sync. */
int queue_post(struct write_port *p, struct queue_job *j);
/* Waits until the job p posted, if any, is run, and runs p's finished done()s (at exit). */
void queue_wait_job(struct write_port *p);
/* An audit row of a handshake that ended without a write: copied into the next batch. */
void queue_audit(struct write_port *p, int64_t now, const char *id, const char *peer, const char *outcome,
                 uint64_t epoch);

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
/* Has the writer write, in its next batch, the summary rows, the devices' failure counts, and
 * one batch of audit pruning, and waits for it (at exit). */
void upkeep_flush(struct server *srv);
