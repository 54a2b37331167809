/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authserver.h"
#include "control.h"
#include "unix-connect.h"

/*
 * The admin verbs' database: the running server's control socket when it answers (the
 * master key stays in the service), else the database itself. Each remote call is one
 * connection: one request, then the answer's frames up to the END frame.
 */
struct admin_db {
        struct store *store;            /* direct; NULL when remote */
        const struct config *cfg;
        char path[sizeof ((struct sockaddr_un *) NULL)->sun_path];
        enum admin_db_mode mode;
        bool remote;
        char error[CONTROL_MESSAGE_MAX + 1];
        uint8_t frame[CONTROL_FRAME_MAX];
};

/* The server's socket, checked before a byte is sent: root, the account of the shipped unit,
 * or ourselves may hold it (an impostor would receive enrollments and answer with its own
 * bundles). *ret_peer_uid says who held a refused one. */
static int control_connect(const char *path, int *ret, uid_t *ret_peer_uid) {
        return unix_connect_trusted(path, SOCK_STREAM, 60, AUTHSERVER_USER, ret, ret_peer_uid);
}

/* The request's head: version, verb, the database the client means ("" for the default). */
/* A --db file path as the server must compare it: canonical (realpath(), so that a relative
 * path means what it means here, not in the server's directory), or made absolute from our
 * directory if it does not exist. Connection strings go as they are. */
static int canonical_db(const char *path, char *out, size_t cap) {
        char cwd[PATH_MAX];
        int n;

        if (!path[0] || store_path_is_postgresql(path) || path[0] == '/') {
                if (path[0] != '/' || !realpath(path, out)) {
                        n = snprintf(out, cap, "%s", path);
                        return n < 0 || (size_t) n >= cap ? -ENAMETOOLONG : 0;
                }
                return strlen(out) < cap ? 0 : -ENAMETOOLONG;
        }
        if (realpath(path, out))
                return strlen(out) < cap ? 0 : -ENAMETOOLONG;
        if (!getcwd(cwd, sizeof cwd))
                return -errno;
        n = snprintf(out, cap, "%s/%s", cwd, path);
        return n < 0 || (size_t) n >= cap ? -ENAMETOOLONG : 0;
}

static int request_head(const struct admin_db *db, struct buf *b, uint8_t verb) {
        char path[PATH_MAX];
        int r;

        r = canonical_db(db->cfg->db_path ? db->cfg->db_path : "", path, sizeof path);
        if (r < 0)
                return r;
        if (buf_put_u8(b, CONTROL_VERSION) < 0 || buf_put_u8(b, verb) < 0)
                return -ENOBUFS;
        return control_put_string(b, path, 255);
}

/*
 * One exchange: sends req, hands each row frame to row(), returns END's result (its message in
 * db->error for a negative one) or a transport error. -EPROTO for an answer out of protocol.
 */
static int exchange(struct admin_db *db, const uint8_t *req, size_t req_len,
                    int (*row)(struct admin_db *db, uint8_t type, struct buf *b, void *userdata), void *userdata) {
        int fd = -1, r, result = 0;
        uid_t peer = (uid_t) -1;
        size_t len;

        db->error[0] = '\0';
        r = control_connect(db->path, &fd, &peer);
        if (r < 0) {
                if (r == -EPERM)
                        snprintf(db->error, sizeof db->error, "refusing the control socket %s: it belongs to uid "
                                 "%u, not to root or '%s'", db->path, (unsigned) peer, AUTHSERVER_USER);
                else
                        snprintf(db->error, sizeof db->error, "cannot connect to the control socket %s: %s",
                                 db->path, strerror(-r));
                return r;
        }
        r = control_send_frame(fd, req, req_len);
        /* A server that refuses the peer answers without reading: its END may be waiting. */
        if (r == -EPIPE || r == -ECONNRESET)
                r = 0;
        for (; r >= 0;) {
                struct buf b;
                uint8_t type;

                r = control_recv_frame(fd, db->frame, sizeof db->frame, CONTROL_FRAME_MAX, &len);
                if (r < 0)
                        break;
                buf_reader(&b, db->frame, len);
                if (buf_get_u8(&b, &type) < 0) {
                        r = -EPROTO;
                        break;
                }
                if (type == CONTROL_FRAME_END) {
                        uint32_t v;
                        size_t n;

                        if (buf_get_u32(&b, &v) < 0) {
                                r = -EPROTO;
                                break;
                        }
                        n = buf_remaining(&b) < CONTROL_MESSAGE_MAX ? buf_remaining(&b) : CONTROL_MESSAGE_MAX;
                        memcpy(db->error, buf_peek(&b), n);
                        db->error[n] = '\0';
                        /* Shown to a person: printable ASCII only. */
                        for (size_t i = 0; i < n; i++)
                                if (db->error[i] < 0x20 || db->error[i] > 0x7e)
                                        db->error[i] = '?';
                        result = (int32_t) v;
                        break;
                }
                r = row ? row(db, type, &b, userdata) : -EPROTO;
        }
        close(fd);
        if (r < 0 && !db->error[0])
                snprintf(db->error, sizeof db->error, "control socket %s: %s", db->path,
                         r == -EPROTO ? "an answer out of protocol" : strerror(-r));
        return r < 0 ? r : result;
}

