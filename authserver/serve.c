/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "common-options.h"
#include "fault.h"
#include "server.h"

/* Above this many queued writes the group commit runs at once instead of waiting for a quiet loop. */
#define FLUSH_BATCH_MAX 256
/* A busy loop may never be quiet: the group commit runs at the latest this long after its first
 * write was queued. Short next to one fsync, so batches are hardly smaller for it. */
#define FLUSH_DELAY_US  2000

/* The test-only faults (SV_FAULT, common/fault.h; docs/testing.md): the crash points of the
 * group commit and of the connections, and one failure. */
static const char *const fault_points[] = {
        "before-pending",       /* a batch is about to begin */
        "after-pending",        /* a pending vault is durable, its M4 not yet sent */
        "before-commit",        /* an M5 verified, its commit not yet written */
        "after-commit",         /* a commit is written, the session's outcome not yet logged */
        "fail-sync",            /* the batch's sync fails (fatal: the server exits 1) */
        NULL
};

/* One queued write: the pending vault of a verified M3, or the commit of a verified M5. */
static int write_one(struct server *srv, const struct write_record *w, bool *stored_pending) {
        int r;

        if (w->action == WRITE_COMMIT) {
                fault_crash("before-commit");
                /* M1 named the generation the session used; after M3 it is the committed one (§6). */
                r = store_commit(srv->store, w->device_id, w->enrollment, w->epoch, (int64_t) time(NULL));
                if (r == -ESTALE && w->superseded)
                        r = 0;  /* the device's next session already promoted this vault */
                if (r >= 0 && store_audit(srv->store, (int64_t) time(NULL), w->device_id, w->peer, "ok",
                                          w->epoch + 1) < 0)
                        log_warning("Failed to write audit row: %s", store_last_error(srv->store));
                return r;
        }
        *stored_pending = true;
        if (w->promote) {
                /* The device moved to the pending vault: it becomes committed first. A late M5 of
                 * the session that stored it may have committed it already. */
                r = store_promote_and_set_pending(srv->store, w->device_id, w->enrollment, w->epoch - 1,
                                                  w->vault, w->vault_len);
                if (r == -ESTALE)
                        r = store_set_pending(srv->store, w->device_id, w->enrollment, w->epoch, w->vault,
                                              w->vault_len);
        } else
                r = store_set_pending(srv->store, w->device_id, w->enrollment, w->epoch, w->vault, w->vault_len);
        return r;
}

/*
 * The group commit: every write queued since the last run (the pending vault of a verified
 * M3, the commit of a verified M5) is done in one transaction. If any stored a pending vault,
 * the transaction is made durable with one fsync before any M4 leaves (protocol §6: the
 * pending vault is on disk before M4); commits alone need no fsync. Running at idle priority
 * lets all ready connections join the batch first; a timer started by the first queued write
 * makes sure a flood of other events cannot starve it until the sessions time out.
 *
 * A failed sync is fatal. Linux marks the pages of a failed fsync clean, so a later sync
 * that succeeds may not have written them: a WAL frame could be missing on disk while this
 * process still reads it from the page cache, and an M4 sent after that would promise a
 * vault that a crash can lose. Only a fresh start, where SQLite recovers the WAL from what
 * is really on disk, is trustworthy again; systemd restarts the service.
 */
