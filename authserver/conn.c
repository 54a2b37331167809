/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>

#include "authserver.h"
#include "control.h"
#include "crypto.h"
#include "aggregate.h"
#include "fault.h"
#include "randpool.h"
#include "vault.h"

static int io_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static void conn_on_frame(struct conn *c);
static void conn_lookup(struct conn *c);
static void on_pending_durable(struct write_record *w, int r);
static void on_commit_done(struct write_record *w, int r);
static void channel_start(struct conn *c);
static void channel_on_sink_message(struct sink_link *l, const struct sink_msg *m, void *userdata);
static void channel_on_sink_end(struct sink_link *l, const char *why, int err, void *userdata);
static void channel_pump(struct conn *c);
static void channel_close(struct conn *c, const char *why);

static int64_t mono_ms(void) {
        return (int64_t) (server_now_usec() / 1000);
}

static void vault_buffers_free(struct conn *c) {
        if (c->vault) {
                OPENSSL_cleanse(c->vault, c->vault_len);
                free(c->vault);
        }
        if (c->sealed_next) {
                OPENSSL_cleanse(c->sealed_next, STORE_SEALED_LEN(c->vault_len));
                free(c->sealed_next);
        }
        c->vault = c->sealed_next = NULL;
        c->vault_len = 0;
}

static void on_release_done(struct write_record *w, int r) {
        free(w);
}

/* c's session took the device's claim in the database (its pending write) and ends without
 * a commit: the claim is released by the next batch, so that the device's next attempt need
 * not wait for it to expire on another server. Called under shared.lock, before the device is
 * free in memory: a session of the device that claims it next queues its write after this. */
static void claim_release(struct conn *c) {
        struct write_record *w;

        if (!c->claimed || c->srv->queue.fatal)
                return;
        c->claimed = false;
        w = calloc(1, sizeof *w);
        if (!w)
                return;         /* the claim expires */
        *w = (struct write_record) { .action = WRITE_RELEASE, .epoch = c->hello.epoch, .done = on_release_done };
        snprintf(w->device_id, sizeof w->device_id, "%s", c->hello.device_id);
        queue_add(&c->srv->queue, w);
}

/* The shared back-off (store.h): c's failure, or with reset its success, counted in the
 * database by the next batch, for every server of it. Not durable, like the claim release. */
static void db_backoff_queue(struct conn *c, bool reset) {
        struct write_record *w;

        if (!c->db_backoff_on || c->srv->queue.fatal || (reset && !c->db_backoff.present))
                return;
        w = calloc(1, sizeof *w);
        if (!w)
                return;         /* the failure is counted in memory only */
        *w = (struct write_record) { .action = WRITE_BACKOFF, .backoff_reset = reset, .done = on_release_done };
        /* (Set from a valid M1 on: the attempts the database counts are those in-memory
         * counts under all three keys.) */
        memcpy(w->backoff_keys, c->db_backoff.key, sizeof w->backoff_keys);
        w->n_backoff_keys = _STORE_BACKOFF_KEYS;
        snprintf(w->device_id, sizeof w->device_id, "%s", c->hello.device_id);
        queue_add(&c->srv->queue, w);
}

/* c gives its device up (its session is over, or it ends); c->superseded says whether the
 * device's next session had taken it over already. commit, if given, is c's commit: it is
 * queued before the device is free, in the same section, so that a session of the device on
 * another worker that claims it next queues its pending vault after this commit (on one loop
 * nothing could come between the two; across workers a pending vault of the old epoch
 * queued first would replace the one this commit promotes). */
static void inflight_remove(struct conn *c, struct write_record *commit) {
        struct shared *sh = c->srv->sh;
        struct inflight *e = c->owns;

        if (!e) {
                if (commit) {
                        commit->superseded = c->superseded;
                        queue_add(&c->srv->queue, commit);
                }
                return;
        }
        pthread_mutex_lock(&sh->lock);
        c->superseded = e->superseded;
        if (commit) {
                commit->superseded = e->superseded;
                queue_add(&c->srv->queue, commit);
        } else
                claim_release(c);
        if (e->linked)
                LIST_REMOVE(inflight, &sh->inflight, e);
        e->linked = false;
        pthread_mutex_unlock(&sh->lock);
        c->owns = NULL;
        free(e);
}

/* c sent M4 and waits for M5: from now on the device's next session may take over. */
static void inflight_await_m5(struct conn *c) {
        struct shared *sh = c->srv->sh;

        if (!c->owns)
                return;
        pthread_mutex_lock(&sh->lock);
        c->owns->awaiting_m5 = true;
        pthread_mutex_unlock(&sh->lock);
}

/*
 * Two sessions of one device must never both reach M4: the later pending vault would
 * replace the earlier one and strand whichever device copy committed first. The first
 * session past M3 owns the device until it ends; a second one gets ERROR 2 and changes
 * nothing. (The store's compare-and-set on the epoch guards the commit itself.)
 */
static bool inflight_claim(struct conn *c) {
        struct shared *sh = c->srv->sh;
        struct inflight *o, *e = calloc(1, sizeof *e);
        bool ok = true;

        if (!e)
                return false;
        snprintf(e->device_id, sizeof e->device_id, "%s", c->hello.device_id);
        e->epoch = c->hello.epoch;
        /* Shared by the workers: two sessions of one device on two threads are two entries here. */
        pthread_mutex_lock(&sh->lock);
        LIST_FOREACH(inflight, o, &sh->inflight) {
                if (strcmp(o->device_id, c->hello.device_id) != 0)
                        continue;
                /* The device already moved to the vault that session stored and proved it with
                 * this M3: that session's M5 is in flight or lost, and it is done. Its owner
                 * learns so from the entry (inflight_remove()). */
                if (o->awaiting_m5 && c->gen == GENERATION_PENDING && c->hello.epoch == o->epoch + 1) {
                        LIST_REMOVE(inflight, &sh->inflight, o);
                        o->linked = false;
                        o->superseded = true;
                        c->took_over = true;
                        break;
                }
                ok = false;
                break;
        }
        if (ok) {
                LIST_PREPEND(inflight, &sh->inflight, e);
                e->linked = true;
        }
        pthread_mutex_unlock(&sh->lock);
        if (!ok) {
                free(e);
                return false;
        }
        c->owns = e;
        return true;
}

/* Unread input makes close() send a reset, which can destroy an ERROR we just sent before
 * the peer reads it: consume what has already arrived (bounded), then close. */
static void close_drained(int fd) {
        uint8_t sink[4096];

        for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
                ;
        close(fd);
}

/*
 * The per-address limit (max-connections-per-address) counts the connections of one
 * network that have not yet proven a device, so that one party cannot hold every slot of
 * max-connections by connecting and sending nothing. A network is an IPv4 /24 or an IPv6
 * /48 (common/netprefix.h): counting per address, or per /64, let an attacker with a few
 * neighbouring addresses take a cap each. The table is keyed by a salted hash so that
 * chosen addresses cannot pile up in one bucket.
 */
int conn_addr_table_init(struct shared *sh, const struct config *cfg) {
        unsigned n = 256;

        if (cfg->max_per_address == 0)
                return 0;
        while (n < cfg->max_connections && n < 65536)
                n *= 2;
        sh->addr_buckets = calloc(n, sizeof *sh->addr_buckets);
        if (!sh->addr_buckets)
                return -ENOMEM;
        sh->n_addr_buckets = n;
        if (crypto_random(sh->addr_salt, sizeof sh->addr_salt) < 0)
                memset(sh->addr_salt, 0x5a, sizeof sh->addr_salt);
        return 0;
}

void conn_addr_table_free(struct shared *sh) {
        for (unsigned i = 0; i < sh->n_addr_buckets; i++)
                while (sh->addr_buckets[i]) {
                        struct conn_addr *a = sh->addr_buckets[i];

                        sh->addr_buckets[i] = a->next;
                        free(a);
                }
        free(sh->addr_buckets);
        sh->addr_buckets = NULL;
        sh->n_addr_buckets = 0;
}

