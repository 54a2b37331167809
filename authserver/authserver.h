/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"
#include "log.h"
#include "store.h"

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
#define AUTHSERVER_LISTEN_MAX           8
/* SIGTERM lets open handshakes finish for at most this long. */
#define AUTHSERVER_DRAIN_MS             5000
/* Audit rows older than this many days are pruned by the running server. */
/* Days; a unit suffix (s, min, h, d) may say otherwise. At most 100 years. */
#define AUTHSERVER_DEFAULT_AUDIT_RETENTION 90
#define AUTHSERVER_AUDIT_RETENTION_MAX_S (36500ULL * 86400)

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
        uint64_t audit_retention_s;     /* 0: keep the audit trail forever */
        /* Test-only fault injection: exit at a named commit point (tests/e2e crash matrix). */
        char *crash_at;
};

/* config.c */
void config_init(struct config *c);
void config_free(struct config *c);
/* Reads `key = value` lines; a missing file is fine unless `required`. */
int config_load(struct config *c, const char *path, bool required);
int config_set(struct config *c, const char *key, const char *value, const char *origin);
/* Checks the settings that constrain each other (decoy-p against decoy-n); reports on stderr. */
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

/* backoff.c: exponentially growing delay after failures, per key (network, id and network, id). */
#define BACKOFF_SLOTS           4096
#define BACKOFF_BASE_MS         25
#define BACKOFF_MAX_MS          30000
/* The most the count of an id alone (failures from every network) may delay an attempt; it
 * never turns one away, since anyone who knows the id can run it up (protocol §7). */
#define BACKOFF_ID_MAX_MS       1000
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
