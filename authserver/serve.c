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

#include "authserver.h"
#include "fault.h"

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

static void notify_status(struct server *srv) {
        (void) sd_notifyf(false, "STATUS=%zu connections, %" PRIu64 " authenticated, %" PRIu64 " failed, %" PRIu64 " turned away%s",
                          srv->conns.n, srv->n_ok, srv->n_failed, srv->n_rejected, srv->draining ? ", draining" : "");
}

static int status_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        notify_status(userdata);
        (void) sd_event_source_set_time_relative(s, 1000000);
        return 0;
}

/* conn.c reports each closed connection here. */
static void on_conn_closed(struct server *srv) {
        /* A descriptor is free again: accept() may work now if it ran out of them. */
        listen_resume(srv);
        if (srv->draining && srv->conns.n == 0)
                (void) sd_event_exit(srv->event, 0);
}

/* The group commit failed to sync (queue.c): the database may have lost a write. */
static void on_fatal(void *userdata) {
        struct server *srv = userdata;

        /* No new connections; the others are closed when the loop has ended. */
        listen_close(srv);
        (void) sd_event_exit(srv->event, -EIO);
}

static int drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct server *srv = userdata;

        log_notice("drain timeout: closing %zu open handshake(s)", srv->conns.n);
        while (srv->conns.first)
                conn_free(srv->conns.first);
        return sd_event_exit(srv->event, 0);
}

static int signal_handler(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct server *srv = userdata;

        if (srv->draining)
                return 0;
        log_notice("received %s: no new connections, draining %zu open handshake(s)",
                   strsignal((int) si->ssi_signo), srv->conns.n);
        (void) sd_notify(false, "STOPPING=1");
        srv->draining = true;
        listen_close(srv);
        notify_status(srv);
        /* Data channels wait for nothing but their device: they are closed now (CLOSE, §11). */
        conn_drain(srv);
        if (srv->conns.n == 0)
                return sd_event_exit(srv->event, 0);
        return sd_event_add_time_relative(srv->event, NULL, CLOCK_MONOTONIC, AUTHSERVER_DRAIN_MS * 1000ULL, 0,
                                          drain_timeout, srv);
}

/* One descriptor per connection, two with --sink (its link to the application): lift the soft
 * limit towards the hard one, as far as needed. */
static void raise_fd_limit(unsigned max_connections, bool sink) {
        struct rlimit rl;
        rlim_t want = (rlim_t) max_connections * (sink ? 2 : 1) + 64;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
                log_warning("Open-file limit %llu is below --max-connections %u: raise LimitNOFILE=",
                            (unsigned long long) rl.rlim_cur, max_connections);
}

