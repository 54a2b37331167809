/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "aggregate.h"
#include "buf.h"
#include "proto.h"
#include "store.h"

/*
 * The control socket of a running `authserver serve` (docs/control.md): the admin verbs talk
 * to the service that holds the master key instead of opening the database themselves.
 *
 *   control.c         the server's end: its own thread, peer credentials, one request per
 *                     connection, answered from its own store handle
 *   control-wire.c    the framing and the encodings both ends share (pure)
 *   control-client.c  struct admin_db: the admin verbs' database, the server's control
 *                     socket when one answers, else the database opened directly
 *   stats.c           the running server's counters (status, metrics)
 *   metrics.c         --metrics: the Prometheus text exposition, its own thread
 */

#define AUTHSERVER_DEFAULT_CONTROL      "/run/authserver/control"
#define AUTHSERVER_DEFAULT_CONTROL_GROUP "authserver-admin"
/* The account of the shipped authserver.service: a control socket it holds is trusted. */
#define AUTHSERVER_USER "authserver"

/* Bounds: a request carries at most one vault (enroll); an answer frame one row or text. */
#define CONTROL_VERSION                 1
#define CONTROL_REQUEST_MAX             (1024 + SV_VAULT_MAX)
#define CONTROL_FRAME_MAX               65536
#define CONTROL_MESSAGE_MAX             512
#define CONTROL_TIMEOUT_S               10

enum control_verb {
        CONTROL_LIST = 1,
        CONTROL_SHOW = 2,
        CONTROL_STATS = 3,
        CONTROL_ENROLL = 4,
        CONTROL_REVOKE = 5,
        CONTROL_STATUS = 6,
        CONTROL_AUDIT = 7,
};

/* Answer frames: a row, text, or the end with the result. */
enum control_frame {
        CONTROL_FRAME_DEVICE = 'D',
        CONTROL_FRAME_AGGREGATE = 'G',
        CONTROL_FRAME_AUDIT = 'A',
        CONTROL_FRAME_TEXT = 'T',
        CONTROL_FRAME_END = 'E',
};

/* One row of the audit trail (store_audit_list()). */
struct audit_row {
        int64_t time;
        char device_id[SV_ID_MAX + 1];  /* "" for none */
        char peer[64];
        char outcome[32];
        uint64_t epoch;
};

/* control-wire.c: pure encodings over struct buf; -EBADMSG on a malformed field. */
int control_put_string(struct buf *b, const char *s, size_t max);
int control_get_string(struct buf *b, char *out, size_t cap);
int control_put_device(struct buf *b, const struct store_device *d);
int control_get_device(struct buf *b, struct store_device *ret);
int control_put_aggregate(struct buf *b, const struct aggregate *a);
int control_get_aggregate(struct buf *b, struct aggregate *ret);
int control_put_audit(struct buf *b, const struct audit_row *a);
int control_get_audit(struct buf *b, struct audit_row *ret);

typedef int (*audit_row_cb)(const struct audit_row *a, void *userdata);
/* A store_audit_cb that hands each row as a struct audit_row to cb. */
struct audit_relay {
        audit_row_cb cb;
        void *userdata;
};
int audit_relay_row(int64_t time, const char *device, const char *peer, const char *outcome, uint64_t epoch,
                    void *userdata);

/* Frame I/O on a blocking socket: u32 big-endian length, then the body (len <= max). */
int control_send_frame(int fd, const uint8_t *body, size_t len);
/* Reads one frame into buf (cap bytes); -EPROTO for a length over max or 0, -ECONNRESET at EOF. */
int control_recv_frame(int fd, uint8_t *buf, size_t cap, size_t max, size_t *ret_len);

/* control-client.c: the admin verbs' database. */
struct config;
struct admin_db;
/* Opens the server's control socket if one answers, else the database: with the master key
 * for WRITE, without for READ (rows only), not at all for REMOTE. Errors are logged. */