/* The read-only verbs open the database without the master key (store.h STORE_NO_KEY). */
static int open_direct(struct admin_db *db) {
        return config_open_store(db->cfg, db->mode == ADMIN_DB_READ ? STORE_NO_KEY : 0, &db->store);
}

int admin_db_open(const struct config *c, enum admin_db_mode mode, struct admin_db **ret) {
        const char *path = c->control_path ? c->control_path : AUTHSERVER_DEFAULT_CONTROL;
        struct admin_db *db;
        int fd, r;
        uid_t peer = (uid_t) -1;

        db = calloc(1, sizeof *db);
        if (!db)
                return log_error_errno(ENOMEM, "out of memory");
        db->cfg = c;
        db->mode = mode;
        snprintf(db->path, sizeof db->path, "%s", path);
        if (strcmp(path, "none") != 0) {
                r = control_connect(path, &fd, &peer);
                if (r >= 0) {
                        close(fd);
                        db->remote = true;
                        *ret = db;
                        return 0;
                }
                /* No server runs (no socket, or a stale one): the database itself. Any other
                 * error (a peer the file system refuses) is reported, not bypassed. */
                if (r == -EPERM) {
                        free(db);
                        return log_error_errno(r, "refusing the control socket %s: it belongs to uid %u, not to "
                                               "root or '%s' (check --control)", path, (unsigned) peer,
                                               AUTHSERVER_USER);
                }
                if (r != -ENOENT && r != -ECONNREFUSED && r != -ENOTDIR) {
                        free(db);
                        return log_error_errno(r, "cannot connect to the control socket %s: %m%s", path,
                                               r == -EACCES ? " (root or the group " AUTHSERVER_DEFAULT_CONTROL_GROUP
                                                              " only)" : "");
                }
        }
        if (mode == ADMIN_DB_REMOTE) {
                free(db);
                return log_error_errno(ENOTCONN, "no server answers on the control socket %s: is authserver "
                                       "serve running (with --control)?", path);
        }
        r = open_direct(db);
        if (r < 0) {
                free(db);
                return r;
        }
        *ret = db;
        return 0;
}

void admin_db_close(struct admin_db *db) {
        if (!db)
                return;
        store_close(db->store);
        free(db);
}

bool admin_db_remote(const struct admin_db *db) {
        return db->remote;
}

const char *admin_db_last_error(const struct admin_db *db) {
        return db->remote ? db->error : store_last_error(db->store);
}

/* After a request to the server: true when its answer (or the failure, in *r) is the
 * command's; false when a server of another database answered -EXDEV and the command goes
 * on with its own database, opened here. */
static bool remote_done(struct admin_db *db, int *r) {
        if (*r == -EXDEV && db->remote) {
                db->remote = false;
                *r = open_direct(db);
        }
        return db->remote || *r < 0;
}

static int request_id(struct admin_db *db, uint8_t verb, const char *id, uint8_t *req, size_t cap, size_t *ret_len) {
        struct buf b;

        buf_init(&b, req, cap);
        if (request_head(db, &b, verb) < 0 || control_put_string(&b, id, SV_ID_MAX) < 0)
                return -EINVAL;
        *ret_len = b.len;
        return 0;
}

int admin_db_enroll(struct admin_db *db, const struct store_device *dev, const uint8_t *vault, size_t len) {
        struct buf b;
        int r;

        if (db->remote) {
                if (buf_alloc(&b, CONTROL_REQUEST_MAX) < 0)
                        return -ENOMEM;
                r = request_head(db, &b, CONTROL_ENROLL) < 0 || control_put_device(&b, dev) < 0 ||
                    buf_put_u32(&b, (uint32_t) len) < 0 || buf_put_bytes(&b, vault, len) < 0 ? -EINVAL : 0;
                if (r >= 0)
                        r = exchange(db, b.data, b.len, NULL, NULL);
                buf_free(&b);   /* wiped: it held the vault */
                if (remote_done(db, &r))
                        return r;
        }
        return store_enroll(db->store, dev, vault, len, (int64_t) time(NULL));
}

int admin_db_revoke(struct admin_db *db, const char *id) {
        uint8_t req[512];
        size_t len;
        int r;

        if (db->remote) {
                r = request_id(db, CONTROL_REVOKE, id, req, sizeof req, &len);
                if (r >= 0)
                        r = exchange(db, req, len, NULL, NULL);
                if (remote_done(db, &r))
                        return r;
        }
        return store_revoke(db->store, id);
}