static int parse_serve(struct config *c, int argc, char *argv[]) {
        enum { ARG_LISTEN = 0x200, ARG_TIMEOUT, ARG_MAX_CONN, ARG_MAX_PER_ADDR, ARG_HELLO_TIMEOUT,
               ARG_AUDIT_RETENTION, ARG_MAX_RECORDS, ARG_CHANNEL_IDLE,
               ARG_SINK, ARG_SINK_KEYS, ARG_SINK_TIMEOUT };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "listen",          required_argument, NULL, ARG_LISTEN },
                { "timeout",         required_argument, NULL, ARG_TIMEOUT },
                { "hello-timeout",   required_argument, NULL, ARG_HELLO_TIMEOUT },
                { "max-connections", required_argument, NULL, ARG_MAX_CONN },
                { "max-connections-per-address", required_argument, NULL, ARG_MAX_PER_ADDR },
                { "audit-retention", required_argument, NULL, ARG_AUDIT_RETENTION },
                { "max-records",     required_argument, NULL, ARG_MAX_RECORDS },
                { "channel-idle-timeout", required_argument, NULL, ARG_CHANNEL_IDLE },
                { "sink",            required_argument, NULL, ARG_SINK },
                { "sink-keys",       no_argument,       NULL, ARG_SINK_KEYS },
                { "sink-timeout",    required_argument, NULL, ARG_SINK_TIMEOUT },
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
                               "         [--max-records N] [--channel-idle-timeout SECONDS]\n"
                               "         [--sink PATH [--sink-keys] [--sink-timeout SECONDS]] [--config FILE]\n\n"
                               "Serve the secure-vault protocol. ADDR is an IPv4 address, [IPv6], a host name\n"
                               "or '*'; default " AUTHSERVER_DEFAULT_LISTEN ". Sockets passed by systemd take\n"
                               "precedence. Defaults: --timeout %d, --hello-timeout %d, --max-connections %d,\n"
                               "--max-connections-per-address %d (per IPv4 /24 or IPv6 /48; 0: no limit),\n"
                               "--audit-retention %d (days, or with a unit s, min, h, d; 0: keep the audit trail\n"
                               "forever), --max-records %d (DATA records per connection after M5),\n"
                               "--channel-idle-timeout %d (seconds between records). --sink hands sessions and\n"
                               "records to the application listening at PATH (docs/sink.md) instead of the\n"
                               "built-in aggregation, --sink-keys the session keys too; --sink-timeout %d.\n",
                               AUTHSERVER_DEFAULT_TIMEOUT_MS / 1000, AUTHSERVER_DEFAULT_HELLO_TIMEOUT_MS / 1000,
                               AUTHSERVER_DEFAULT_MAX_CONN, AUTHSERVER_DEFAULT_MAX_PER_ADDR,
                               AUTHSERVER_DEFAULT_AUDIT_RETENTION, AUTHSERVER_DEFAULT_MAX_RECORDS,
                               AUTHSERVER_DEFAULT_CHANNEL_IDLE_MS / 1000, AUTHSERVER_DEFAULT_SINK_TIMEOUT_MS / 1000);
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
                case ARG_MAX_RECORDS:
                        if (config_set(c, "max-records", optarg, "--max-records") < 0)
                                return -EINVAL;
                        break;
                case ARG_CHANNEL_IDLE:
                        if (config_set(c, "channel-idle-timeout", optarg, "--channel-idle-timeout") < 0)
                                return -EINVAL;
                        break;
                case ARG_SINK:
                        if (config_set(c, "sink", optarg, "--sink") < 0)
                                return -EINVAL;
                        break;
                case ARG_SINK_KEYS:
                        if (config_set(c, "sink-keys", "yes", "--sink-keys") < 0)
                                return -EINVAL;
                        break;
                case ARG_SINK_TIMEOUT:
                        if (config_set(c, "sink-timeout", optarg, "--sink-timeout") < 0)
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
        struct server srv = { .cfg = cfg, .on_conn_closed = on_conn_closed };
        struct store *writer_store = NULL;      /* the group commit's, queue.c's once it is set up */
        sigset_t mask;
        const char *bad = NULL;
        int r, ret = AS_EXIT_FAILURE;

        r = parse_serve(cfg, argc, argv);
        if (r != 0)
                return r > 0 ? AS_EXIT_OK : AS_EXIT_USAGE;
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
        raise_fd_limit(cfg->max_connections, cfg->sink_path != NULL);
        srv.backoff = malloc(sizeof *srv.backoff);
        srv.scratch = malloc(2 * (size_t) SV_VAULT_MAX);
        if (!srv.backoff || !srv.scratch || conn_addr_table_init(&srv) < 0)
                goto out;
        backoff_init(srv.backoff);

        /* Two connections to the database: the loop's reads (the lookups at M1) and sealing, and
         * the writer thread's group commit (queue.c). */
        if (config_open_store(cfg, 0, &srv.store) < 0 || config_open_store(cfg, 0, &writer_store) < 0) {
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
        if (r >= 0) {
                r = queue_init(&srv.queue, srv.event, writer_store);
                writer_store = NULL;
        }
        srv.queue.on_fatal = on_fatal;
        srv.queue.userdata = &srv;
        if (r >= 0)
                r = sd_event_add_time_relative(srv.event, &srv.status_timer, CLOCK_MONOTONIC, 1000000, 0,
                                               status_handler, &srv);
        if (r >= 0)
                r = sd_event_source_set_enabled(srv.status_timer, SD_EVENT_ON);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto out;
        }
        if (upkeep_init(&srv) < 0 || listen_open(&srv) < 0)
                goto out;

        (void) sd_notify(false, "READY=1");
        notify_status(&srv);
        log_info("authserver " PACKAGE_VERSION " ready: timeout %us, at most %u connections, %u per address",
                 cfg->timeout_ms / 1000, cfg->max_connections, cfg->max_per_address);
        r = sd_event_loop(srv.event);
        if (srv.queue.fatal)
                goto out;       /* logged where it happened */
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                goto out;
        }
        /* The counts of the last interval. */
        upkeep_flush(&srv);
        log_info("stopped: %" PRIu64 " authenticated, %" PRIu64 " failed; %" PRIu64 " connections turned away; "
                 "%" PRIu64 " idle connections evicted; %" PRIu64 " vault writes in %" PRIu64 " syncs",
                 srv.n_ok, srv.n_failed, srv.n_rejected, srv.n_evicted, srv.queue.n_vault_writes, srv.queue.n_syncs);
        ret = AS_EXIT_OK;
out:
        while (srv.conns.first)
                conn_free(srv.conns.first);
        listen_close(&srv);
        queue_free(&srv.queue);
        sd_event_source_disable_unref(srv.status_timer);
        upkeep_free(&srv);
        sd_event_unref(srv.event);
        store_close(writer_store);
        store_close(srv.store);
        free(srv.backoff);
        conn_addr_table_free(&srv);
        if (srv.scratch)
                OPENSSL_cleanse(srv.scratch, 2 * (size_t) SV_VAULT_MAX);
        free(srv.scratch);
        return ret;
}