void server_flush(struct server *srv) {
        struct write_record *batch = srv->queue_head, *next;
        bool stored_pending = false;
        const char *why = NULL;
        int rb;

        (void) sd_event_source_set_enabled(srv->flush_src, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(srv->flush_timer, SD_EVENT_OFF);
        srv->queue_head = NULL;
        srv->queue_tail = &srv->queue_head;
        srv->queue_len = 0;
        if (!batch && !srv->upkeep_due)
                return;

        fault_crash("before-pending");
        rb = store_batch_begin(srv->store);
        /* The counts first: a commit in this batch resets a device's failures after them. */
        if (rb >= 0 && srv->upkeep_due)
                upkeep_write(srv, (int64_t) time(NULL));
        srv->upkeep_due = false;
        for (struct write_record *w = batch; w; w = w->queue_next) {
                w->result = rb < 0 ? rb : write_one(srv, w, &stored_pending);
                if (w->result < 0 && w->result != -ESTALE && rb >= 0)
                        log_warning("Failed to store for '%s': %s", w->device_id, store_last_error(srv->store));
        }
        if (rb >= 0) {
                rb = store_batch_commit(srv->store, stored_pending);
                if (rb >= 0 && stored_pending) {
                        srv->n_syncs++;
                        for (struct write_record *w = batch; w; w = w->queue_next)
                                srv->n_vault_writes += w->action == WRITE_PENDING && w->result >= 0;
                }
                if (rb >= 0 && stored_pending && fault_fail("fail-sync")) {
                        srv->n_syncs--;
                        rb = -EIO;
                        why = "injected fault";
                }
                if (rb == -EIO) {
                        /* Before the handshakes end, so that they write nothing more. */
                        srv->fatal = true;
                        log_error("Failed to make the batch durable: %s; exiting, the database is "
                                  "recovered from its write-ahead log at the next start",
                                  why ? why : store_last_error(srv->store));
                } else if (rb < 0)
                        log_error("Failed to commit the batch: %s", store_last_error(srv->store));
        } else
                log_error("Failed to begin a batch: %s", store_last_error(srv->store));

        for (struct write_record *w = batch; w; w = next) {
                next = w->queue_next;
                w->queue_next = NULL;
                w->queued = false;
                w->done(w, rb < 0 ? rb : w->result);
        }
        if (srv->fatal) {
                /* No new connections; the others are closed when the loop has ended. */
                listen_close(srv);
                (void) sd_event_exit(srv->event, -EIO);
        }
}

static int flush_handler(sd_event_source *s, void *userdata) {
        server_flush(userdata);
        return 0;
}

void server_queue_store(struct server *srv, struct write_record *w) {
        w->queue_next = NULL;
        w->queued = true;
        *srv->queue_tail = w;
        srv->queue_tail = &w->queue_next;
        srv->queue_len++;
        if (srv->queue_len >= FLUSH_BATCH_MAX) {
                server_flush(srv);
                return;
        }
        (void) sd_event_source_set_enabled(srv->flush_src, SD_EVENT_ONESHOT);
        if (srv->queue_len == 1 && sd_event_source_set_time_relative(srv->flush_timer, FLUSH_DELAY_US) >= 0)
                (void) sd_event_source_set_enabled(srv->flush_timer, SD_EVENT_ONESHOT);
}

void server_queue_cancel(struct server *srv, struct write_record *w) {
        if (!w->queued)
                return;
        for (struct write_record **p = &srv->queue_head; *p; p = &(*p)->queue_next)
                if (*p == w) {
                        *p = w->queue_next;
                        if (srv->queue_tail == &w->queue_next)
                                srv->queue_tail = p;
                        srv->queue_len--;
                        break;
                }
        w->queue_next = NULL;
        w->queued = false;
}

static int flush_timer_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        server_flush(userdata);
        return 0;
}

static void notify_status(struct server *srv) {
        (void) sd_notifyf(false, "STATUS=%u connections, %" PRIu64 " authenticated, %" PRIu64 " failed, %" PRIu64 " turned away%s",
                          srv->n_conns, srv->n_ok, srv->n_failed, srv->n_rejected, srv->draining ? ", draining" : "");
}

static int status_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        notify_status(userdata);
        (void) sd_event_source_set_time_relative(s, 1000000);
        return 0;
}

void server_maybe_exit(struct server *srv) {
        if (srv->draining && srv->n_conns == 0)
                (void) sd_event_exit(srv->event, 0);
}

static int drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct server *srv = userdata;

        log_notice("drain timeout: closing %u open handshake(s)", srv->n_conns);
        while (srv->conns)
                conn_free(srv->conns);
        return sd_event_exit(srv->event, 0);
}

static int signal_handler(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct server *srv = userdata;

        if (srv->draining)
                return 0;
        log_notice("received %s: no new connections, draining %u open handshake(s)",
                   strsignal((int) si->ssi_signo), srv->n_conns);
        (void) sd_notify(false, "STOPPING=1");
        srv->draining = true;
        listen_close(srv);
        notify_status(srv);
        if (srv->n_conns == 0)
                return sd_event_exit(srv->event, 0);
        return sd_event_add_time_relative(srv->event, NULL, CLOCK_MONOTONIC, AUTHSERVER_DRAIN_MS * 1000ULL, 0,
                                          drain_timeout, srv);
}