int admin_db_audit(struct admin_db *db, const char *id, const char *outcome) {
        /* The server wrote its own row for what it did. */
        if (db->remote)
                return 0;
        return store_audit(db->store, (int64_t) time(NULL), id, "admin", outcome, 0);
}

struct rows {
        store_list_cb device;
        store_aggregate_cb aggregate;
        audit_row_cb audit;
        struct store_device *show;      /* show: the one row */
        bool got;
        FILE *text;                     /* text frames go here; NULL: refused */
        void *userdata;
};

/* A text frame for the terminal: lines and tabs as they are, any other control character
 * (an ESC that would start a terminal sequence, a CR that would overwrite a line) as \xNN. */
static void write_text(FILE *f, const uint8_t *p, size_t len) {
        for (size_t i = 0; i < len; i++) {
                if (p[i] == '\n' || p[i] == '\t' || (p[i] >= 0x20 && p[i] != 0x7f))
                        fputc(p[i], f);
                else
                        fprintf(f, "\\x%02x", p[i]);
        }
}

static int on_row(struct admin_db *db, uint8_t type, struct buf *b, void *userdata) {
        struct rows *w = userdata;
        struct store_device d;
        struct aggregate a;
        struct audit_row au;

        switch (type) {
        case CONTROL_FRAME_DEVICE:
                if (control_get_device(b, &d) < 0 || buf_expect_end(b) < 0)
                        return -EPROTO;
                if (w->show) {
                        if (w->got)
                                return -EPROTO;
                        *w->show = d;
                        w->got = true;
                        return 0;
                }
                return w->device ? w->device(&d, w->userdata) : -EPROTO;
        case CONTROL_FRAME_AGGREGATE:
                if (!w->aggregate || control_get_aggregate(b, &a) < 0 || buf_expect_end(b) < 0)
                        return -EPROTO;
                return w->aggregate(&a, w->userdata);
        case CONTROL_FRAME_AUDIT:
                if (!w->audit || control_get_audit(b, &au) < 0 || buf_expect_end(b) < 0)
                        return -EPROTO;
                return w->audit(&au, w->userdata);
        case CONTROL_FRAME_TEXT:
                if (!w->text)
                        return -EPROTO;
                write_text(w->text, buf_peek(b), buf_remaining(b));
                return 0;
        default:
                return -EPROTO;
        }
}

static int remote_walk(struct admin_db *db, uint8_t verb, struct rows *w) {
        uint8_t req[512];
        struct buf b;

        buf_init(&b, req, sizeof req);
        if (request_head(db, &b, verb) < 0)
                return -EINVAL;
        return exchange(db, req, b.len, on_row, w);
}

int admin_db_get(struct admin_db *db, const char *id, struct store_device *ret, FILE *last) {
        struct rows w = { .show = ret, .text = last };
        uint8_t req[512];
        size_t len;
        int r;

        if (db->remote) {
                r = request_id(db, CONTROL_SHOW, id, req, sizeof req, &len);
                if (r >= 0)
                        r = exchange(db, req, len, on_row, &w);
                if (r >= 0 && !w.got)
                        r = -EPROTO;
                if (remote_done(db, &r))
                        return r;
        }
        return store_get(db->store, id, ret, NULL, NULL, 0);
}

int admin_db_list(struct admin_db *db, store_list_cb cb, void *userdata) {
        struct rows w = { .device = cb, .userdata = userdata };
        int r;

        if (db->remote) {
                r = remote_walk(db, CONTROL_LIST, &w);
                if (remote_done(db, &r))
                        return r;
        }
        return store_list(db->store, cb, userdata);
}

int admin_db_aggregate_list(struct admin_db *db, store_aggregate_cb cb, void *userdata) {
        struct rows w = { .aggregate = cb, .userdata = userdata };
        int r;

        if (db->remote) {
                r = remote_walk(db, CONTROL_STATS, &w);
                if (remote_done(db, &r))
                        return r;
        }
        return store_aggregate_list(db->store, cb, userdata);
}

int admin_db_audit_list(struct admin_db *db, const char *id, int64_t since, audit_row_cb cb, void *userdata) {
        struct rows w = { .audit = cb, .userdata = userdata };
        struct audit_relay a = { cb, userdata };
        uint8_t req[512];
        struct buf b;
        int r;

        if (db->remote) {
                buf_init(&b, req, sizeof req);
                if (request_head(db, &b, CONTROL_AUDIT) < 0 || control_put_string(&b, id ? id : "", SV_ID_MAX) < 0 ||
                    buf_put_u64(&b, (uint64_t) since) < 0)
                        return -EINVAL;
                r = exchange(db, req, b.len, on_row, &w);
                if (remote_done(db, &r))
                        return r;
        }
        return store_audit_list(db->store, id, since, audit_relay_row, &a);
}

int admin_db_status(struct admin_db *db, FILE *out) {
        struct rows w = { .text = out };

        if (!db->remote)
                return -ENOTCONN;
        return remote_walk(db, CONTROL_STATUS, &w);
}
