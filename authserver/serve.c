/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sched.h>
#include <pthread.h>
#include <time.h>

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "authserver.h"
#include "crypto.h"
#include "control.h"
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

/*
 * serve --workers N (docs/architecture.md, "serve --workers N"): N worker threads, each with
 * its own loop, listeners (SO_REUSEPORT clones, or the sockets systemd passed, shared), store
 * handle and connections; the writer thread of queue.c; and this, the main thread, whose loop
 * reads the signals, tells systemd, runs upkeep and tells the workers to drain or stop
 * (through each worker's eventfd: a worker's loop is touched only by its own thread).
 */
enum { CMD_NONE, CMD_DRAIN, CMD_STOP };

struct worker {
        struct server srv;
        struct serve *top;
        pthread_t thread;
        bool started;
        int ctl_fd;                     /* eventfd: the main thread posted a command */
        sd_event_source *ctl_src;
        sd_event_source *drain_timer;
        int result;                     /* its loop's */
};

struct serve {
        struct server main;             /* the main thread's loop: no listeners, no connections */
        struct shared sh;
        struct worker *workers;
        unsigned n_workers;
        int command;                    /* CMD_*, atomic: written by the main thread */
        int done_fd;                    /* eventfd: a worker's loop ended */
        sd_event_source *done_src;
        unsigned n_ended;               /* atomic */
};

static void notify_status(struct serve *t) {
        struct shared *sh = &t->sh;

        (void) sd_notifyf(false, "STATUS=%" PRIu64 " connections, %" PRIu64 " authenticated, %" PRIu64 " failed, %" PRIu64 " turned away%s",
                          __atomic_load_n(&sh->n_conns, __ATOMIC_RELAXED), __atomic_load_n(&sh->n_ok, __ATOMIC_RELAXED),
                          __atomic_load_n(&sh->n_failed, __ATOMIC_RELAXED),
                          __atomic_load_n(&sh->n_rejected, __ATOMIC_RELAXED), t->main.draining ? ", draining" : "");
}

static int status_handler(sd_event_source *s, uint64_t usec, void *userdata) {
        notify_status(userdata);
        (void) sd_event_source_set_time_relative(s, 1000000);
        return 0;
}

/* On the main thread: every worker is told cmd (the strongest told so far wins). */
static void post_command(struct serve *t, int cmd) {
        if (__atomic_load_n(&t->command, __ATOMIC_RELAXED) >= cmd)
                return;
        __atomic_store_n(&t->command, cmd, __ATOMIC_RELEASE);
        for (unsigned i = 0; i < t->n_workers; i++)
                if (t->workers[i].ctl_fd >= 0)
                        (void) eventfd_write(t->workers[i].ctl_fd, 1);
}

/* conn.c reports each closed connection of a worker here. */
static void on_conn_closed(struct server *srv) {
        /* A descriptor is free again: accept() may work now if it ran out of them. */
        listen_resume(srv);
        if (srv->draining && srv->conns.n == 0)
                (void) sd_event_exit(srv->event, 0);
}

/* A worker's loop: the group commit failed to sync (queue.c), the database may have lost a
 * write. The main thread's loop learns it too (every loop is woken) and stops the others. */
static void on_worker_fatal(void *userdata) {
        struct server *srv = userdata;

        /* No new connections; the others are closed when the loop has ended. */
        listen_close(srv);
        (void) sd_event_exit(srv->event, -EIO);
}

static void on_main_fatal(void *userdata) {
        struct serve *t = userdata;

        post_command(t, CMD_STOP);
        (void) sd_event_exit(t->main.event, -EIO);
}

static int drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct server *srv = userdata;

        log_notice("drain timeout: closing %zu open handshake(s)", srv->conns.n);
        while (srv->conns.first)
                conn_free(srv->conns.first);
        return sd_event_exit(srv->event, 0);
}