/* The keyed hash is computed before the table's lock is taken. */
static struct conn_addr **conn_addr_bucket(struct shared *sh, const struct netprefix *prefix) {
        uint8_t digest[32];
        uint32_t h = 0;

        if (crypto_hmac_sha256(sh->addr_salt, sizeof sh->addr_salt, prefix->key, sizeof prefix->key, digest) >= 0)
                h = (uint32_t) digest[0] << 24 | (uint32_t) digest[1] << 16 | (uint32_t) digest[2] << 8 | digest[3];
        return &sh->addr_buckets[h & (sh->n_addr_buckets - 1)];
}

/* Counts c against its network (every worker's connections count); -EBUSY if the network is
 * at its limit. */
static int conn_addr_take(struct conn *c, const struct netprefix *prefix) {
        struct shared *sh = c->srv->sh;
        struct conn_addr **bucket, *a, *fresh;
        int r = 0;

        if (!sh->addr_buckets || c->srv->cfg->max_per_address == 0)
                return 0;
        bucket = conn_addr_bucket(sh, prefix);
        fresh = calloc(1, sizeof *fresh);
        pthread_mutex_lock(&sh->lock);
        for (a = *bucket; a; a = a->next)
                if (memcmp(a->prefix.key, prefix->key, sizeof prefix->key) == 0)
                        break;
        if (a && a->count >= c->srv->cfg->max_per_address)
                r = -EBUSY;
        else if (!a && !fresh)
                r = -ENOMEM;
        else if (!a) {
                a = fresh;
                fresh = NULL;
                a->prefix = *prefix;
                a->next = *bucket;
                *bucket = a;
        }
        if (r >= 0) {
                a->count++;
                c->addr = a;
        }
        pthread_mutex_unlock(&sh->lock);
        free(fresh);
        return r;
}

/* c no longer counts against its address: it proved a device (M3), or it ends. */
static void conn_addr_release(struct conn *c) {
        struct shared *sh = c->srv->sh;
        struct conn_addr *a = c->addr, **bucket;

        if (!a)
                return;
        c->addr = NULL;
        bucket = conn_addr_bucket(sh, &a->prefix);
        pthread_mutex_lock(&sh->lock);
        if (--a->count > 0)
                a = NULL;
        else
                for (struct conn_addr **p = bucket; *p; p = &(*p)->next)
                        if (*p == a) {
                                *p = a->next;
                                break;
                        }
        pthread_mutex_unlock(&sh->lock);
        free(a);
}

static void hello_queue_remove(struct conn *c) {
        if (LIST_LINKED(hello, &c->srv->hellos, c))
                LIST_REMOVE(hello, &c->srv->hellos, c);
}

void conn_free(struct conn *c) {
        struct server *srv = c->srv;

        inflight_remove(c, NULL);
        hello_queue_remove(c);
        conn_addr_release(c);
        queue_cancel(&srv->queue, &c->write);

        LIST_REMOVE(all, &srv->conns, c);
        __atomic_fetch_sub(&srv->sh->n_conns, 1, __ATOMIC_RELAXED);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->delay);
        /* After the peer's end of file nothing unread is left: no recv() to drain it. */
        if (c->fd >= 0 && c->rx_eof)
                close(c->fd);
        else if (c->fd >= 0)
                close_drained(c->fd);
        /* Without CLOSE or CUT first, the application reads end of file: a cut channel. */
        sink_link_close(&c->sink);
        vault_buffers_free(c);
        hs_server_wipe(&c->hs);
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
        srv->on_conn_closed(srv);
}

static const char *device_label(const struct conn *c) {
        return c->hello_valid ? c->hello.device_id : "-";
}

/* One line per handshake outcome; never a secret, never sent to the peer. A peer that proved
 * no device could otherwise write lines as fast as it connects: its lines are rate-limited
 * per outcome, and the next line that passes says how many were left out. */
static void conn_log_outcome(struct conn *c, bool ok, const char *result, const char *detail) {
        struct server *srv = c->srv;
        uint64_t epoch = c->hello_valid ? c->hello.epoch : 0;
        unsigned suppressed = 0;
        /* The same facts as journal fields, for `journalctl DEVICE_ID=...` and the like. */
        const struct log_field fields[] = {
                { "DEVICE_ID", c->hello_valid ? c->hello.device_id : NULL },
                { "PEER", c->peer },
                { "OUTCOME", result },
        };
        size_t n = sizeof fields / sizeof fields[0];

        stats_outcome(srv->sh->stats, ok, result, ok && c->gen == GENERATION_PENDING, c->took_over,
                      c->hello_valid ? c->hello.device_id : NULL, c->peer);
        if (ok) {
                shared_count(&srv->sh->n_ok);
                log_struct_errno(LOG_INFO, 0, fields, n, "handshake device='%s' peer=%s result=%s epoch=%" PRIu64,
                                 device_label(c), c->peer, result, epoch + 1);
                return;
        }
        shared_count(&srv->sh->n_failed);
        if (!c->verified && !upkeep_log_pass(srv, result, &suppressed))
                return;
        if (suppressed)
                log_struct_errno(LOG_NOTICE, 0, fields, n, "handshake device='%s' peer=%s result=%s reason='%s' epoch=%"
                                 PRIu64 " (%u more '%s' lines left out)", device_label(c), c->peer, result,
                                 detail ? detail : "-", epoch, suppressed, result);
        else
                log_struct_errno(LOG_NOTICE, 0, fields, n, "handshake device='%s' peer=%s result=%s reason='%s' epoch=%"
                                 PRIu64, device_label(c), c->peer, result, detail ? detail : "-", epoch);
}

/* The audit row joins the next group commit, like the commits' own rows (queue.c). */
static void conn_audit(struct conn *c, bool ok, const char *result) {
        uint64_t epoch = c->hello_valid ? c->hello.epoch : 0;

        /* After a failed sync the server only ends its handshakes and exits (queue.c). */
        if (c->srv->queue.fatal)
                return;
        queue_audit(&c->srv->queue, (int64_t) time(NULL), c->hello_valid ? c->hello.device_id : NULL, c->peer,
                    result, ok ? epoch + 1 : epoch);
}

/* The log line and the audit record of a handshake that ends now: a row for a proven device,
 * a count for a peer that proved none (written as a summary row, upkeep.c). */
static void conn_outcome(struct conn *c, bool ok, const char *result, const char *detail) {
        conn_log_outcome(c, ok, result, detail);
        if (ok || c->verified)
                conn_audit(c, ok, result);
        else
                upkeep_failure(c->srv, result);
}

static void conn_failure(struct conn *c, const char *result, const char *detail) {
        int64_t now = mono_ms();

        /* Silence until the M1 time-out guesses nothing: the network's cap and that time-out
         * bound what it costs, and counting it would let idle neighbours throttle a device. */
        /* The back-off table is the workers' (a device's attempts may land on any of them). */
        pthread_mutex_lock(&c->srv->sh->lock);
        if (!c->hello_expired)
                backoff_failure(c->srv->sh->backoff, c->peer_key, now);
        if (c->hello_valid) {
                backoff_failure(c->srv->sh->backoff, c->id_peer_key, now);
                backoff_failure(c->srv->sh->backoff, c->id_key, now);
        }
        pthread_mutex_unlock(&c->srv->sh->lock);
        db_backoff_queue(c, false);
        if (c->hello_valid) {
                /* In memory: a write here would be one per attempt, and for known ids only. */
                if (c->known)
                        upkeep_device_failure(c->srv, c->hello.device_id, (int64_t) time(NULL));
        }
        conn_outcome(c, false, result, detail);
}