/* One descriptor per connection: lift the soft limit towards the hard one, as far as needed. */
static void raise_fd_limit(unsigned max_connections) {
        struct rlimit rl;
        rlim_t want = (rlim_t) max_connections + 64;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
                log_warning("Open-file limit %llu is below --max-connections %u: raise LimitNOFILE=",
                            (unsigned long long) rl.rlim_cur, max_connections);
}

static int parse_serve(struct config *c, int argc, char *argv[]) {
        enum { ARG_LISTEN = 0x200, ARG_TIMEOUT, ARG_MAX_CONN, ARG_MAX_PER_ADDR, ARG_HELLO_TIMEOUT,
               ARG_AUDIT_RETENTION };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "listen",          required_argument, NULL, ARG_LISTEN },
                { "timeout",         required_argument, NULL, ARG_TIMEOUT },
                { "hello-timeout",   required_argument, NULL, ARG_HELLO_TIMEOUT },
                { "max-connections", required_argument, NULL, ARG_MAX_CONN },
                { "max-connections-per-address", required_argument, NULL, ARG_MAX_PER_ADDR },
                { "audit-retention", required_argument, NULL, ARG_AUDIT_RETENTION },
                { 0 }
        };
        bool listen_from_cli = false;
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        printf("Usage: authserver serve [--listen ADDR:PORT]... [--db PATH] [--master-key FILE]\n"
                               "         [--timeout SECONDS] [--hello-timeout SECONDS] [--max-connections N]\n"
                               "         [--max-connections-per-address N] [--audit-retention AGE]\n"
                               "         [--config FILE]\n\n"
                               "Serve the secure-vault protocol. ADDR is an IPv4 address, [IPv6], a host name\n"
                               "or '*'; default " AUTHSERVER_DEFAULT_LISTEN ". Sockets passed by systemd take\n"
                               "precedence. Defaults: --timeout %d, --hello-timeout %d, --max-connections %d,\n"
                               "--max-connections-per-address %d (per IPv4 /24 or IPv6 /48; 0: no limit),\n"
                               "--audit-retention %d (days, or with a unit s, min, h, d; 0: keep the audit trail\n"
                               "forever).\n",
                               AUTHSERVER_DEFAULT_TIMEOUT_MS / 1000, AUTHSERVER_DEFAULT_HELLO_TIMEOUT_MS / 1000,
                               AUTHSERVER_DEFAULT_MAX_CONN, AUTHSERVER_DEFAULT_MAX_PER_ADDR,
                               AUTHSERVER_DEFAULT_AUDIT_RETENTION);
                        return 1;
                case ARG_LISTEN:
                        if (!listen_from_cli) {
                                /* The command line replaces the config file's addresses. */
                                for (unsigned i = 0; i < c->n_listen; i++)
                                        free(c->listen[i]);
                                c->n_listen = 0;
                                listen_from_cli = true;
                        }
                        if (config_set(c, "listen", optarg, "--listen") < 0)
                                return -EINVAL;
                        break;
                case ARG_TIMEOUT:
                        if (config_set(c, "timeout", optarg, "--timeout") < 0)
                                return -EINVAL;
                        break;
                case ARG_HELLO_TIMEOUT:
                        if (config_set(c, "hello-timeout", optarg, "--hello-timeout") < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_CONN:
                        if (config_set(c, "max-connections", optarg, "--max-connections") < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_PER_ADDR:
                        if (config_set(c, "max-connections-per-address", optarg, "--max-connections-per-address") < 0)
                                return -EINVAL;
                        break;
                case ARG_AUDIT_RETENTION:
                        if (config_set(c, "audit-retention", optarg, "--audit-retention") < 0)
                                return -EINVAL;
                        break;
                default:
                        if (common_option(c, opt, optarg) <= 0)
                                return -EINVAL;
                }
        if (optind != argc) {
                fprintf(stderr, "authserver: serve takes no arguments, got '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

int verb_serve(struct config *cfg, int argc, char *argv[]) {
        struct server srv = { .cfg = cfg };
        sigset_t mask;
        const char *bad = NULL;
        int r, ret = AS_EXIT_FAILURE;

        r = parse_serve(cfg, argc, argv);
        if (r != 0)
                return r > 0 ? AS_EXIT_OK : AS_EXIT_USAGE;
        srv.queue_tail = &srv.queue_head;
        r = fault_setup(fault_points, &bad);
        if (r == -EOPNOTSUPP) {
                log_error("SV_FAULT is set, but this authserver was built with --disable-fault-injection");
                return AS_EXIT_USAGE;
        }
        if (r < 0) {
                log_error("Invalid SV_FAULT '%s': expected one or more of before-pending, after-pending, "
                          "before-commit, after-commit, fail-sync", bad);
                return AS_EXIT_USAGE;
        }
        if (fault_armed())
                log_warning("SV_FAULT is set: test-only fault injection is active");
        raise_fd_limit(cfg->max_connections);
        srv.backoff = malloc(sizeof *srv.backoff);
        srv.scratch = malloc(2 * (size_t) SV_VAULT_MAX);
        if (!srv.backoff || !srv.scratch || conn_addr_table_init(&srv) < 0) {
                free(srv.backoff);
                free(srv.scratch);
                return AS_EXIT_FAILURE;
        }
        backoff_init(srv.backoff);

        if (config_open_store(cfg, 0, &srv.store) < 0) {
                ret = AS_EXIT_DATABASE;
                goto out;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&srv.event);
        if (r >= 0)
                r = sd_event_add_signal(srv.event, NULL, SIGTERM, signal_handler, &srv);
        if (r >= 0)
                r = sd_event_add_signal(srv.event, NULL, SIGINT, signal_handler, &srv);
        if (r >= 0)
                r = sd_event_add_defer(srv.event, &srv.flush_src, flush_handler, &srv);
        if (r >= 0)
                r = sd_event_source_set_priority(srv.flush_src, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(srv.flush_src, SD_EVENT_OFF);
        /* 0 accuracy: sd-event's default of 250 ms would make the deadline meaningless. */
        if (r >= 0)
                r = sd_event_add_time_relative(srv.event, &srv.flush_timer, CLOCK_MONOTONIC, FLUSH_DELAY_US, 0,
                                               flush_timer_handler, &srv);
        if (r >= 0)
                r = sd_event_source_set_priority(srv.flush_timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_enabled(srv.flush_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(srv.event, &srv.status_timer, CLOCK_MONOTONIC, 1000000, 0,
                                               status_handler, &srv);
        if (r >= 0)
                r = sd_event_source_set_enabled(srv.status_timer, SD_EVENT_ON);
        if (r < 0) {
                log_error("Failed to set up the event loop: %s", strerror(-r));
                goto out;
        }
        if (upkeep_init(&srv) < 0 || listen_open(&srv) < 0)
                goto out;

        (void) sd_notify(false, "READY=1");
        notify_status(&srv);
        log_info("authserver " PACKAGE_VERSION " ready: timeout %us, at most %u connections, %u per address",
                 cfg->timeout_ms / 1000, cfg->max_connections, cfg->max_per_address);
        r = sd_event_loop(srv.event);
        if (srv.fatal)
                goto out;       /* logged where it happened */
        if (r < 0) {
                log_error("Event loop failed: %s", strerror(-r));
                goto out;
        }
        /* The counts of the last interval. */
        srv.upkeep_due = true;
        server_flush(&srv);
        log_info("stopped: %" PRIu64 " authenticated, %" PRIu64 " failed; %" PRIu64 " connections turned away; "
                 "%" PRIu64 " idle connections evicted; %" PRIu64 " vault writes in %" PRIu64 " syncs",
                 srv.n_ok, srv.n_failed, srv.n_rejected, srv.n_evicted, srv.n_vault_writes, srv.n_syncs);
        ret = AS_EXIT_OK;
out:
        while (srv.conns)
                conn_free(srv.conns);
        listen_close(&srv);
        sd_event_source_disable_unref(srv.flush_src);
        sd_event_source_disable_unref(srv.flush_timer);
        sd_event_source_disable_unref(srv.status_timer);
        upkeep_free(&srv);
        sd_event_unref(srv.event);
        store_close(srv.store);
        free(srv.backoff);
        conn_addr_table_free(&srv);
        OPENSSL_cleanse(srv.scratch, 2 * (size_t) SV_VAULT_MAX);
        free(srv.scratch);
        return ret;
}