enum admin_db_mode {
        ADMIN_DB_WRITE,
        ADMIN_DB_READ,
        ADMIN_DB_REMOTE,
};
int admin_db_open(const struct config *c, enum admin_db_mode mode, struct admin_db **ret);
void admin_db_close(struct admin_db *db);
bool admin_db_remote(const struct admin_db *db);
const char *admin_db_last_error(const struct admin_db *db);
int admin_db_enroll(struct admin_db *db, const struct store_device *dev, const uint8_t *vault, size_t len);
int admin_db_revoke(struct admin_db *db, const char *id);
/* An audit row of an admin action; the server writes its own when it did the action. */
int admin_db_audit(struct admin_db *db, const char *id, const char *outcome);
/* last: where the server writes the device's last handshake it saw, if any (NULL: not asked). */
int admin_db_get(struct admin_db *db, const char *id, struct store_device *ret, FILE *last);
int admin_db_list(struct admin_db *db, store_list_cb cb, void *userdata);
int admin_db_aggregate_list(struct admin_db *db, store_aggregate_cb cb, void *userdata);
int admin_db_audit_list(struct admin_db *db, const char *id, int64_t since, audit_row_cb cb, void *userdata);
/* The running server's status text (remote only: -ENOTCONN without a server). */
int admin_db_status(struct admin_db *db, FILE *out);
static inline void admin_db_closep(struct admin_db **db) {
        if (*db)
                admin_db_close(*db);
}

/*
 * stats.c: the running server's counters, for `authserver status` and --metrics. Handshake
 * outcomes by name over the last minute (per-second slots) and hour (per-minute slots) and
 * in total; desynchronisations recovered (a device that came back with its pending
 * generation); the latency of the store's lookups as a histogram. Thread-safe: a short
 * mutex for the outcomes, atomics for the rest.
 */
#define STATS_OUTCOMES_MAX      32
#define STATS_LATENCY_BUCKETS   12
#define STATS_LAST_MAX          1024    /* devices whose last handshake is remembered */
struct stats;
int stats_new(struct stats **ret);
void stats_free(struct stats *st);
/* outcome: a string that lives as long as the process (conn.c's literals). desync: the
 * session used the device's pending generation; took_over: it ended the device's session
 * that waited for its M5 (a lost or late M5). */
void stats_outcome(struct stats *st, bool ok, const char *outcome, bool desync, bool took_over,
                   const char *device_id, const char *peer);
void stats_store_latency(struct stats *st, uint64_t usec);
/* The status text (`authserver status`) and the metrics exposition; conns: open connections. */
int stats_status(struct stats *st, uint64_t conns, FILE *out);
int stats_metrics(struct stats *st, uint64_t conns, FILE *out);
/* The last handshake of id seen by this server: 0 if none since it started, else 1. */
int stats_last(struct stats *st, const char *id, int64_t *ret_time, char *outcome, size_t outcome_cap,
               char *peer, size_t peer_cap);

/* acceptor.c: a listening socket (fd, not owned) served on a thread of its own; serve() gets
 * each accepted connection, which is closed after it. Every connection has an absolute
 * deadline; above max_conns 1 connections are served at once, each on its own thread. */
#include <pthread.h>
#include <sys/socket.h>
#define ACCEPTOR_MAX_CONNS      16
struct acceptor_limits {
        int64_t timeout_ms;     /* a connection's whole life, from accept() */
        unsigned max_conns;     /* served at once; 1: one at a time on the acceptor's thread */
        bool one_per_address;   /* at most one connection per peer address at once */
};
struct acceptor {
        int fd, stop_fd;
        pthread_t thread;
        bool started, sync_ready;
        void (*serve)(void *userdata, int fd);
        void *userdata;
        int64_t timeout_ms;
        unsigned max_conns;
        bool one_per_address;
        pthread_mutex_t lock;
        pthread_cond_t idle;
        unsigned n_active;
        bool slot_used[ACCEPTOR_MAX_CONNS];
        struct sockaddr_storage slot_addr[ACCEPTOR_MAX_CONNS];
};
int acceptor_start(struct acceptor *a, int fd, const struct acceptor_limits *limits,
                   void (*serve)(void *userdata, int fd), void *userdata);
/* Sets the socket's send and receive time-outs to what is left of the deadline of the
 * connection the calling thread serves (-ETIMEDOUT once it passed); 0 and nothing done on a
 * thread that serves none (a client). Called before every send() and recv(). */
int acceptor_arm(int fd);
/* Wakes the thread and joins it, then waits for the connections still served (each ends by
 * its deadline at the latest). */
void acceptor_stop(struct acceptor *a);

/* control.c: the control socket's thread. */
struct control;
struct shared;
int control_start(const struct config *cfg, struct shared *sh, struct control **ret);
void control_stop(struct control *ctl);

/* metrics.c: --metrics ADDR:PORT, the Prometheus text exposition, its own thread. */
struct metrics;
int metrics_start(const char *spec, struct shared *sh, struct metrics **ret);
void metrics_stop(struct metrics *m);