/*
 * The io source's events, kept in step with sd-event's without asking it (each change is an
 * epoll_ctl). Edge-triggered throughout; two flags say what the kernel was last told:
 *
 *   io_out  rx_event  events watched       meaning
 *   false   false     EPOLLIN              idle or reading a frame; nothing was missed
 *   false   true      EPOLLIN              input came while no frame was expected: the edge
 *                                          is spent, conn_expect_input() re-arms it
 *   true    any       EPOLLOUT             a frame is half sent; conn_flush() goes back to
 *                                          EPOLLIN when it is out, which re-arms the input
 *                                          edge too, so rx_event is cleared there
 *
 * Whoever reads the socket to EAGAIN itself (channel_answer(), the M5 hand-over) clears
 * rx_event: nothing it could report is left. tests/authserver/syscalls.test pins the counts.
 */
static int conn_flush(struct conn *c) {
        while (c->out_pos < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        int r;

                        if (c->io_out)
                                return 0;
                        r = sd_event_source_set_io_events(c->io, EPOLLOUT | EPOLLET);
                        if (r >= 0)
                                c->io_out = true;
                        return r;
                }
                if (n <= 0)
                        return -EPIPE;
                c->out_pos += (size_t) n;
        }
        c->out_len = c->out_pos = 0;
        if (c->phase == CONN_CLOSING)
                return -ECONNRESET;     /* done: the caller closes */
        if (!c->io_out)
                return 0;               /* the events are EPOLLIN already: no epoll_ctl */
        c->io_out = false;
        /* Re-arming the edge also reports input that arrived while only EPOLLOUT was watched. */
        c->rx_event = false;
        return sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLET);
}

/*
 * A frame is expected again. The io source stays on in every phase (turning it off and on
 * again cost three epoll_ctl calls each time); input that arrived while no frame was
 * expected set rx_event, and only then is the edge re-armed, which reports it again.
 */
static int conn_expect_input(struct conn *c) {
        if (!c->rx_event || c->io_out)
                return 0;
        c->rx_event = false;
        return sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLET);
}

/* Queues a frame and tries to send it at once; on any transport failure the connection ends. */
static void conn_send(struct conn *c, const uint8_t *frame, size_t len) {
        memcpy(c->out, frame, len);
        c->out_len = len;
        c->out_pos = 0;
        if (conn_flush(c) < 0)
                conn_free(c);
}

/*
 * Ends a handshake with ERROR: the frame leaves first, the bookkeeping (back-off, counts, the
 * log line) follows. Whatever the server does about a failure thus adds nothing to the time
 * the peer measures to its ERROR, whether the id is enrolled or not. failure: a failure of
 * the peer (back-off), not only an outcome (busy, throttled).
 */
static void conn_reject(struct conn *c, int err, bool failure, const char *result, const char *detail) {
        int r = -EIO;

        c->phase = CONN_CLOSING;
        if (wire_encode_error(wire_error_code(err), c->out, sizeof c->out, &c->out_len) >= 0) {
                c->out_pos = 0;
                r = conn_flush(c);
        }
        if (failure)
                conn_failure(c, result, detail);
        else
                conn_outcome(c, false, result, detail);
        if (r < 0)
                conn_free(c);
}

/* The handshake's draws (R1, C1, T2, the X25519 scalar) from the loop thread's pool: one
 * RAND_bytes() per many handshakes instead of one per draw (randpool.h). */
static int pool_bytes(void *userdata, enum hs_value what, uint8_t *out, size_t len) {
        return randpool_bytes(out, len);
}

static int pool_draw(void *userdata, void *out, size_t len) {
        return randpool_bytes(out, len);
}

static int pool_challenge(void *userdata, enum hs_value what, uint16_t n, uint8_t p,
                          const struct challenge *avoid, struct challenge *ret) {
        return challenge_generate_from(ret, n, p, avoid, pool_draw, NULL);
}

static const struct hs_random hs_random_pool = {
        .bytes = pool_bytes,
        .challenge = pool_challenge,
};

static int handshake_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct conn *c = userdata;

        /* After M5 the same timer bounds the silence between records (§11). An answer does not
         * re-arm it (that was a timerfd_settime per record): it notes the time, and the timer,
         * when it fires early, moves on to the deadline that time gives. */
        if (c->phase == CONN_CHANNEL || c->phase == CONN_AGGREGATING || c->phase == CONN_SINKING) {
                int64_t due = c->idle_since_ms + (int64_t) c->srv->cfg->channel_idle_ms;

                if (mono_ms() < due) {
                        int r = sd_event_source_set_time(c->timer, (uint64_t) due * 1000);

                        if (r >= 0)
                                r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
                        if (r >= 0)
                                return 0;
                }
        }
        if (c->phase == CONN_CHANNEL) {
                channel_close(c, "idle");
                return 0;
        }
        if (c->phase == CONN_STORING || c->phase == CONN_COMMITTING || c->phase == CONN_AGGREGATING ||
            c->phase == CONN_SINKING) {
                /* The group commit (or the sink's answer, within its own deadline) owns it until
                 * the write is done; it ends it then. */
                c->expired = true;
                return 0;
        }
        if (c->phase == CONN_CLOSING) {
                /* Its outcome is already counted; only its last frame did not get out. */
                conn_free(c);
                return 0;
        }
        c->hello_expired = c->phase == CONN_READ_M1;
        conn_failure(c, "timeout", c->hello_expired ? "no M1 in time" : "handshake did not complete in time");
        conn_free(c);
        return 0;
}

static int backoff_done(sd_event_source *s, uint64_t usec, void *userdata) {
        struct conn *c = userdata;

        c->delay = sd_event_source_disable_unref(c->delay);
        conn_lookup(c);
        return 0;
}

static void peer_describe(const struct sockaddr_storage *ss, const struct netprefix *prefix, struct conn *c) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) ss;

                inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
                port = ntohs(in->sin_port);
                snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) ss;

                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                port = ntohs(in6->sin6_port);
                snprintf(c->peer, sizeof c->peer, "[%s]:%u", host, port);
        } else
                snprintf(c->peer, sizeof c->peer, "unknown");
        if (netprefix_format(prefix, c->net, sizeof c->net) < 0)
                snprintf(c->net, sizeof c->net, "unknown");
        snprintf(c->peer_key, sizeof c->peer_key, "peer:%s", c->net);
}

/* Over capacity: ERROR 3 and close. The M1 that may have arrived is read (and ignored), else
 * close() would answer it with a reset that can destroy the ERROR before the device reads it. */
