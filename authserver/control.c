/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authserver.h"
#include "control.h"

/*
 * The control socket (docs/control.md): a thread of its own, so that a slow or stuck admin
 * client never holds a worker; one request per connection, answered from the thread's own
 * store handle (writes go through the store's transactions like an admin command's, beside
 * the group commit's writer). Who may talk to it is decided from the kernel's peer
 * credentials before a byte is read: root, or a member of control-group.
 */

struct control {
        const struct config *cfg;
        struct shared *sh;
        struct store *store;
        int fd, lock_fd;
        struct acceptor acceptor;
        gid_t gid;
        bool has_gid;
        char path[sizeof ((struct sockaddr_un *) NULL)->sun_path];
        bool started;
        uint8_t *req;                   /* CONTROL_REQUEST_MAX: may hold a vault, wiped after each */
};

/* Root, or the admin group as the peer's primary or a supplementary group (SO_PEERGROUPS). */
static bool peer_allowed(const struct control *ctl, int fd, struct ucred *ret_cred) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        gid_t groups[256];

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        *ret_cred = cred;
        if (cred.uid == 0)
                return true;
        if (!ctl->has_gid)
                return false;
        if (cred.gid == ctl->gid)
                return true;
        len = sizeof groups;
        /* More than 256 groups: ERANGE, refused (the primary group was checked). */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof groups[0]; i++)
                if (groups[i] == ctl->gid)
                        return true;
        return false;
}

static int send_end(int fd, int result, const char *message) {
        uint8_t frame[1 + 4 + CONTROL_MESSAGE_MAX];
        size_t n = message ? strnlen(message, CONTROL_MESSAGE_MAX) : 0;
        uint32_t v = (uint32_t) result;

        frame[0] = CONTROL_FRAME_END;
        frame[1] = (uint8_t) (v >> 24);
        frame[2] = (uint8_t) (v >> 16);
        frame[3] = (uint8_t) (v >> 8);
        frame[4] = (uint8_t) v;
        if (n)
                memcpy(frame + 5, message, n);
        return control_send_frame(fd, frame, 5 + n);
}

struct walk {
        int fd;
        int error;                      /* of the socket: the walk stops */
};

static int send_row(struct walk *w, uint8_t type, int (*put)(struct buf *, const void *), const void *row) {
        uint8_t frame[1024];
        struct buf b;
        int r;

        buf_init(&b, frame, sizeof frame);
        if (buf_put_u8(&b, type) < 0 || put(&b, row) < 0)
                return -ENOBUFS;
        r = control_send_frame(w->fd, frame, b.len);
        if (r < 0)
                w->error = r;
        return r;
}

static int put_device(struct buf *b, const void *row) { return control_put_device(b, row); }
static int put_aggregate(struct buf *b, const void *row) { return control_put_aggregate(b, row); }
static int put_audit(struct buf *b, const void *row) { return control_put_audit(b, row); }

static int list_cb(const struct store_device *d, void *userdata) {
        return send_row(userdata, CONTROL_FRAME_DEVICE, put_device, d);
}

static int aggregate_cb(const struct aggregate *a, void *userdata) {
        return send_row(userdata, CONTROL_FRAME_AGGREGATE, put_aggregate, a);
}

static int audit_cb(const struct audit_row *a, void *userdata) {
        return send_row(userdata, CONTROL_FRAME_AUDIT, put_audit, a);
}

/* Text (status) in frames of at most CONTROL_FRAME_MAX - 1 bytes. */
static int send_text(int fd, const char *text, size_t len) {
        uint8_t frame[4096];

        while (len > 0) {
                size_t n = len < sizeof frame - 1 ? len : sizeof frame - 1;
                int r;

                frame[0] = CONTROL_FRAME_TEXT;
                memcpy(frame + 1, text, n);
                r = control_send_frame(fd, frame, n + 1);
                if (r < 0)
                        return r;
                text += n;
                len -= n;
        }
        return 0;
}

static int do_status(struct control *ctl, int fd) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        int r;

        if (!f)
                return send_end(fd, -ENOMEM, "out of memory");
        r = stats_status(ctl->sh->stats, __atomic_load_n(&ctl->sh->n_conns, __ATOMIC_RELAXED), f);
        if (fclose(f) != 0 && r >= 0)
                r = -EIO;
        if (r >= 0)
                r = send_text(fd, text, len);
        free(text);
        return r < 0 ? r : send_end(fd, 0, NULL);
}