/* On a worker: the main thread posted a command. */
static int ctl_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct worker *w = userdata;
        struct server *srv = &w->srv;
        eventfd_t v;
        int cmd;

        (void) eventfd_read(fd, &v);
        cmd = __atomic_load_n(&w->top->command, __ATOMIC_ACQUIRE);
        if (cmd == CMD_STOP) {
                listen_close(srv);
                return sd_event_exit(srv->event, 0);
        }
        if (cmd != CMD_DRAIN || srv->draining)
                return 0;
        srv->draining = true;
        listen_close(srv);
        /* Data channels wait for nothing but their device: they are closed now (CLOSE, §11). */
        conn_drain(srv);
        if (srv->conns.n == 0)
                return sd_event_exit(srv->event, 0);
        return sd_event_add_time_relative(srv->event, &w->drain_timer, CLOCK_MONOTONIC,
                                          AUTHSERVER_DRAIN_MS * 1000ULL, 0, drain_timeout, srv);
}

static void *worker_main(void *userdata) {
        struct worker *w = userdata;
        struct server *srv = &w->srv;

        w->result = sd_event_loop(srv->event);
        if (w->result < 0 && w->result != -EIO)
                log_error_errno(w->result, "Event loop of worker %u failed: %m", srv->id);
        /* Its connections end on its own thread (each cancels its write: none is left queued). */
        while (srv->conns.first)
                conn_free(srv->conns.first);
        listen_close(srv);
        __atomic_fetch_add(&w->top->n_ended, 1, __ATOMIC_RELEASE);
        (void) eventfd_write(w->top->done_fd, 1);
        return NULL;
}

/* On the main thread: a worker's loop ended. Once all have (drained), the main loop ends; one
 * that ended unasked (a failed sync, a failed loop) stops the others. */
static int done_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct serve *t = userdata;
        eventfd_t v;

        (void) eventfd_read(fd, &v);
        if (__atomic_load_n(&t->command, __ATOMIC_RELAXED) == CMD_NONE) {
                post_command(t, CMD_STOP);
                return sd_event_exit(t->main.event, -EIO);
        }
        if (__atomic_load_n(&t->n_ended, __ATOMIC_ACQUIRE) == t->n_workers)
                return sd_event_exit(t->main.event, 0);
        return 0;
}