static int conn_refuse(struct server *srv, int fd) {
        uint8_t frame[SV_ERROR_FRAME_LEN];
        size_t len;

        if (wire_encode_error(SV_ERR_BUSY, frame, sizeof frame, &len) >= 0)
                (void) send(fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        close_drained(fd);
        shared_count(&srv->sh->n_rejected);
        return -EBUSY;
}

/*
 * The table is full: the oldest connection that has not sent M1 makes room, rather than the
 * new one being turned away. A device sends M1 at once, so the oldest silent connection is the
 * one most likely idle; a flood of them can then only cycle through the table, never hold it
 * against a device that connects and speaks. Connections past M1 are not evicted: their
 * network's cap and the handshake time-out bound them.
 */
static void conn_evict(struct conn *c) {
        shared_count(&c->srv->sh->n_evicted);
        conn_free(c);
}

int conn_accept(struct server *srv, int fd, const struct sockaddr_storage *peer, socklen_t ss_len, bool nodelay) {
        struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
        struct netprefix prefix = { { 0 } };
        struct conn *c;
        uint64_t first_deadline_ms;
        int one = 1, r;

        if (srv->draining)
                return conn_refuse(srv, fd);
        if (ss_len > 0)
                memcpy(&ss, peer, ss_len);
        /* Another family (none over TCP) keeps the zero prefix: all such peers count as one network. */
        (void) netprefix_from_sockaddr((const struct sockaddr *) &ss, ss_len, &prefix);
        c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->srv = srv;
        c->fd = fd;
        sink_link_init(&c->sink);
        c->phase = CONN_READ_M1;
        c->expect_type = SV_MSG_HELLO;
        c->expect_len = 0;
        c->start_ms = mono_ms();
        /* The network's cap first: a connection that will be turned away evicts nobody. */
        r = conn_addr_take(c, &prefix);
        /* max-connections counts every worker's: the slot is taken first (fetch_add), so that
         * workers accepting at once cannot all pass a check of the same count; over the cap the
         * oldest idle one of this worker makes room (another worker's are not touched: with
         * workers the table may be full of others'), else the slot is given back. */
        if (r >= 0 && __atomic_fetch_add(&srv->sh->n_conns, 1, __ATOMIC_RELAXED) >= srv->cfg->max_connections) {
                if (srv->hellos.first)
                        conn_evict(srv->hellos.first);
                else {
                        __atomic_fetch_sub(&srv->sh->n_conns, 1, __ATOMIC_RELAXED);
                        conn_addr_release(c);
                        r = -EBUSY;
                }
        }
        if (r < 0) {
                free(c);
                if (r == -EBUSY)
                        return conn_refuse(srv, fd);
                close(fd);
                return r;
        }
        peer_describe(&ss, &prefix, c);
        if (!nodelay)
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        hs_server_init(&c->hs, &hs_random_pool, srv->cfg->decoy_n, srv->cfg->decoy_p);

        LIST_PREPEND(all, &srv->conns, c);          /* its slot in n_conns is taken above */
        /* Connections that have not sent M1 yet, oldest first: the first to go when the table is full. */
        LIST_APPEND(hello, &srv->hellos, c);

        /* Edge-triggered: sd-event dispatches one source per iteration, and level-triggered
         * sockets that stay readable would make every iteration re-report all of them
         * (quadratic when thousands of idle connections close at once). Every read drains to
         * EAGAIN or to the end of the expected frame; a peer that sends more than one frame
         * ahead simply waits for its time-out.
         * The timer first gives M1 its own, short time (on_hello() extends it to the handshake's). */
        first_deadline_ms = srv->cfg->hello_timeout_ms < srv->cfg->timeout_ms ? srv->cfg->hello_timeout_ms
                                                                               : srv->cfg->timeout_ms;
        r = sd_event_add_io(srv->event, &c->io, fd, EPOLLIN | EPOLLET, io_handler, c);
        if (r >= 0)
                r = sd_event_add_time_relative(srv->event, &c->timer, CLOCK_MONOTONIC, first_deadline_ms * 1000, 0,
                                               handshake_timeout, c);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch connection from %s: %m", c->peer);
                conn_free(c);
                return r;
        }
        return 0;
}

/* One recv() into c->in, up to `want` bytes in all: 1 if bytes arrived, 0 if none are there
 * yet, -ECONNRESET if the peer closed or the connection failed. */
static int conn_recv(struct conn *c, size_t want) {
        ssize_t n;

        do
                n = recv(c->fd, c->in + c->in_len, want - c->in_len, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n == 0)
                c->rx_eof = true;
        if (n <= 0)
                return -ECONNRESET;
        c->in_len += (size_t) n;
        return 1;
}

/*
 * Reads at most up to the end of the current frame: the header first, checked before the body.
 * Where the frame's exact size is known before its header (M3, M5), the first recv() asks for
 * all of it, which saves one recvfrom per message: a peer's frame of any other size is refused
 * by the header check all the same, and only bytes of that refused frame can have been read.
 */
static int conn_read(struct conn *c) {
        for (;;) {
                size_t want = c->expect_len > 0 ? SV_HEADER_LEN + c->expect_len : SV_HEADER_LEN;
                int r;

                if (c->in_len >= SV_HEADER_LEN) {
                        size_t lo = c->expect_len, hi = c->expect_len;
                        struct wire_header h;

                        r = wire_header_decode(c->in, c->in_len, &h);
                        if (r < 0)
                                return r;
                        /* Type and exact size are known before the body: check them first (§3).
                         * M1's exact size depends on its id: any M1 size of the profile table. */
                        if (h.type != c->expect_type)
                                return -EPROTO;
                        if (lo == 0 && wire_body_len_range(SV_MSG_HELLO, &lo, &hi) < 0)
                                return -EBADMSG;
                        if (h.length < lo || h.length > hi)
                                return -EBADMSG;
                        want = SV_HEADER_LEN + (size_t) h.length;
                        if (c->in_len == want)
                                return 1;
                }
                r = conn_recv(c, want);
                if (r <= 0)
                        return r;
        }
}

static int io_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct conn *c = userdata;
        int r;

        /* A closing connection waits only for its last frame to leave, or for the peer to go. */
        if (revents & EPOLLOUT || (c->phase == CONN_CLOSING && revents & (EPOLLERR | EPOLLHUP))) {
                if (conn_flush(c) < 0) {
                        conn_free(c);
                        return 0;
                }
                /* An answer of the data channel is out: the next record may be read. */
                if (c->phase != CONN_CHANNEL)
                        return 0;
        }
        if (c->phase == CONN_CHANNEL) {
                channel_pump(c);
                return 0;
        }
        if (c->phase != CONN_READ_M1 && c->phase != CONN_READ_M3 && c->phase != CONN_READ_M5) {
                /* Nothing is expected now: the peer sent early, or hung up. Edge-triggered,
                 * this is not reported again: conn_expect_input() re-arms it when a frame is. */
                c->rx_event = true;
                return 0;
        }
        r = conn_read(c);
        if (r == 0)
                return 0;
        if (r == -ECONNRESET) {
                if (c->phase == CONN_READ_M5)
                        conn_failure(c, "no-commit", "connection closed before M5");
                else if (c->hello_valid)
                        conn_failure(c, "aborted", "connection closed mid-handshake");
                conn_free(c);
                return 0;
        }
        if (r < 0) {
                conn_reject(c, r, true, c->phase == CONN_READ_M3 && c->gen == GENERATION_DECOY ? "decoy" : "protocol",
                            c->phase == CONN_READ_M3 && c->gen == GENERATION_DECOY ? c->reason : "bad frame header");
                return 0;
        }
        conn_on_frame(c);
        return 0;
}

/* The buffers of the vault in use (the device's or a decoy's) and of the next one. */
static int vault_buffers_alloc(struct conn *c, size_t len) {
        c->vault = malloc(len);
        c->sealed_next = malloc(STORE_SEALED_LEN(len));
        if (!c->vault || !c->sealed_next) {
                vault_buffers_free(c);
                return -ENOMEM;
        }
        c->vault_len = len;
        return 0;
}

/*
 * The shape of the decoy that answers this M1 (protocol §6). A device that is active and of
 * M1's profile answers with its own shape (M1 named an epoch it does not hold): the same
 * shape its real M2s show. Any other id takes the shape its keyed hash picks from the
 * enrolled fleet (upkeep.c keeps the table), the same one at every attempt.
 *
 * The main thread replaces the table (and frees its sealed decoys) under the write lock, so
 * the shape and its sealed decoy vault are copied (into sealed, cap bytes) under the read
 * lock, held for that copy only: the decoy is opened after it is released.
 */
static int decoy_copy(struct conn *c, bool have_row, uint64_t h, struct decoy_shape *ret, uint8_t *sealed,
                      size_t cap, size_t *ret_len) {
        struct server *srv = c->srv;
        const struct decoy_shape *s = NULL;
        struct decoy_shape fallback;
        size_t len;
        int r = 0;

        pthread_rwlock_rdlock(&srv->sh->decoy_lock);
        if (have_row && c->dev.status == STORE_ACTIVE && c->dev.profile == c->hello.profile)
                s = decoy_shape_find(&srv->sh->decoys, c->dev.profile, c->dev.n, c->dev.m, c->dev.p);
        if (!s) {
                fallback = srv->sh->decoy_fallback;
                fallback.profile = c->hello.profile;
                s = decoy_shape_pick(&srv->sh->decoys, c->hello.profile, h, &fallback);
        }
        len = STORE_SEALED_LEN((size_t) s->n * s->m);
        if (!s->sealed || len > cap)
                r = -EINVAL;            /* not reached: upkeep seals every shape, cap fits any */
        else {
                *ret = *s;
                memcpy(sealed, s->sealed, len);
                ret->sealed = sealed;
        }
        pthread_rwlock_unlock(&srv->sh->decoy_lock);
        if (r >= 0)
                *ret_len = len;
        return r;
}