/* show: the row and, if this server saw one, the device's last handshake (a text frame). */
static int do_show(struct control *ctl, int fd, const char *id) {
        struct store_device d;
        struct walk w = { .fd = fd };
        char outcome[32], peer[64], line[256], when[32];
        int64_t t;
        int r;

        r = store_get(ctl->store, id, &d, NULL, NULL, 0);
        if (r < 0)
                return send_end(fd, r, store_last_error(ctl->store));
        r = send_row(&w, CONTROL_FRAME_DEVICE, put_device, &d);
        if (r < 0)
                return r;
        if (stats_last(ctl->sh->stats, id, &t, outcome, sizeof outcome, peer, sizeof peer) > 0) {
                time_t tt = (time_t) t;
                struct tm tm;

                if (!gmtime_r(&tt, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                        snprintf(when, sizeof when, "?");
                r = snprintf(line, sizeof line, "%s %s %s", when, outcome, peer);
                if (r > 0 && (r = send_text(fd, line, (size_t) r < sizeof line ? (size_t) r : sizeof line - 1)) < 0)
                        return r;
        }
        return send_end(fd, 0, NULL);
}

static int do_enroll(struct control *ctl, int fd, struct buf *b, const struct ucred *cred) {
        struct store_device d;
        const uint8_t *vault;
        uint32_t len;
        char who[64];
        int r;

        if (control_get_device(b, &d) < 0 || buf_get_u32(b, &len) < 0 || buf_get_ref(b, &vault, len) < 0 ||
            buf_expect_end(b) < 0)
                return send_end(fd, -EBADMSG, "malformed enroll request");
        if (!vault_device_id_valid(d.id, strlen(d.id)) || len != (uint32_t) d.n * d.m)
                return send_end(fd, -EINVAL, "invalid device id or vault length");
        r = store_enroll(ctl->store, &d, vault, len, (int64_t) time(NULL));
        if (r < 0)
                return send_end(fd, r, store_last_error(ctl->store));
        snprintf(who, sizeof who, "admin:uid=%u", (unsigned) cred->uid);
        (void) store_audit(ctl->store, (int64_t) time(NULL), d.id, who, "enrolled", 0);
        return send_end(fd, 0, NULL);
}

static int do_revoke(struct control *ctl, int fd, const char *id, const struct ucred *cred) {
        char who[64];
        int r;

        r = store_revoke(ctl->store, id);
        if (r < 0)
                return send_end(fd, r, store_last_error(ctl->store));
        snprintf(who, sizeof who, "admin:uid=%u", (unsigned) cred->uid);
        (void) store_audit(ctl->store, (int64_t) time(NULL), id, who, "revoked", 0);
        return send_end(fd, r, NULL);
}

/* Whether the client's database (its --db, "" for the default) is the one this server
 * serves: a client of another database opens its own. */
static bool same_db(const struct control *ctl, const char *db) {
        const char *mine = ctl->cfg->db_path ? ctl->cfg->db_path : AUTHSERVER_DEFAULT_DB;
        char a[4096], b[4096];

        if (!db[0])
                return true;
        if (store_path_is_postgresql(db) || store_path_is_postgresql(mine))
                return strcmp(db, mine) == 0;
        /* The client sends an absolute, canonical path (control-client.c): a relative one would
         * be resolved here, in the server's directory, and might name another file. */
        if (db[0] != '/')
                return false;
        return realpath(db, a) && realpath(mine, b) && strcmp(a, b) == 0;
}

static int handle(struct control *ctl, int fd, const struct ucred *cred) {
        struct buf b;
        struct walk w = { .fd = fd };
        char db[256], id[SV_ID_MAX + 1];
        uint8_t version, verb;
        size_t len;
        int64_t since;
        uint64_t v;
        int r;

        r = control_recv_frame(fd, ctl->req, CONTROL_REQUEST_MAX, CONTROL_REQUEST_MAX, &len);
        if (r < 0)
                return r;
        buf_reader(&b, ctl->req, len);
        if (buf_get_u8(&b, &version) < 0 || buf_get_u8(&b, &verb) < 0 || control_get_string(&b, db, sizeof db) < 0)
                return send_end(fd, -EBADMSG, "malformed request");
        if (version != CONTROL_VERSION)
                return send_end(fd, -EPROTONOSUPPORT, "unsupported control protocol version");
        if (!same_db(ctl, db))
                return send_end(fd, -EXDEV, "the server serves another database");
        switch (verb) {
        case CONTROL_LIST:
        case CONTROL_STATS:
                if (buf_expect_end(&b) < 0)
                        return send_end(fd, -EBADMSG, "malformed request");
                r = verb == CONTROL_LIST ? store_list(ctl->store, list_cb, &w)
                                         : store_aggregate_list(ctl->store, aggregate_cb, &w);
                if (w.error < 0)
                        return w.error;
                return send_end(fd, r < 0 ? r : 0, r < 0 ? store_last_error(ctl->store) : NULL);
        case CONTROL_SHOW:
        case CONTROL_REVOKE:
                if (control_get_string(&b, id, sizeof id) < 0 || buf_expect_end(&b) < 0 ||
                    !vault_device_id_valid(id, strlen(id)))
                        return send_end(fd, -EINVAL, "invalid device id");
                return verb == CONTROL_SHOW ? do_show(ctl, fd, id) : do_revoke(ctl, fd, id, cred);
        case CONTROL_ENROLL:
                return do_enroll(ctl, fd, &b, cred);
        case CONTROL_STATUS:
                if (buf_expect_end(&b) < 0)
                        return send_end(fd, -EBADMSG, "malformed request");
                return do_status(ctl, fd);
        case CONTROL_AUDIT:
                if (control_get_string(&b, id, sizeof id) < 0 || buf_get_u64(&b, &v) < 0 || buf_expect_end(&b) < 0 ||
                    (id[0] && !vault_device_id_valid(id, strlen(id))))
                        return send_end(fd, -EINVAL, "malformed audit request");
                since = (int64_t) v;
                r = store_audit_list(ctl->store, id[0] ? id : NULL, since, audit_relay_row,
                                     &(struct audit_relay) { audit_cb, &w });
                if (w.error < 0)
                        return w.error;
                return send_end(fd, r < 0 ? r : 0, r < 0 ? store_last_error(ctl->store) : NULL);
        default:
                return send_end(fd, -EOPNOTSUPP, "unknown request");
        }
}

static void serve_one(void *userdata, int fd) {
        struct control *ctl = userdata;
        struct ucred cred = { .pid = 0, .uid = (uid_t) -1 };
        int r;

        if (!peer_allowed(ctl, fd, &cred)) {
                /* One answer, nothing read: the peer learns it is refused, and why. */
                log_notice("control: refused connection from uid=%u pid=%d (not root, not in group '%s')",
                           (unsigned) cred.uid, (int) cred.pid,
                           ctl->cfg->control_group ? ctl->cfg->control_group : AUTHSERVER_DEFAULT_CONTROL_GROUP);
                (void) send_end(fd, -EACCES, "permission denied: root or the control group only");
                return;
        }
        r = handle(ctl, fd, &cred);
        OPENSSL_cleanse(ctl->req, CONTROL_REQUEST_MAX);
        if (r < 0)
                log_debug_errno(r, "control: request from uid=%u failed: %m", (unsigned) cred.uid);
}

/*
 * Whose the path is, is decided by a lock, not by probing: PATH.lock, flock()ed for the
 * server's life. Holding it, any socket at PATH is a dead server's and is replaced; without
 * it, another server lives there and we refuse (-EADDRINUSE) instead of removing its socket.
 * The socket inode is fchmod()ed to 0600 before bind(), which creates the file with that
 * mode (masked by the umask), so that it is never wider than that, with no umask() call
 * while other threads run; then opened to the group.
 */
static int bind_control(struct control *ctl) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char lock[sizeof ctl->path + 8];
        struct stat st;
        int r;

        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", ctl->path);
        snprintf(lock, sizeof lock, "%s.lock", ctl->path);
        ctl->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (ctl->lock_fd < 0)
                return -errno;
        if (flock(ctl->lock_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
        ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ctl->fd < 0)
                return -errno;
        if (lstat(ctl->path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(ctl->path) < 0 && errno != ENOENT)
                        return -errno;
        }
        if (fchmod(ctl->fd, 0600) < 0 || bind(ctl->fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        /* In a user namespace (PrivateUsers=) the group is not mapped: root's only then. */
        if (ctl->has_gid && chown(ctl->path, (uid_t) -1, ctl->gid) < 0) {
                log_warning_errno(errno, "Control socket: cannot give it to its group (%m): root's only");
                ctl->has_gid = false;
        }
        r = chmod(ctl->path, ctl->has_gid ? 0660 : 0600) < 0 ? -errno : 0;
        if (r >= 0 && listen(ctl->fd, 16) < 0)
                r = -errno;
        return r;
}

int control_start(const struct config *cfg, struct shared *sh, struct control **ret) {
        const char *path = cfg->control_path ? cfg->control_path : AUTHSERVER_DEFAULT_CONTROL;
        const char *group = cfg->control_group ? cfg->control_group : AUTHSERVER_DEFAULT_CONTROL_GROUP;
        struct control *ctl;
        struct group *gr;
        char dir[sizeof ctl->path], *slash;
        int r;

        *ret = NULL;
        if (strcmp(path, "none") == 0)
                return 0;
        /* The default lives in the service's RuntimeDirectory: without it, no control socket. */
        snprintf(dir, sizeof dir, "%s", path);
        slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        if (!cfg->control_path && access(dir[0] ? dir : "/", W_OK) < 0) {
                log_info("No control socket: %s is missing (admin verbs open the database)", dir);
                return 0;
        }
        ctl = calloc(1, sizeof *ctl);
        if (!ctl)
                return -ENOMEM;
        *ctl = (struct control) { .cfg = cfg, .sh = sh, .fd = -1, .lock_fd = -1, .acceptor.stop_fd = -1 };
        snprintf(ctl->path, sizeof ctl->path, "%s", path);
        gr = getgrnam(group);
        if (gr) {
                ctl->gid = gr->gr_gid;
                ctl->has_gid = true;
        } else
                log_warning("Control group '%s' does not exist: the control socket is root's only", group);
        ctl->req = malloc(CONTROL_REQUEST_MAX);
        if (!ctl->req) {
                r = -ENOMEM;
                goto fail;
        }
        r = config_open_store(cfg, 0, &ctl->store);
        if (r < 0)
                goto fail;
        r = bind_control(ctl);
        if (r == -EADDRINUSE) {
                log_error("Control socket '%s' belongs to another running authserver (it holds %s.lock): "
                          "give this one its own --control", path, path);
                goto fail;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to listen on control socket '%s': %m", path);
                goto fail;
        }
        /* One at a time: the requests share ctl->req and one store handle. Only root and the
         * group get past the peer check, and each holds the socket CONTROL_TIMEOUT_S at most. */
        r = acceptor_start(&ctl->acceptor, ctl->fd,
                           &(struct acceptor_limits) { .timeout_ms = CONTROL_TIMEOUT_S * 1000, .max_conns = 1 },
                           serve_one, ctl);
        if (r < 0) {
                log_error_errno(r, "Failed to start the control thread: %m");
                goto fail;
        }
        ctl->started = true;
        log_info("Control socket on %s (root and group '%s')", path, ctl->has_gid ? group : "-");
        *ret = ctl;
        return 0;
fail:
        control_stop(ctl);
        return r;
}

void control_stop(struct control *ctl) {
        if (!ctl)
                return;
        acceptor_stop(&ctl->acceptor);
        if (ctl->fd >= 0) {
                close(ctl->fd);
                if (ctl->started)
                        (void) unlink(ctl->path);
        }
        /* The lock file stays: removing it would let a third server lock a new file while a
         * second holds the old one. Closing releases the lock. */
        if (ctl->lock_fd >= 0)
                close(ctl->lock_fd);
        store_close(ctl->store);
        if (ctl->req)
                OPENSSL_cleanse(ctl->req, CONTROL_REQUEST_MAX);
        free(ctl->req);
        free(ctl);
}