static int signal_handler(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct serve *t = userdata;

        if (t->main.draining)
                return 0;
        log_notice("received %s: no new connections, draining %" PRIu64 " open handshake(s)",
                   strsignal((int) si->ssi_signo), __atomic_load_n(&t->sh.n_conns, __ATOMIC_RELAXED));
        (void) sd_notify(false, "STOPPING=1");
        t->main.draining = true;
        notify_status(t);
        post_command(t, CMD_DRAIN);
        return 0;
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
               ARG_SINK, ARG_SINK_KEYS, ARG_SINK_TIMEOUT, ARG_WORKERS, ARG_METRICS, ARG_CONTROL_GROUP,
               ARG_SERVER_ID };
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
                { "workers",         required_argument, NULL, ARG_WORKERS },
                { "metrics",         required_argument, NULL, ARG_METRICS },
                { "control-group",   required_argument, NULL, ARG_CONTROL_GROUP },
                { "server-id",       required_argument, NULL, ARG_SERVER_ID },
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
                               "         [--sink PATH [--sink-keys] [--sink-timeout SECONDS]] [--workers N]\n"
                               "         [--control PATH] [--control-group GROUP] [--metrics ADDR:PORT]\n"
                               "         [--server-id NAME] [--config FILE]\n\n"
                               "Serve the secure-vault protocol. ADDR is an IPv4 address, [IPv6], a host name\n"
                               "or '*'; default " AUTHSERVER_DEFAULT_LISTEN ". Sockets passed by systemd take\n"
                               "precedence. Defaults: --timeout %d, --hello-timeout %d, --max-connections %d,\n"
                               "--max-connections-per-address %d (per IPv4 /24 or IPv6 /48; 0: no limit),\n"
                               "--audit-retention %d (days, or with a unit s, min, h, d; 0: keep the audit trail\n"
                               "forever), --max-records %d (DATA records per connection after M5),\n"
                               "--channel-idle-timeout %d (seconds between records). --sink hands sessions and\n"
                               "records to the application listening at PATH (docs/sink.md) instead of the\n"
                               "built-in aggregation, --sink-keys the session keys too; --sink-timeout %d.\n"
                               "--workers: protocol threads, 1..%d (default: the CPUs it may run on).\n"
                               "--control: the admin verbs' socket (default " AUTHSERVER_DEFAULT_CONTROL ", if its\n"
                               "directory exists; 'none': off), for root and --control-group (default\n"
                               AUTHSERVER_DEFAULT_CONTROL_GROUP "). --metrics: Prometheus text at /metrics (opt-in).\n"
                               "--server-id: this server's name among several on one PostgreSQL database, kept\n"
                               "across restarts (default: a new one per process).\n",
                               AUTHSERVER_DEFAULT_TIMEOUT_MS / 1000, AUTHSERVER_DEFAULT_HELLO_TIMEOUT_MS / 1000,
                               AUTHSERVER_DEFAULT_MAX_CONN, AUTHSERVER_DEFAULT_MAX_PER_ADDR,
                               AUTHSERVER_DEFAULT_AUDIT_RETENTION, AUTHSERVER_DEFAULT_MAX_RECORDS,
                               AUTHSERVER_DEFAULT_CHANNEL_IDLE_MS / 1000, AUTHSERVER_DEFAULT_SINK_TIMEOUT_MS / 1000,
                               AUTHSERVER_WORKERS_MAX);
                        common_options_help();
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
                case ARG_WORKERS:
                        if (config_set(c, "workers", optarg, "--workers") < 0)
                                return -EINVAL;
                        break;
                case ARG_METRICS:
                        if (config_set(c, "metrics", optarg, "--metrics") < 0)
                                return -EINVAL;
                        break;
                case ARG_CONTROL_GROUP:
                        if (config_set(c, "control-group", optarg, "--control-group") < 0)
                                return -EINVAL;
                        break;
                case ARG_SERVER_ID:
                        if (config_set(c, "server-id", optarg, "--server-id") < 0)
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

/* The default of --workers: the CPUs this process may run on, within 1..AUTHSERVER_WORKERS_MAX. */
static unsigned default_workers(void) {
        cpu_set_t set;
        int n;

        if (sched_getaffinity(0, sizeof set, &set) < 0)
                return 1;
        n = CPU_COUNT(&set);
        return n < 1 ? 1 : n > AUTHSERVER_WORKERS_MAX ? AUTHSERVER_WORKERS_MAX : (unsigned) n;
}

/* On the main thread, before the workers start: worker i's loop, store, port and listeners
 * (worker 0 opens them, the others clone worker 0's). */
static int worker_setup(struct serve *t, unsigned i) {
        struct worker *w = &t->workers[i];
        struct server *srv = &w->srv;
        int r;

        srv->scratch = malloc(2 * (size_t) SV_VAULT_MAX);
        if (!srv->scratch)
                return log_error_errno(ENOMEM, "Failed to set up worker %u: %m", i);
        r = sd_event_new(&srv->event);
        if (r >= 0)
                r = queue_port_init(&srv->queue, &t->sh.queue, srv->event);
        srv->queue.on_fatal = on_worker_fatal;
        srv->queue.userdata = srv;
        if (r >= 0) {
                w->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
                r = w->ctl_fd < 0 ? -errno : 0;
        }
        if (r >= 0)
                r = sd_event_add_io(srv->event, &w->ctl_src, w->ctl_fd, EPOLLIN, ctl_handler, w);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop of worker %u: %m", i);
        return i == 0 ? listen_open(srv, t->n_workers > 1) : listen_clone(srv, &t->workers[0].srv);
}