/*
 * The shared back-off the lookup read (store.h): the failures on every server of the
 * database. The in-memory wait was served before the lookup, on the same rules (on_hello());
 * what the database adds is waited here, once, and the row read again after it (another
 * session may have moved it meanwhile). True if c waits or was turned away.
 */
static bool db_backoff_wait(struct conn *c) {
        struct server *srv = c->srv;
        int64_t now = mono_ms(), budget, wait, id_wait;
        int r;

        if (!c->db_backoff_on || c->db_backoff_waited)
                return false;
        budget = (int64_t) srv->cfg->timeout_ms / 2 - (now - c->start_ms);
        wait = c->db_backoff.wait_ms;
        if (wait > 0 && wait > budget) {
                conn_reject(c, -EBUSY, false, "throttled", "back-off of the servers longer than the time-out allows");
                return true;
        }
        id_wait = c->db_backoff.id_wait_ms < BACKOFF_ID_MAX_MS ? c->db_backoff.id_wait_ms : BACKOFF_ID_MAX_MS;
        if (id_wait > budget)
                id_wait = budget > 0 ? budget : 0;
        if (id_wait > wait)
                wait = id_wait;
        if (wait <= 0)
                return false;
        c->db_backoff_waited = true;
        c->phase = CONN_BACKOFF;
        r = sd_event_add_time_relative(srv->event, &c->delay, CLOCK_MONOTONIC, (uint64_t) wait * 1000, 1000,
                                       backoff_done, c);
        if (r < 0)
                conn_free(c);
        return true;
}

/*
 * M1 -> M2. Whether the id is enrolled or not, the server does the same work in the same
 * order before M2 leaves: one keyed hash of the id, one row lookup, and one decryption of a
 * vault of the shape it answers with: the device's generation, or a decoy vault sealed
 * under the master key (so that timing does not tell enrolled ids from unknown ones).
 */
static void conn_lookup(struct conn *c) {
        struct server *srv = c->srv;
        uint8_t *blob = srv->scratch;
        size_t blob_len = 0;
        struct vault_params params = { 0 };
        struct decoy_shape decoy;
        const struct decoy_shape *shape;
        int64_t stand_in = 0;
        uint64_t h = 0;
        bool have_row;
        uint8_t frame[SV_FRAME_MAX];
        size_t len;
        int r;

        /* The decoy table is read under its read lock, held only while what this M1 needs of it
         * is copied (here the stand-in's row number, the decoy below), never across the
         * lookup: a slow database would hold up the main thread's swap of the table (the
         * writer), and behind it every other worker's M1. */
        r = store_decoy_hash(srv->store, c->hello.device_id, &h);
        if (r >= 0) {
                /* Should the id not be enrolled, the row of a device of its decoy's shape is read. */
                pthread_rwlock_rdlock(&srv->sh->decoy_lock);
                shape = decoy_shape_pick(&srv->sh->decoys, c->hello.profile, h, srv->sh->decoys.shapes);
                uint64_t t0 = server_now_usec();

                stand_in = shape ? shape->stand_in : 0;
                pthread_rwlock_unlock(&srv->sh->decoy_lock);
                r = store_lookup_sealed(srv->store, c->hello.device_id, c->hello.epoch, stand_in,
                                        c->db_backoff_on && !c->db_backoff_waited ? &c->db_backoff : NULL,
                                        &c->dev, blob, 2 * (size_t) SV_VAULT_MAX, &blob_len);
                stats_store_latency(srv->sh->stats, server_now_usec() - t0);
                /* An id that is not enrolled waits the same: its keys were read on the stand-in's row. */
                if ((r >= 0 || r == -ENOENT || r == -EBADMSG) && db_backoff_wait(c)) {
                        OPENSSL_cleanse(blob, blob_len);
                        return;
                }
        }
        if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                log_error("Failed to look up device '%s': %s", c->hello.device_id, store_last_error(srv->store));
                conn_reject(c, -EBUSY, false, "server-error", "database lookup failed");
                return;
        }
        have_row = r >= 0;
        c->known = r >= 0 || r == -EBADMSG;
        if (r == -EBADMSG) {
                /* Still a decoy, not an ERROR: the answer to M1 never says the id exists. */
                log_error("Failed to load the vault of '%s': %s", c->hello.device_id, store_last_error(srv->store));
                c->gen = GENERATION_DECOY;
                c->reason = "vault unavailable";
        } else
                c->gen = generation_choose(have_row ? &c->dev : NULL, &c->hello, &c->reason);
        if (c->gen != GENERATION_DECOY) {
                size_t vlen = (size_t) c->dev.n * c->dev.m;

                r = blob_len ? vault_buffers_alloc(c, vlen) : -EBADMSG;
                if (r >= 0)
                        r = store_open_vault(srv->store, c->hello.device_id, c->hello.epoch, blob, blob_len,
                                             c->vault, vlen);
                if (r < 0) {
                        log_error("Failed to load the vault of '%s': %s", c->hello.device_id,
                                  r == -ENOMEM ? "out of memory" : store_last_error(srv->store));
                        vault_buffers_free(c);
                        c->gen = GENERATION_DECOY;
                        c->reason = "vault unavailable";
                } else {
                        params.profile = c->dev.profile;
                        params.n = c->dev.n;
                        params.m = c->dev.m;
                        params.p = c->dev.p;
                        params.kex = c->dev.kex;        /* §10: M2 has a share only if the device's kex has one */
                        params.epoch = c->hello.epoch;
                        (void) vault_params_set_id(&params, c->hello.device_id);
                        r = hs_server_challenge(&c->hs, &params, c->vault, frame, sizeof frame, &len);
                }
        }
        if (c->gen == GENERATION_DECOY) {
                /* The looked-up blob is done with: the sealed decoy takes its place. */
                OPENSSL_cleanse(blob, blob_len);
                blob_len = 0;
                r = decoy_copy(c, have_row, h, &decoy, blob, 2 * (size_t) SV_VAULT_MAX, &blob_len);
                if (r >= 0) {
                        params.profile = decoy.profile;
                        params.n = decoy.n;
                        params.m = decoy.m;
                        params.p = decoy.p;
                        r = vault_buffers_alloc(c, (size_t) decoy.n * decoy.m);
                }
                if (r >= 0)
                        r = store_decoy_open(srv->store, decoy.sealed, c->vault_len, c->vault);
                if (r >= 0)
                        r = hs_server_challenge_decoy(&c->hs, &params, c->vault, frame, sizeof frame, &len);
        }
        OPENSSL_cleanse(blob, blob_len);
        if (r < 0) {
                log_error_errno(r, "Failed to build a challenge for '%s': %m", c->hello.device_id);
                conn_reject(c, -EBUSY, false, "server-error", "challenge failed");
                return;
        }
        c->expect_type = SV_MSG_RESPONSE;
        c->expect_len = vault_body_len(SV_MSG_RESPONSE, &c->hs.params);     /* valid: challenged */
        c->phase = CONN_READ_M3;
        if (conn_expect_input(c) < 0) {
                conn_free(c);
                return;
        }
        conn_send(c, frame, len);
}

/* M1 is in: the handshake's own deadline replaces M1's shorter one. */
static int conn_extend_deadline(struct conn *c) {
        struct server *srv = c->srv;
        int r;

        hello_queue_remove(c);
        if (srv->cfg->hello_timeout_ms >= srv->cfg->timeout_ms)
                return 0;
        r = sd_event_source_set_time(c->timer, (uint64_t) (c->start_ms + (int64_t) srv->cfg->timeout_ms) * 1000);
        return r < 0 ? r : sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/*
 * Back-off after failures (protocol §7). The device id travels in clear, so a count of the
 * id's failures alone would let anyone who knows it lock the real device out by failing on
 * purpose. Three counts instead, each with its own purpose:
 *  - the peer's network ("peer:NET"): guessing from one network, whatever the ids;
 *  - the id from that network ("idnet:ID@NET"): guessing one id from one network;
 *  - the id from anywhere ("id:ID"): the pace of a guesser spread over many networks.
 * The first two may turn an attempt away (ERROR 3) when their wait does not fit in the
 * time-out; they only ever hold back the failing network, and a device that shares it.
 * The third never turns an attempt away and delays it by at most BACKOFF_ID_MAX_MS: an
 * attacker elsewhere can slow the device by that much, never deny it, while the id's
 * guesses from all networks together still wait their turn. A verified handshake clears
 * all three.
 */
static void on_hello(struct conn *c, const uint8_t *frame, size_t frame_len) {
        struct server *srv = c->srv;
        int64_t now = mono_ms(), budget, wait, id_wait;
        int r;

        r = conn_extend_deadline(c);
        if (r < 0) {
                log_warning_errno(r, "Failed to extend the deadline of %s: %m", c->peer);
                conn_free(c);
                return;
        }
        r = hs_server_hello(&c->hs, frame, frame_len, &c->hello);
        if (r < 0) {
                conn_reject(c, r, true, "protocol", "malformed M1");
                return;
        }
        c->hello_valid = true;

        snprintf(c->id_key, sizeof c->id_key, "id:%s", c->hello.device_id);
        snprintf(c->id_peer_key, sizeof c->id_peer_key, "idnet:%s@%s", c->hello.device_id, c->net);
        c->db_backoff_on = srv->sh->db_backoff &&
                store_backoff_hash(srv->store, c->peer_key, &c->db_backoff.key[STORE_BACKOFF_NET]) >= 0 &&
                store_backoff_hash(srv->store, c->id_peer_key, &c->db_backoff.key[STORE_BACKOFF_ID_NET]) >= 0 &&
                store_backoff_hash(srv->store, c->id_key, &c->db_backoff.key[STORE_BACKOFF_ID]) >= 0;
        /* One section of the workers' shared table: the waits read and the reservations made
         * together, so that parallel attempts on two workers are spread out too. */
        pthread_mutex_lock(&srv->sh->lock);
        wait = backoff_wait(srv->sh->backoff, c->peer_key, now);
        id_wait = backoff_wait(srv->sh->backoff, c->id_peer_key, now);
        if (id_wait > wait)
                wait = id_wait;
        /* The wait must leave half the time-out for the rest of the handshake. A longer one
         * is not shortened (that would cap the back-off at half the time-out whatever
         * BACKOFF_MAX_MS says): the attempt is turned away now, as busy, and takes no slot. */
        budget = (int64_t) srv->cfg->timeout_ms / 2 - (now - c->start_ms);
        if (wait > 0 && wait > budget) {
                pthread_mutex_unlock(&srv->sh->lock);
                conn_reject(c, -EBUSY, false, "throttled", "back-off longer than the time-out allows");
                return;
        }
        id_wait = backoff_wait(srv->sh->backoff, c->id_key, now);
        if (id_wait > BACKOFF_ID_MAX_MS)
                id_wait = BACKOFF_ID_MAX_MS;
        if (id_wait > budget)
                id_wait = budget > 0 ? budget : 0;
        if (id_wait > wait)
                wait = id_wait;
        backoff_reserve(srv->sh->backoff, c->peer_key, now + wait, INT64_MAX);
        backoff_reserve(srv->sh->backoff, c->id_peer_key, now + wait, INT64_MAX);
        backoff_reserve(srv->sh->backoff, c->id_key, now + wait, now + BACKOFF_ID_MAX_MS);
        pthread_mutex_unlock(&srv->sh->lock);
        if (wait > 0) {
                c->phase = CONN_BACKOFF;
                /* 1 ms accuracy: sd-event's default of 250 ms would swamp a 25 ms back-off. */
                r = sd_event_add_time_relative(srv->event, &c->delay, CLOCK_MONOTONIC, (uint64_t) wait * 1000, 1000,
                                               backoff_done, c);
                if (r < 0)
                        conn_free(c);
                return;
        }
        conn_lookup(c);
}

/* The write the group commit does for c: it names the device row as the lookup read it. */
static void write_record_init(struct conn *c, enum write_action action,
                              void (*done)(struct write_record *w, int r)) {
        c->write = (struct write_record) {
                .action = action,
                .enrollment = c->dev.enrollment,
                .epoch = c->hello.epoch,
                .done = done,
                .userdata = c,
        };
        snprintf(c->write.device_id, sizeof c->write.device_id, "%s", c->hello.device_id);
}

static void on_response(struct conn *c, const uint8_t *m3, size_t m3_len) {
        struct server *srv = c->srv;
        uint8_t *next = srv->scratch;   /* the plaintext next vault, for as long as sealing it takes */
        uint8_t frame[SV_FRAME_MAX];
        size_t len;
        int r, rs = 0;

        r = hs_server_respond(&c->hs, m3, m3_len, next, frame, sizeof frame, &len);
        if (r >= 0)
                rs = store_seal_next(srv->store, c->hello.device_id, c->hello.epoch, next, c->vault_len,
                                     c->sealed_next);
        OPENSSL_cleanse(next, c->vault_len);
        if (r < 0) {
                conn_reject(c, r, true, c->gen == GENERATION_DECOY ? "decoy" : "auth-failed",
                            c->gen == GENERATION_DECOY ? c->reason : r == -EACCES ? "M3 did not verify" : "malformed M3");
                return;
        }
        /* The peer holds the vault: from here on its outcomes are audited row by row. */
        c->verified = true;
        if (rs < 0) {
                log_error("Failed to seal the next vault of '%s': %s", c->hello.device_id, store_last_error(srv->store));
                conn_reject(c, -EBUSY, true, "server-error", "sealing the next vault failed");
                return;
        }
        if (!inflight_claim(c)) {
                conn_reject(c, -EACCES, true, "conflict", "another session of this device is in progress");
                return;
        }
        /* The device is proven: it no longer counts against its address's limit. */
        conn_addr_release(c);
        /* M4 waits until the next vault is durable: the group commit sends it. */
        memcpy(c->out, frame, len);
        c->out_len = len;
        c->out_pos = 0;
        c->phase = CONN_STORING;
        write_record_init(c, WRITE_PENDING, on_pending_durable);
        c->write.promote = c->gen == GENERATION_PENDING;
        c->write.sealed = c->sealed_next;
        c->write.sealed_len = STORE_SEALED_LEN(c->vault_len);
        queue_add(&srv->queue, &c->write);
}

/* The group commit made the next vault durable (r >= 0), or failed to: M4, or ERROR. */
static void on_pending_durable(struct write_record *w, int r) {
        struct conn *c = w->userdata;

        c->claimed = r >= 0;
        if (c->expired) {
                conn_failure(c, "timeout", "handshake did not complete in time");
                conn_free(c);
                return;
        }
        if (r < 0) {
                c->out_len = 0;
                conn_reject(c, r == -ESTALE ? -EACCES : -EBUSY, true, r == -ESTALE ? "conflict" : "server-error",
                            r == -ESTALE ? "another session moved the epoch" : "storing the next vault failed");
                return;
        }
        fault_crash("after-pending");
        c->phase = CONN_READ_M5;
        inflight_await_m5(c);
        c->expect_type = SV_MSG_COMMIT;
        c->expect_len = vault_body_len(SV_MSG_COMMIT, &c->hs.params);
        if (conn_expect_input(c) < 0 || conn_flush(c) < 0)
                conn_free(c);
}

static void on_commit(struct conn *c, const uint8_t *m5, size_t m5_len) {
        int r;

        r = hs_server_commit(&c->hs, m5, m5_len);
        if (r < 0) {
                conn_failure(c, "auth-failed", "M5 did not verify");
                conn_free(c);
                return;
        }
        /* The commit and its audit row join the next group commit; they need no fsync (§6).
         * The session is over for the device: its next one may start (and is queued after).
         * The commit resets the device's failure count: so go the ones not yet written. */
        upkeep_device_success(c->srv, c->hello.device_id);
        c->phase = CONN_COMMITTING;
        write_record_init(c, WRITE_COMMIT, on_commit_done);
        snprintf(c->write.peer, sizeof c->write.peer, "%s", c->peer);
        inflight_remove(c, &c->write);
}

/* The group commit wrote this session's commit (and its audit row), or failed to. */
static void on_commit_done(struct write_record *w, int r) {
        struct conn *c = w->userdata;
        struct server *srv = c->srv;

        if (r < 0) {
                /* The store's message is on the writer's connection, and the writer logged it:
                 * srv->store's last error is this loop's, of another call. */
                if (r == -ESTALE)
                        log_warning("Failed to commit '%s': another session moved the epoch", c->hello.device_id);
                else
                        log_warning_errno(r, "Failed to commit '%s': %m", c->hello.device_id);
                conn_outcome(c, false, r == -ESTALE ? "conflict" : "server-error",
                             r == -ESTALE ? "commit lost a race" : "writing the commit failed");
                conn_free(c);
                return;
        }
        fault_crash("after-commit");
        pthread_mutex_lock(&srv->sh->lock);
        backoff_success(srv->sh->backoff, c->peer_key);
        backoff_success(srv->sh->backoff, c->id_peer_key);
        backoff_success(srv->sh->backoff, c->id_key);
        pthread_mutex_unlock(&srv->sh->lock);
        db_backoff_queue(c, true);
        conn_log_outcome(c, true, "ok", NULL);
        /* The handshake is over; the connection stays open for records (§11) unless it ran
         * out of time or the server is stopping. */
        if (c->expired || srv->draining || srv->queue.fatal) {
                conn_free(c);
                return;
        }
        channel_start(c);
}

/*
 * The data channel (protocol §11), from the moment the commit of a verified M5 is written:
 * nothing a peer sends is read as a record before. Records are handled one at a time: a
 * DATA record's aggregate is written by the group commit, durably, and answered when it is;
 * only then is the next record read, so answers leave in order and a device cannot queue
 * more than one write. A record that fails in any way ends the connection at once, with no
 * ERROR and no reply; CLOSE is answered with CLOSE. The connection keeps its slot in
 * max-connections; it no longer counts against its network (it proved a device at M3).
 */
static void channel_log(struct conn *c, int level, const char *result, int err) {
        const struct log_field fields[] = {
                { "DEVICE_ID", c->hello.device_id },
                { "PEER", c->peer },
                { "OUTCOME", result },
        };

        size_t n = sizeof fields / sizeof fields[0];

        if (err)
                log_struct_errno(level, err, fields, n, "channel device='%s' peer=%s result=%s records=%u: %m",
                                 c->hello.device_id, c->peer, result, c->n_records);
        else
                log_struct_errno(level, 0, fields, n, "channel device='%s' peer=%s result=%s records=%u",
                                 c->hello.device_id, c->peer, result, c->n_records);
}

/* The silence allowed until the next record starts now (the timer follows lazily). */
static int channel_arm_idle(struct conn *c) {
        int r = sd_event_source_set_time_relative(c->timer, (uint64_t) c->srv->cfg->channel_idle_ms * 1000);

        c->idle_since_ms = mono_ms();
        return r < 0 ? r : sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* Seals one record after what the output already holds. */
static int channel_seal(struct conn *c, uint8_t type, const void *payload, size_t len) {
        size_t n;
        int r;

        if (c->out_pos != 0)
                return -EBUSY;  /* never while a frame is half sent: answers wait for it */
        r = record_seal(&c->tx, type, payload, len, c->out + c->out_len, sizeof c->out - c->out_len, &n);
        if (r >= 0)
                c->out_len += n;
        return r;
}

/* The sink hears how the channel ended (docs/sink.md): CLOSE if the device closed it, CUT
 * with the reason otherwise; best effort, the link ends here either way. */
static void channel_sink_finish(struct conn *c, const char *why) {
        uint8_t pkt[SINK_HEADER_LEN + SINK_REASON_MAX];
        int n;

        if (!sink_link_open(&c->sink))
                return;
        n = strcmp(why, "closed") == 0 ? sink_encode_close(pkt, sizeof pkt) : sink_encode_cut(why, pkt, sizeof pkt);
        if (n >= 0)
                (void) sink_link_send(&c->sink, pkt, (size_t) n);
        sink_link_close(&c->sink);
}

/* CLOSE to the device, then the connection ends once it is out (or the peer is gone). */
static void channel_close_as(struct conn *c, int level, const char *why, int err) {
        int r;

        channel_log(c, level, why, err);
        channel_sink_finish(c, why);
        c->phase = CONN_CLOSING;
        r = channel_seal(c, SV_MSG_CLOSE, NULL, 0);
        if (r < 0 || conn_flush(c) < 0)
                conn_free(c);
}

static void channel_close(struct conn *c, const char *why) {
        channel_close_as(c, LOG_INFO, why, 0);
}

/* The sink failed this channel (its link is closed already): a warning, CLOSE to the device. */
static void channel_close_sink(struct conn *c, const char *why, int err) {
        channel_close_as(c, LOG_WARNING, why, err);
}

/* A bad record, a cut channel: the connection ends now, with nothing sent (§11). */
static void channel_end(struct conn *c, const char *result, int err) {
        channel_log(c, LOG_NOTICE, result, err);
        channel_sink_finish(c, result);
        conn_free(c);
}

static void channel_start(struct conn *c) {
        const struct config *cfg = c->srv->cfg;
        uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN];
        uint8_t session[SINK_PACKET_MAX];
        int r, n = 0;

        r = hs_server_channel_secrets(&c->hs, c2s, s2c);
        if (r >= 0) {
                record_init(&c->rx, c2s);
                record_init(&c->tx, s2c);
        }
        OPENSSL_cleanse(c2s, sizeof c2s);
        OPENSSL_cleanse(s2c, sizeof s2c);
        /* The sink's SESSION, built while the handshake still holds the session key. */
        if (r >= 0 && cfg->sink_path) {
                n = sink_encode_session(c->hello.kex, c->hello.epoch, c->hello.session_id, c->hello.device_id,
                                        cfg->sink_keys ? hs_server_session_key(&c->hs) : NULL,
                                        session, sizeof session);
                if (n < 0)
                        r = n;
        }
        /* The handshake's secrets and both vault generations are no longer needed. */
        hs_server_wipe(&c->hs);
        vault_buffers_free(c);
        c->phase = CONN_CHANNEL;
        c->in_len = 0;
        if (r >= 0)
                r = channel_arm_idle(c);
        if (r < 0) {
                OPENSSL_cleanse(session, sizeof session);
                log_warning_errno(r, "Failed to open the data channel of %s: %m", c->peer);
                conn_free(c);
                return;
        }
        if (cfg->sink_path) {
                r = sink_link_connect(&c->sink, c->srv->event, cfg->sink_path, channel_on_sink_message,
                                      channel_on_sink_end, c);
                if (r >= 0)
                        r = sink_link_send(&c->sink, session, (size_t) n);
                OPENSSL_cleanse(session, sizeof session);
                if (r < 0) {
                        /* No application to hand the channel to: the device hears CLOSE now. */
                        sink_link_close(&c->sink);
                        channel_close_sink(c, "sink-absent", r);
                        return;
                }
        }
        /* Records may have arrived with M5 or since: read them now, the edge is past. */
        c->rx_event = false;
        channel_pump(c);
}

/* An answer (one DATA record), and CLOSE too when a bound is reached. true: c waits for its
 * next record with nothing left to send, the caller reads it; false: c is closing, waits for
 * its output to drain (io_handler reads on), or was freed. */
static bool channel_answer(struct conn *c, const void *line, size_t len) {
        struct server *srv = c->srv;
        const char *why = NULL;
        int r;

        r = channel_seal(c, SV_MSG_DATA, line, len);
        if (r < 0) {
                channel_end(c, "server-error", r);
                return false;
        }
        if (c->n_records >= srv->cfg->max_records)
                why = "record-limit";
        else if (c->expired)
                why = "idle";
        else if (srv->draining)
                why = "stopping";
        if (why) {
                channel_close(c, why);
                return false;
        }
        c->phase = CONN_CHANNEL;
        c->idle_since_ms = mono_ms();
        /* The caller reads on (to EAGAIN or a whole record): what arrived meanwhile included. */
        c->rx_event = false;
        r = conn_flush(c);
        if (r < 0) {
                conn_free(c);
                return false;
        }
        return c->out_len == 0;
}

static void on_aggregate_done(struct write_record *w, int r) {
        struct conn *c = w->userdata;
        char line[AGGREGATE_LINE_MAX];
        int n;

        if (c->srv->queue.fatal) {
                conn_free(c);
                return;
        }
        n = r >= 0 ? aggregate_format(&w->agg, line, sizeof line) : aggregate_format_error(r, line, sizeof line);
        if (n < 0)
                n = aggregate_format_error(n, line, sizeof line);
        if (n < 0) {
                channel_end(c, "server-error", n);
                return;
        }
        if (channel_answer(c, line, (size_t) n))
                channel_pump(c);
}

/* The sink answered (conn.c set this on the link). */
static void channel_on_sink_message(struct sink_link *l, const struct sink_msg *m, void *userdata) {
        struct conn *c = userdata;

        if (m->type == SINK_MSG_CLOSE && (c->phase == CONN_CHANNEL || c->phase == CONN_SINKING)) {
                sink_link_close(&c->sink);
                channel_close(c, "sink-closed");
                return;
        }
        if (m->type != SINK_MSG_DATA || c->phase != CONN_SINKING || m->seq != c->n_records) {
                /* An answer nobody asked for, or to another record: it is a broken sink. */
                sink_link_close(&c->sink);
                if (c->phase == CONN_CHANNEL || c->phase == CONN_SINKING)
                        channel_close_sink(c, "sink-garbage", -EBADMSG);
                return;
        }
        if (channel_answer(c, m->payload, m->payload_len))
                channel_pump(c);
}

/* The link failed ("sink-gone", "sink-garbage", "sink-timeout"), and is closed already. */
static void channel_on_sink_end(struct sink_link *l, const char *why, int err, void *userdata) {
        struct conn *c = userdata;

        if (c->phase == CONN_CHANNEL || c->phase == CONN_SINKING)
                channel_close_sink(c, why, err);
}

/* A DATA record's payload to the sink; its answer comes to channel_on_sink_message(). */
static bool channel_to_sink(struct conn *c, uint8_t *payload, size_t len) {
        uint8_t pkt[SINK_PACKET_MAX];
        int n, r;

        n = sink_encode_data(c->n_records, payload, len, pkt, sizeof pkt);
        OPENSSL_cleanse(payload, len);
        r = n < 0 ? n : sink_link_send(&c->sink, pkt, (size_t) n);
        OPENSSL_cleanse(pkt, sizeof pkt);
        if (r >= 0)
                r = sink_link_expect(&c->sink, c->srv->cfg->sink_timeout_ms);
        if (r < 0) {
                /* A sink that has not read what it had, or is gone: this channel ends. */
                sink_link_close(&c->sink);
                channel_close_sink(c, r == -EAGAIN ? "sink-timeout" : "sink-gone", r);
                return false;
        }
        c->phase = CONN_SINKING;
        return false;
}

/* One whole record is in c->in. true: the next one may be read now (see channel_answer()). */
static bool channel_on_record(struct conn *c) {
        struct server *srv = c->srv;
        uint8_t payload[RECORD_PAYLOAD_MAX];
        char line[AGGREGATE_LINE_MAX];
        size_t len = 0;
        int r, n;

        r = record_open(&c->rx, c->in, c->in_len, payload, sizeof payload, &len);
        OPENSSL_cleanse(c->in, c->in_len);
        c->in_len = 0;
        if (r < 0) {
                channel_end(c, "bad-record", r);
                return false;
        }
        if (r == SV_MSG_CLOSE) {
                channel_close(c, "closed");
                return false;
        }
        c->n_records++;
        if (srv->cfg->sink_path)
                return channel_to_sink(c, payload, len);
        c->write = (struct write_record) { .action = WRITE_AGGREGATE, .done = on_aggregate_done, .userdata = c };
        snprintf(c->write.device_id, sizeof c->write.device_id, "%s", c->hello.device_id);
        r = aggregate_parse(payload, len, c->write.name, &c->write.value);
        OPENSSL_cleanse(payload, len);
        if (r < 0) {
                /* Not NAME=NUMBER: an error line, the channel stays open. */
                n = aggregate_format_error(r, line, sizeof line);
                if (n < 0) {
                        channel_end(c, "server-error", n);
                        return false;
                }
                return channel_answer(c, line, (size_t) n);
        }
        /* queue_add() may run the batch at once, and its done() the next records: return after. */
        c->phase = CONN_AGGREGATING;
        queue_add(&srv->queue, &c->write);
        return false;
}

/* Reads up to the end of one record: its header first, checked before the body is read. */
static int channel_read(struct conn *c) {
        for (;;) {
                size_t want = SV_HEADER_LEN;
                int r;

                if (c->in_len >= SV_HEADER_LEN) {
                        r = record_header_check(c->in, c->in_len, &want);
                        if (r < 0)
                                return r;
                        if (c->in_len == want)
                                return 1;
                }
                r = conn_recv(c, want);
                if (r <= 0)
                        return r;
        }
}

/* Reads and handles records while the channel waits for one and nothing is left to send. */
static void channel_pump(struct conn *c) {
        for (;;) {
                int r = channel_read(c);

                if (r == 0)
                        return;
                if (r == -ECONNRESET) {
                        /* The device may end the connection after M5 as it always could: a
                         * channel it never used. One it used and did not CLOSE was cut (§11). */
                        if (c->n_records == 0 && c->in_len == 0) {
                                conn_free(c);
                                return;
                        }
                        channel_end(c, "cut", 0);
                        return;
                }
                if (r < 0) {
                        channel_end(c, "bad-record", r);
                        return;
                }
                /* false: c may be freed, touch it no more. */
                if (!channel_on_record(c))
                        return;
        }
}

void conn_drain(struct server *srv) {
        struct conn *c, *next;

        LIST_FOREACH_SAFE(all, c, next, &srv->conns)
                if (c->phase == CONN_CHANNEL)
                        channel_close(c, "stopping");
}

static void conn_on_frame(struct conn *c) {
        uint8_t frame[SV_FRAME_MAX];
        size_t len = c->in_len;

        /* The handler may free c: hand it a copy and clear the input first. */
        memcpy(frame, c->in, len);
        c->in_len = 0;
        switch (c->phase) {
        case CONN_READ_M1:
                on_hello(c, frame, len);
                break;
        case CONN_READ_M3:
                on_response(c, frame, len);
                break;
        case CONN_READ_M5:
                on_commit(c, frame, len);
                break;
        default:
                break;
        }
        OPENSSL_cleanse(frame, sizeof frame);
}