static void worker_free(struct worker *w) {
        struct server *srv = &w->srv;

        while (srv->conns.first)
                conn_free(srv->conns.first);
        listen_close(srv);
        queue_port_free(&srv->queue);
        w->drain_timer = sd_event_source_disable_unref(w->drain_timer);
        w->ctl_src = sd_event_source_disable_unref(w->ctl_src);
        if (w->ctl_fd >= 0)
                close(w->ctl_fd);
        w->ctl_fd = -1;
        srv->event = sd_event_unref(srv->event);
        store_close(srv->store);
        srv->store = NULL;
        if (srv->scratch)
                OPENSSL_cleanse(srv->scratch, 2 * (size_t) SV_VAULT_MAX);
        free(srv->scratch);
        srv->scratch = NULL;
}

static int shared_init(struct shared *sh, const struct config *cfg) {
        pthread_rwlockattr_t attr;
        int r;

        if (pthread_mutex_init(&sh->lock, NULL) != 0)
                return -ENOMEM;
        /* The main thread's rare swap of the decoy table must not wait behind a stream of M1s. */
        if (pthread_rwlockattr_init(&attr) != 0)
                return -ENOMEM;
        (void) pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        r = pthread_rwlock_init(&sh->decoy_lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        if (r != 0)
                return -ENOMEM;
        sh->backoff = malloc(sizeof *sh->backoff);
        if (!sh->backoff)
                return -ENOMEM;
        backoff_init(sh->backoff);
        if (stats_new(&sh->stats) < 0)
                return -ENOMEM;
        return conn_addr_table_init(sh, cfg);
}

/*
 * The owner of this process's session claims: with a server id, derived from it, so that a
 * restart (same id) releases the claims its predecessor left instead of waiting them out; the
 * id's lock keeps it to one live server. Else a random one for this process alone.
 */
static int claim_owner(const char *server_id, struct store *writer, uint64_t *ret) {
        static const char label[] = "secure-vault server-id";
        uint8_t digest[32];
        uint64_t owner = 0, released = 0;
        int r;

        if (!server_id) {
                if (crypto_random(&owner, sizeof owner) < 0 || owner == 0)
                        return log_error_errno(EIO, "Failed to draw the instance id");
                *ret = owner;
                return 0;
        }
        r = crypto_sha256_v((const void *const[]) { label, server_id },
                            (const size_t[]) { sizeof label, strlen(server_id) }, 2, digest);
        if (r < 0)
                return log_error_errno(-r, "Failed to derive the claim owner of the server id");
        memcpy(&owner, digest, sizeof owner);
        owner = owner ? owner : 1;
        r = store_take_identity(writer, owner, &released);
        if (r < 0) {
                log_error("Server id '%s': %s", server_id, store_last_error(writer));
                return r;
        }
        log_info("server id '%s'%s", server_id, released ? ": released the session claims its previous "
                 "process left" : "");
        *ret = owner;
        return 0;
}

/* The database's serving lock, shared with every other server and refused while authserver
 * migrate copies the database: an exit status, AS_EXIT_OK once held. */
static int hold_serving_lock(struct store *s) {
        int r = store_lock_serving(s, false);

        if (r >= 0)
                return AS_EXIT_OK;
        log_error("%s%s", store_last_error(s), r == -EBUSY ? ": start the server when the migration has ended" : "");
        return r == -EBUSY ? AS_EXIT_EXISTS : AS_EXIT_DATABASE;
}

int verb_serve(struct config *cfg, int argc, char *argv[]) {
        struct serve t = { .done_fd = -1 };
        struct server *main_srv = &t.main;
        struct store *writer_store = NULL;      /* the group commit's, queue.c's once it is set up */
        uint64_t instance = 0;                  /* this process, owner of its session claims */
        struct control *control = NULL;
        struct metrics *metrics = NULL;
        sigset_t mask;
        const char *bad = NULL;
        bool fatal = false;
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
        if (cfg->workers == 0)
                cfg->workers = default_workers();
        raise_fd_limit(cfg->max_connections, cfg->sink_path != NULL);
        *main_srv = (struct server) { .cfg = cfg, .sh = &t.sh, .on_conn_closed = on_conn_closed };
        t.workers = calloc(cfg->workers, sizeof *t.workers);
        if (!t.workers || shared_init(&t.sh, cfg) < 0)
                goto out;
        for (unsigned i = 0; i < cfg->workers; i++)
                t.workers[i] = (struct worker) {
                        .srv = { .cfg = cfg, .sh = &t.sh, .id = i, .on_conn_closed = on_conn_closed },
                        .top = &t, .ctl_fd = -1,
                };
        t.n_workers = cfg->workers;

        /* Connections to the database: the main thread's (upkeep's reads, the decoys' sealing),
         * the writer thread's group commit (queue.c), and each worker's (its lookups at M1, its
         * sealing), opened in worker_setup(); all with a handshake's time-outs (store.h). */
        if (config_open_store(cfg, STORE_HANDSHAKE, &main_srv->store) < 0 ||
            config_open_store(cfg, STORE_HANDSHAKE, &writer_store) < 0) {
                ret = AS_EXIT_DATABASE;
                goto out;
        }
        /* On the main thread's handle, the one closed last (store_lock_serving()). */
        ret = hold_serving_lock(main_srv->store);
        if (ret != AS_EXIT_OK)
                goto out;
        ret = AS_EXIT_FAILURE;
        /* On PostgreSQL, which several servers may share, the writer's M3 writes take the
         * device's session claim in the database, as this process (docs/architecture.md,
         * "Many servers on one database"): it holds for the handshake's time-out from the
         * write, past the session's own deadline. A SQLite file has one server: the rule in
         * memory is enough there, and a restart after a crash is not held up by the claims
         * of the process that died. */
        if (store_path_is_postgresql(cfg->db_path ? cfg->db_path : AUTHSERVER_DEFAULT_DB)) {
                r = claim_owner(cfg->server_id, writer_store, &instance);
                if (r < 0) {
                        ret = r == -EADDRINUSE ? AS_EXIT_EXISTS : AS_EXIT_DATABASE;
                        goto out;
                }
                store_set_claim(writer_store, instance, cfg->timeout_ms);
                t.sh.db_backoff = store_has_shared_backoff(writer_store);
                /* The writer's too, so that after a reconnection during a migration it
                 * writes nothing until the copy has ended. */
                ret = hold_serving_lock(writer_store);
                if (ret != AS_EXIT_OK)
                        goto out;
                ret = AS_EXIT_FAILURE;
        } else if (cfg->server_id)
                log_warning("server-id is for servers that share a PostgreSQL store: ignored on SQLite");
        for (unsigned i = 0; i < t.n_workers; i++)
                if (config_open_store(cfg, STORE_HANDSHAKE, &t.workers[i].srv.store) < 0) {
                        ret = AS_EXIT_DATABASE;
                        goto out;
                }
        /* Blocked in every thread (they inherit the mask): the main thread's loop reads them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&main_srv->event);
        if (r >= 0)
                r = sd_event_add_signal(main_srv->event, NULL, SIGTERM, signal_handler, &t);
        if (r >= 0)
                r = sd_event_add_signal(main_srv->event, NULL, SIGINT, signal_handler, &t);
        if (r >= 0) {
                r = queue_init(&t.sh.queue, writer_store);
                writer_store = NULL;
        }
        if (r >= 0)
                r = queue_port_init(&main_srv->queue, &t.sh.queue, main_srv->event);
        main_srv->queue.on_fatal = on_main_fatal;
        main_srv->queue.userdata = &t;
        if (r >= 0) {
                t.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
                r = t.done_fd < 0 ? -errno : 0;
        }
        if (r >= 0)
                r = sd_event_add_io(main_srv->event, &t.done_src, t.done_fd, EPOLLIN, done_handler, &t);
        if (r >= 0)
                r = sd_event_add_time_relative(main_srv->event, &main_srv->status_timer, CLOCK_MONOTONIC, 1000000, 0,
                                               status_handler, &t);
        if (r >= 0)
                r = sd_event_source_set_enabled(main_srv->status_timer, SD_EVENT_ON);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto out;
        }
        if (upkeep_init(main_srv) < 0)
                goto out;
        /* The control socket and the metrics each on a thread of their own (control.h). */
        if (control_start(cfg, &t.sh, &control) < 0 || metrics_start(cfg->metrics, &t.sh, &metrics) < 0)
                goto out;
        for (unsigned i = 0; i < t.n_workers; i++)
                if (worker_setup(&t, i) < 0)
                        goto out;
        for (unsigned i = 0; i < t.n_workers; i++) {
                r = -pthread_create(&t.workers[i].thread, NULL, worker_main, &t.workers[i]);
                if (r < 0) {
                        log_error_errno(r, "Failed to start worker %u: %m", i);
                        goto out;
                }
                t.workers[i].started = true;
        }

        (void) sd_notify(false, "READY=1");
        notify_status(&t);
        log_info("authserver " PACKAGE_VERSION " ready: timeout %us, at most %u connections, %u per address, %u worker%s",
                 cfg->timeout_ms / 1000, cfg->max_connections, cfg->max_per_address, t.n_workers,
                 t.n_workers == 1 ? "" : "s");
        r = sd_event_loop(main_srv->event);
        if (r < 0 && r != -EIO)
                log_error_errno(r, "Event loop failed: %m");
        /* Every worker ends (drained already, or stopped now) before the last batch. */
        post_command(&t, CMD_STOP);
        for (unsigned i = 0; i < t.n_workers; i++)
                if (t.workers[i].started) {
                        pthread_join(t.workers[i].thread, NULL);
                        t.workers[i].started = false;
                        fatal = fatal || t.workers[i].srv.queue.fatal;
                        if (t.workers[i].result < 0 && t.workers[i].result != -EIO)
                                r = t.workers[i].result;
                }
        fatal = fatal || main_srv->queue.fatal || r == -EIO;
        if (fatal || r < 0)
                goto out;       /* logged where it happened */
        /* The counts of the last interval, and what is still queued: the last batch. */
        upkeep_flush(main_srv);
        log_info("stopped: %" PRIu64 " authenticated, %" PRIu64 " failed; %" PRIu64 " connections turned away; "
                 "%" PRIu64 " idle connections evicted; %" PRIu64 " vault writes in %" PRIu64 " syncs",
                 t.sh.n_ok, t.sh.n_failed, t.sh.n_rejected, t.sh.n_evicted, t.sh.queue.n_vault_writes,
                 t.sh.queue.n_syncs);
        ret = AS_EXIT_OK;
out:
        control_stop(control);
        metrics_stop(metrics);
        post_command(&t, CMD_STOP);
        for (unsigned i = 0; i < t.n_workers; i++)
                if (t.workers[i].started)
                        pthread_join(t.workers[i].thread, NULL);
        for (unsigned i = 0; i < t.n_workers; i++)
                worker_free(&t.workers[i]);
        queue_port_free(&main_srv->queue);
        queue_free(&t.sh.queue);
        t.done_src = sd_event_source_disable_unref(t.done_src);
        if (t.done_fd >= 0)
                close(t.done_fd);
        sd_event_source_disable_unref(main_srv->status_timer);
        upkeep_free(main_srv);
        sd_event_unref(main_srv->event);
        store_close(writer_store);
        store_close(main_srv->store);
        free(t.sh.backoff);
        conn_addr_table_free(&t.sh);
        stats_free(t.sh.stats);
        free(t.workers);
        return ret;
}
