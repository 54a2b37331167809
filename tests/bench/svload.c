/* SPDX-License-Identifier: MIT */
/*
 * svload: closed-loop load generator for a running authserver (loopback only).
 *
 *   svload --server 127.0.0.1:PORT (--bundles DIR | BUNDLE...) [-c C] [-n N] [-u U]
 *          [--server-pid PID] [-l LABEL] [--idle K] [--hold S] [--timeout S] [--no-save]
 *          [--records [--payload S]]
 *
 * The model is the one of tests/bench/peer/netbench.c, so that its numbers compare with
 * tls13_psk_bench line by line: C client processes (fork) each run U un-timed warm-up
 * handshakes, wait on a start barrier, then run their share of N timed handshakes back to
 * back, each a full M1..M5 over a fresh TCP connection. The device side is common/'s state
 * machine with the vaults held in (shared) memory: no TPM, no file written while timed.
 *
 * Client i owns the devices i, i+C, i+2C, ... of the bundle list and takes them in turn, so
 * no two clients ever run a session of one device (authserver refuses the second one). The
 * bundles are written back, advanced, after the run (--no-save: not at all); a crash
 * mid-run leaves them at an older epoch, which the server no longer accepts.
 *
 * Measured: wall time from barrier release to the last client's end; latency per handshake
 * at the client, socket() to close() returned; client CPU (getrusage of the timed phase);
 * server CPU as utime+stime of --server-pid from /proc/PID/stat before and after the timed
 * phase (clock ticks; /proc/PID/schedstat gives the same in ns as srv_sched_us); payload
 * bytes each way as the client sent and read them; TCP segments per handshake from
 * /proc/net/snmp (both directions, as netbench). With --idle K, K extra connections are
 * opened first and held, idle, for the whole run (and the server's VmRSS reported).
 *
 * Bundles enrolled with a key share (kex x25519, protocol 1.1 §10) run it: hs_device_* draws
 * the scalar, sends the share in M1 and checks the server's in M2, as vaultd does.
 *
 * --records measures the data channel (§11) instead: each client authenticates its first
 * device once, keeps the connection, and runs U un-timed and then its share of N timed
 * round trips over it, one DATA record of --payload bytes up and one DATA record back. The
 * payload is not NAME=NUMBER, so the built-in handler answers "error: ..." at once and stores
 * nothing: what is timed is the record layer (seal/open with the per-record ratchet), the
 * event loop and the sockets, not the group commit. The server's --max-records must allow
 * U + N/C records. Prints bench=authserver_records (rate_rec, us_per_rec, CPU per record).
 *
 * Prints one `key=value` line with the field names of netbench (rate_hs is handshakes/s).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "bundle-file.h"
#include "devicectl.h"
#include "handshake.h"

#define SVLOAD_CLIENTS_MAX      1024    /* client processes */
#define SVLOAD_DEVICES_MAX      65536   /* bundles one run may load */
#define SVLOAD_ERRORS_MAX       10      /* a client gives up after this many failed handshakes */
#define SVLOAD_IDLE_MAX         200000  /* --idle */

struct client_result {
        double t_end;
        uint64_t cpu_ns;
        uint64_t tx, rx;
        long done;
        long errors;
};

/* Shared with the client processes (MAP_SHARED): results, and each device's vault and epoch. */
struct shared {
        struct client_result cli[SVLOAD_CLIENTS_MAX];
};

struct device {
        char path[4096];
        char server[BUNDLE_SERVER_MAX + 1];
        struct vault_params params;     /* epoch advances in shared memory */
        uint8_t *vault;                 /* n·m bytes in the shared arena */
};

/* --records: one connection kept open after M5, its data channel (protocol §11). */
struct channel {
        int fd;
        struct record_chain tx, rx;     /* seals c2s, opens s2c */
        const uint8_t *payload;
        size_t len;
        uint8_t frame[RECORD_FRAME_MAX];
};

struct options {
        struct sockaddr_in addr;
        const char *label;
        long n, warmup;
        int conc;
        pid_t server_pid;
        long idle;
        unsigned hold_s;
        int timeout_ms;
        bool save;
        long records;           /* --records: timed DATA records per client instead of handshakes */
        size_t payload;         /* --payload: bytes of each DATA record */
};

static uint64_t rusage_ns(const struct rusage *r) {
        return (uint64_t) r->ru_utime.tv_sec * 1000000000ull + (uint64_t) r->ru_utime.tv_usec * 1000ull +
               (uint64_t) r->ru_stime.tv_sec * 1000000000ull + (uint64_t) r->ru_stime.tv_usec * 1000ull;
}

/* utime + stime of pid in ns (fields 14 and 15 of /proc/PID/stat, in clock ticks). */
static int proc_cpu_ns(pid_t pid, uint64_t *ret) {
        char path[64], buf[2048], *p;
        unsigned long long ut, st;
        ssize_t k;
        int fd;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k <= 0)
                return -EIO;
        buf[k] = '\0';
        /* The command name may hold spaces and parentheses: fields count from the last ')'. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return -EBADMSG;
        *ret = (uint64_t) (ut + st) * (1000000000ull / (uint64_t) sysconf(_SC_CLK_TCK));
        return 0;
}

/* On-CPU time of pid's main thread in ns (first field of /proc/PID/schedstat); 0 if absent. */
static uint64_t proc_sched_ns(pid_t pid) {
        char path[64];
        unsigned long long v = 0;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/schedstat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        if (fscanf(f, "%llu", &v) != 1)
                v = 0;
        fclose(f);
        return v;
}

/* VmRSS of pid in kB, -1 if unknown. */
static long proc_rss_kb(pid_t pid) {
        char path[64], line[256];
        long v = -1;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
                        break;
        fclose(f);
        return v;
}

/* "127.x.y.z:PORT" only: the benchmark never leaves the loopback interface. */
static int parse_server(const char *s, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN];
        const char *colon = strrchr(s, ':');
        unsigned long port;
        char *end;

        if (!colon || (size_t) (colon - s) >= sizeof host)
                return -EINVAL;
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = '\0';
        port = strtoul(colon + 1, &end, 10);
        if (*end || port == 0 || port > 65535)
                return -EINVAL;
        memset(ret, 0, sizeof *ret);
        ret->sin_family = AF_INET;
        ret->sin_port = htons((uint16_t) port);
        if (inet_pton(AF_INET, host, &ret->sin_addr) != 1 || (ntohl(ret->sin_addr.s_addr) >> 24) != 127)
                return -EINVAL;
        return 0;
}

/*
 * A blocking TCP connection, as netbench's clients make them (TCP_NODELAY, no name lookup),
 * so that both benchmarks pay the same per-connection system calls. The time-outs only keep a
 * stuck server from hanging the run; net_recv_frame() turns them into -ETIMEDOUT.
 */
static int connect_server(const struct options *o) {
        struct timeval tv = { .tv_sec = o->timeout_ms / 1000, .tv_usec = (o->timeout_ms % 1000) * 1000 };
        int one = 1, fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (connect(fd, (const struct sockaddr *) &o->addr, sizeof o->addr) < 0) {
                int r = -errno;

                if (r == -EINTR)
                        continue;
                close(fd);
                return r;
        }
        return fd;
}

/*
 * One complete handshake of device d; on success the vault and epoch have advanced. With ch,
 * the connection stays open for the data channel: ch gets it and both record chains.
 */
static int handshake(const struct options *o, struct device *d, uint8_t *next, uint64_t *tx, uint64_t *rx,
                     struct channel *ch) {
        struct hs_device hs;
        uint8_t frame[SV_FRAME_MAX];
        size_t len;
        int64_t deadline;
        int fd, r;

        fd = connect_server(o);
        if (fd < 0)
                return fd;
        deadline = now_ms() + o->timeout_ms;
        hs_device_init(&hs, &d->params, d->vault, &hs_random_os);
        r = hs_device_hello(&hs, frame, sizeof frame, &len);
        if (r >= 0)
                r = net_send_frame(fd, frame, len, deadline);
        if (r < 0)
                goto out;
        *tx += len;
        r = net_recv_frame(fd, frame, sizeof frame, &len, deadline, SV_MSG_CHALLENGE,
                           vault_body_len(SV_MSG_CHALLENGE, &d->params));
        if (r < 0)
                goto out;
        *rx += len;
        r = hs_device_respond(&hs, frame, len, frame, sizeof frame, &len);
        if (r >= 0)
                r = net_send_frame(fd, frame, len, deadline);
        if (r < 0)
                goto out;
        *tx += len;
        r = net_recv_frame(fd, frame, sizeof frame, &len, deadline, SV_MSG_CONFIRM, SV_CONFIRM_BODY_LEN);
        if (r < 0)
                goto out;
        *rx += len;
        r = hs_device_confirm(&hs, frame, len, next, frame, sizeof frame, &len);
        if (r < 0)
                goto out;
        /* A device commits before M5 leaves (vaultd makes it durable; here it stays in memory). */
        memcpy(d->vault, next, vault_size(&d->params));
        d->params.epoch++;
        r = net_send_frame(fd, frame, len, deadline);
        if (r >= 0)
                *tx += len;
        if (r >= 0 && ch) {
                uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN];

                r = hs_device_channel_secrets(&hs, c2s, s2c);
                if (r >= 0) {
                        /* record_init() takes the secrets over and wipes them. */
                        record_init(&ch->tx, c2s);
                        record_init(&ch->rx, s2c);
                        ch->fd = fd;
                        fd = -1;
                }
        }
out:
        hs_device_wipe(&hs);
        if (fd >= 0)
                close(fd);
        return r;
}

/*
 * One DATA record of ch->len bytes to the server, and its answer: one DATA record that the
 * built-in handler starts with "error:" (the payload is not NAME=NUMBER, so nothing is
 * stored: only the record layer, the event loop and the sockets are measured).
 */
static int record_roundtrip(const struct options *o, struct channel *ch, uint64_t *tx, uint64_t *rx) {
        uint8_t answer[RECORD_PAYLOAD_MAX];
        int64_t deadline = now_ms() + o->timeout_ms;
        size_t len = 0, plen = 0;
        int r;

        r = record_seal(&ch->tx, SV_MSG_DATA, ch->payload, ch->len, ch->frame, sizeof ch->frame, &len);
        if (r >= 0)
                r = net_send_frame(ch->fd, ch->frame, len, deadline);
        if (r < 0)
                return r;
        *tx += len;
        r = net_recv_record(ch->fd, ch->frame, sizeof ch->frame, &len, deadline);
        if (r < 0)
                return r;
        *rx += len;
        r = record_open(&ch->rx, ch->frame, len, answer, sizeof answer, &plen);
        if (r < 0)
                return r;
        if (r != SV_MSG_DATA || plen < 6 || memcmp(answer, "error:", 6) != 0)
                return -EPROTO;         /* a CLOSE (record limit, time-out) or an unexpected answer */
        return 0;
}

/* CLOSE both ways, then the connection ends. */
static int channel_finish(const struct options *o, struct channel *ch) {
        int64_t deadline = now_ms() + o->timeout_ms;
        size_t len = 0, plen = 0;
        int r;

        r = record_seal(&ch->tx, SV_MSG_CLOSE, NULL, 0, ch->frame, sizeof ch->frame, &len);
        if (r >= 0)
                r = net_send_frame(ch->fd, ch->frame, len, deadline);
        if (r >= 0)
                r = net_recv_record(ch->fd, ch->frame, sizeof ch->frame, &len, deadline);
        if (r >= 0)
                r = record_open(&ch->rx, ch->frame, len, NULL, 0, &plen);
        if (r >= 0 && r != SV_MSG_CLOSE)
                r = -EPROTO;
        record_wipe(&ch->tx);
        record_wipe(&ch->rx);
        close(ch->fd);
        ch->fd = -1;
        return r < 0 ? r : 0;
}

static void client_run(const struct options *o, struct shared *shm, struct device *devs, size_t n_devs,
                       double *lat, int idx, long nmine, int ready_w, int go_r) {
        struct client_result *res = &shm->cli[idx];
        struct rusage r0, r1;
        uint64_t tx = 0, rx = 0;
        size_t cur = (size_t) idx, max_vault = 0;
        uint8_t *next;
        char c = 'r';
        int r;

        signal(SIGPIPE, SIG_IGN);
        for (size_t i = (size_t) idx; i < n_devs; i += (size_t) o->conc)
                if (vault_size(&devs[i].params) > max_vault)
                        max_vault = vault_size(&devs[i].params);
        next = malloc(max_vault);
        if (!next)
                _exit(1);
        for (long i = 0; i < o->warmup; i++) {
                r = handshake(o, &devs[cur], next, &tx, &rx, NULL);
                if (r < 0) {
                        fprintf(stderr, "svload: client %d: warm-up handshake %ld of '%s' failed: %s\n", idx, i,
                                devs[cur].params.device_id, strerror(-r));
                        _exit(1);
                }
                cur += (size_t) o->conc;
                if (cur >= n_devs)
                        cur = (size_t) idx;
        }
        if (write(ready_w, &c, 1) != 1)
                _exit(1);
        while (read(go_r, &c, 1) < 0 && errno == EINTR) /* the barrier: EOF when the parent closes it */
                ;

        tx = rx = 0;
        getrusage(RUSAGE_SELF, &r0);
        for (long i = 0; i < nmine; i++) {
                double t0 = now_s();

                r = handshake(o, &devs[cur], next, &tx, &rx, NULL);
                lat[i] = now_s() - t0;
                res->done++;
                if (r < 0) {
                        if (res->errors < 3)
                                fprintf(stderr, "svload: client %d: handshake of '%s' failed: %s\n", idx,
                                        devs[cur].params.device_id, strerror(-r));
                        if (++res->errors > SVLOAD_ERRORS_MAX) {
                                fprintf(stderr, "svload: client %d: too many errors, giving up\n", idx);
                                break;
                        }
                }
                cur += (size_t) o->conc;
                if (cur >= n_devs)
                        cur = (size_t) idx;
        }
        getrusage(RUSAGE_SELF, &r1);
        res->t_end = now_s();
        res->cpu_ns = rusage_ns(&r1) - rusage_ns(&r0);
        res->tx = tx;
        res->rx = rx;
        free(next);
        _exit(res->errors ? 1 : 0);
}

/*
 * --records: client idx authenticates its first device once (un-timed), keeps the connection
 * and runs U un-timed then nmine timed record round trips over it, one record in flight as in
 * a request/response application; CLOSE both ways after the timed phase.
 */
static void client_records(const struct options *o, struct shared *shm, struct device *devs, double *lat, int idx,
                           long nmine, int ready_w, int go_r) {
        struct client_result *res = &shm->cli[idx];
        struct channel *ch = calloc(1, sizeof *ch);
        struct device *d = &devs[idx];
        struct rusage r0, r1;
        uint64_t tx = 0, rx = 0;
        uint8_t *next = malloc(vault_size(&d->params)), *payload = malloc(o->payload ? o->payload : 1);
        char c = 'r';
        int r;

        signal(SIGPIPE, SIG_IGN);
        if (!ch || !next || !payload)
                _exit(1);
        /* No '=': the built-in handler answers "error: expected NAME=NUMBER" and stores nothing. */
        memset(payload, 'x', o->payload);
        ch->payload = payload;
        ch->len = o->payload;
        ch->fd = -1;
        r = handshake(o, d, next, &tx, &rx, ch);
        for (long i = 0; r >= 0 && i < o->warmup; i++)
                r = record_roundtrip(o, ch, &tx, &rx);
        if (r < 0) {
                fprintf(stderr, "svload: client %d: handshake or warm-up record of '%s' failed: %s\n", idx,
                        d->params.device_id, strerror(-r));
                _exit(1);
        }
        if (write(ready_w, &c, 1) != 1)
                _exit(1);
        while (read(go_r, &c, 1) < 0 && errno == EINTR)
                ;

        tx = rx = 0;
        getrusage(RUSAGE_SELF, &r0);
        for (long i = 0; i < nmine; i++) {
                double t0 = now_s();

                r = record_roundtrip(o, ch, &tx, &rx);
                lat[i] = now_s() - t0;
                res->done++;
                if (r < 0) {
                        /* A failed record ends the channel (§11): nothing more can be sent on it. */
                        fprintf(stderr, "svload: client %d: record %ld failed: %s\n", idx, i, strerror(-r));
                        res->errors++;
                        break;
                }
        }
        getrusage(RUSAGE_SELF, &r1);
        res->t_end = now_s();
        res->cpu_ns = rusage_ns(&r1) - rusage_ns(&r0);
        res->tx = tx;
        res->rx = rx;
        if (r >= 0) {
                r = channel_finish(o, ch);
                if (r < 0) {
                        fprintf(stderr, "svload: client %d: CLOSE failed: %s\n", idx, strerror(-r));
                        res->errors++;
                }
        }
        free(next);
        free(payload);
        free(ch);
        _exit(res->errors ? 1 : 0);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The *.bundle files of dir, sorted by name, appended to paths. */
static int list_bundles(const char *dir, char **paths, size_t *n) {
        struct dirent *de;
        size_t first = *n;
        DIR *d = opendir(dir);

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);

                if (l < 8 || strcmp(de->d_name + l - 7, ".bundle") != 0)
                        continue;
                if (*n >= SVLOAD_DEVICES_MAX) {
                        closedir(d);
                        return -E2BIG;
                }
                if (asprintf(&paths[*n], "%s/%s", dir, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                (*n)++;
        }
        closedir(d);
        qsort(paths + first, *n - first, sizeof *paths, cmp_str);
        return 0;
}

/* Loads every bundle into the shared arena. */
static int load_devices(char **paths, size_t n, struct device **ret, size_t *ret_arena) {
        struct bundle *b = calloc(n, sizeof *b);
        struct device *devs;
        size_t arena = 0, off = 0;
        uint8_t *mem;
        int r = 0;

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned line = 0;

                r = bundle_file_load(paths[i], &b[i], &line);
                if (r < 0) {
                        fprintf(stderr, "svload: cannot load bundle '%s' (line %u): %s\n", paths[i], line,
                                strerror(-r));
                        goto out;
                }
                arena += vault_size(&b[i].params);
        }
        devs = mmap(NULL, n * sizeof *devs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        mem = mmap(NULL, arena, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (devs == MAP_FAILED || mem == MAP_FAILED) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                snprintf(devs[i].path, sizeof devs[i].path, "%s", paths[i]);
                memcpy(devs[i].server, b[i].server, sizeof devs[i].server);
                devs[i].params = b[i].params;
                devs[i].vault = mem + off;
                memcpy(devs[i].vault, b[i].vault, vault_size(&b[i].params));
                off += vault_size(&b[i].params);
        }
        *ret = devs;
        *ret_arena = arena;
out:
        for (size_t i = 0; i < n; i++)
                bundle_free(&b[i]);
        free(b);
        return r;
}

/* Writes the advanced vaults back (after the timed phase), each atomically. */
static int save_devices(const struct device *devs, size_t n) {
        int ret = 0;

        for (size_t i = 0; i < n; i++) {
                struct bundle b = { .params = devs[i].params, .kex = devs[i].params.kex, .vault = devs[i].vault };
                int r;

                memcpy(b.server, devs[i].server, sizeof b.server);
                r = bundle_file_save(devs[i].path, &b);
                if (r < 0) {
                        fprintf(stderr, "svload: cannot save bundle '%s': %s\n", devs[i].path, strerror(-r));
                        ret = r;
                }
        }
        return ret;
}

/* Room for `want` more descriptors: soft limit up to the hard one, the hard one too if root. */
static int raise_nofile(long want) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t) want)
                rl.rlim_max = (rlim_t) want;
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur < (rlim_t) want)
                rl.rlim_cur = (rlim_t) want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        return 0;
}

/* How many of the k idle connections are still open: neither refused (ERROR 3 and EOF) nor
 * closed by the server since. */
static long idle_alive(const int *fds, long k) {
        long alive = 0;

        for (long i = 0; i < k; i++) {
                char c;
                ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK);

                alive += r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
        return alive;
}

/* Opens k idle connections; returns how many are still open once the server accepted them. */
static long idle_open(const struct options *o, int *fds, long k) {
        for (long i = 0; i < k; i++) {
                fds[i] = connect_server(o);
                if (fds[i] < 0) {
                        fprintf(stderr, "svload: idle connection %ld: %s\n", i, strerror(-fds[i]));
                        return -1;
                }
        }
        usleep(500000);
        return idle_alive(fds, k);
}

static void usage(void) {
        fprintf(stderr,
                "usage: svload --server 127.0.0.1:PORT (--bundles DIR | BUNDLE...) [options]\n"
                "  -n N              timed handshakes in total (default 2000; 0 with --idle: hold only)\n"
                "  -c C              concurrent client processes (default 1)\n"
                "  -u U              un-timed warm-up handshakes per client (default 50)\n"
                "  -l LABEL          free text echoed in the result line\n"
                "  --server-pid PID  authserver's pid: server CPU and RSS from /proc/PID\n"
                "  --idle K          hold K idle connections open during the run\n"
                "  --hold S          with -n 0: hold the idle connections S seconds (default 1)\n"
                "  --timeout S       per-handshake time-out (default 10)\n"
                "  --no-save         do not write the advanced bundles back after the run\n"
                "  --records         one handshake per client, then -n DATA records in total over the\n"
                "                    clients' connections (-u: warm-up records per client)\n"
                "  --payload S       bytes per DATA record with --records (default 64)\n");
        exit(2);
}

int main(int argc, char *argv[]) {
        enum { ARG_SERVER = 0x100, ARG_BUNDLES, ARG_SERVER_PID, ARG_IDLE, ARG_HOLD, ARG_TIMEOUT, ARG_NO_SAVE,
               ARG_RECORDS, ARG_PAYLOAD };
        static const struct option options[] = {
                { "server",     required_argument, NULL, ARG_SERVER },
                { "bundles",    required_argument, NULL, ARG_BUNDLES },
                { "server-pid", required_argument, NULL, ARG_SERVER_PID },
                { "idle",       required_argument, NULL, ARG_IDLE },
                { "hold",       required_argument, NULL, ARG_HOLD },
                { "timeout",    required_argument, NULL, ARG_TIMEOUT },
                { "no-save",    no_argument,       NULL, ARG_NO_SAVE },
                { "records",    no_argument,       NULL, ARG_RECORDS },
                { "payload",    required_argument, NULL, ARG_PAYLOAD },
                { 0 }
        };
        struct options o = { .label = "-", .n = 2000, .warmup = 50, .conc = 1, .hold_s = 1,
                             .timeout_ms = 10000, .save = true, .payload = 64 };
        char **paths = calloc(SVLOAD_DEVICES_MAX, sizeof *paths);
        struct device *devs = NULL;
        struct shared *shm;
        size_t n_paths = 0, arena = 0;
        const char *server = NULL;
        pid_t *cpid;
        double *lat, t0, tend, wall, sum = 0;
        uint64_t scpu0 = 0, scpu1 = 0, ssched0 = 0, ssched1 = 0, ccpu = 0, ctx = 0, crx = 0;
        long long seg0, seg1;
        long total = 0, errors = 0, rss0 = -1, rss_idle = -1, rss1 = -1, alive = 0;
        int *idle_fds = NULL, ready[2], go[2], opt, r, fail = 0;

        if (!paths)
                return 1;
        while ((opt = getopt_long(argc, argv, "n:c:u:l:h", options, NULL)) >= 0)
                switch (opt) {
                case 'n': o.n = atol(optarg); break;
                case 'c': o.conc = atoi(optarg); break;
                case 'u': o.warmup = atol(optarg); break;
                case 'l': o.label = optarg; break;
                case ARG_SERVER: server = optarg; break;
                case ARG_BUNDLES:
                        r = list_bundles(optarg, paths, &n_paths);
                        if (r < 0) {
                                fprintf(stderr, "svload: cannot list bundles in '%s': %s\n", optarg, strerror(-r));
                                return 1;
                        }
                        break;
                case ARG_SERVER_PID: o.server_pid = (pid_t) atol(optarg); break;
                case ARG_IDLE: o.idle = atol(optarg); break;
                case ARG_HOLD: o.hold_s = (unsigned) atoi(optarg); break;
                case ARG_TIMEOUT: o.timeout_ms = atoi(optarg) * 1000; break;
                case ARG_NO_SAVE: o.save = false; break;
                case ARG_RECORDS: o.records = 1; break;
                case ARG_PAYLOAD: {
                        char *end;

                        errno = 0;
                        o.payload = (size_t) strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-' || o.payload > RECORD_PAYLOAD_MAX) {
                                fprintf(stderr, "svload: invalid --payload '%s': 0..%d bytes\n", optarg,
                                        (int) RECORD_PAYLOAD_MAX);
                                return 2;
                        }
                        break;
                }
                default: usage();
                }
        for (; optind < argc && n_paths < SVLOAD_DEVICES_MAX; optind++)
                paths[n_paths++] = strdup(argv[optind]);
        if (!server || parse_server(server, &o.addr) < 0) {
                fprintf(stderr, "svload: --server must be a loopback 127.x.y.z:PORT, got '%s'\n", server ? server : "");
                usage();
        }
        if (o.conc < 1 || o.conc > SVLOAD_CLIENTS_MAX || o.n < 0 || (o.n > 0 && o.n < o.conc) || o.warmup < 0 ||
            o.idle < 0 || o.idle > SVLOAD_IDLE_MAX || o.timeout_ms <= 0 || (o.n == 0 && o.idle == 0) ||
            o.payload > RECORD_PAYLOAD_MAX || (o.records && (o.n == 0 || o.idle > 0))) {
                fprintf(stderr, "svload: bad -n/-c/-u/--idle/--timeout/--payload\n");
                usage();
        }
        if (o.n > 0 && n_paths < (size_t) o.conc) {
                fprintf(stderr, "svload: %zu bundle(s) for %d clients: each client needs its own device\n",
                        n_paths, o.conc);
                return 2;
        }
        if (n_paths > 0 && load_devices(paths, n_paths, &devs, &arena) < 0)
                return 1;
        for (size_t i = 0; i < n_paths; i++)
                free(paths[i]);
        free(paths);
        signal(SIGPIPE, SIG_IGN);

        if (o.idle > 0) {
                r = raise_nofile(o.idle + 256);
                if (r < 0) {
                        fprintf(stderr, "svload: cannot raise RLIMIT_NOFILE to %ld: %s\n", o.idle + 256, strerror(-r));
                        return 1;
                }
                idle_fds = calloc((size_t) o.idle, sizeof *idle_fds);
                if (!idle_fds)
                        return 1;
                if (o.server_pid > 0)
                        rss0 = proc_rss_kb(o.server_pid);
                alive = idle_open(&o, idle_fds, o.idle);
                if (alive < 0)
                        return 1;
                if (o.server_pid > 0)
                        rss_idle = proc_rss_kb(o.server_pid);
                if (o.n == 0) {
                        sleep(o.hold_s);
                        alive = idle_alive(idle_fds, o.idle);
                        printf("bench=authserver_idle label=%s idle=%ld idle_alive=%ld hold_s=%u srv_rss0_kB=%ld "
                               "srv_rss_idle_kB=%ld srv_B_per_conn=%.0f\n", o.label, o.idle, alive, o.hold_s, rss0,
                               rss_idle, rss0 >= 0 && rss_idle >= 0 ? (double) (rss_idle - rss0) * 1024.0 / (double) o.idle
                                                                    : -1.0);
                        for (long i = 0; i < o.idle; i++)
                                close(idle_fds[i]);
                        return alive == o.idle ? 0 : 1;
                }
        }

        shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        lat = mmap(NULL, sizeof(double) * (size_t) o.n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cpid = calloc((size_t) o.conc, sizeof *cpid);
        if (shm == MAP_FAILED || lat == MAP_FAILED || !cpid || pipe(ready) < 0 || pipe(go) < 0) {
                perror("svload: setup");
                return 1;
        }
        memset(shm, 0, sizeof *shm);
        fflush(stdout);
        fflush(stderr);
        for (long i = 0, off = 0; i < o.conc; i++) {
                long nmine = o.n / o.conc + (i < o.n % o.conc ? 1 : 0);

                cpid[i] = fork();
                if (cpid[i] < 0) {
                        perror("svload: fork");
                        return 1;
                }
                if (cpid[i] == 0) {
                        for (long j = 0; j < o.idle; j++)
                                close(idle_fds[j]);
                        close(ready[0]);
                        close(go[1]);
                        if (o.records)
                                client_records(&o, shm, devs, lat + off, (int) i, nmine, ready[1], go[0]);
                        client_run(&o, shm, devs, n_paths, lat + off, (int) i, nmine, ready[1], go[0]);
                }
                off += nmine;
        }
        close(ready[1]);
        close(go[0]);
        for (int nready = 0; nready < o.conc;) {
                char c;
                ssize_t k = read(ready[0], &c, 1);

                if (k == 1) {
                        nready++;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                fail = 1;       /* a client died in its warm-up */
                break;
        }
        /* Let the server finish the warm-up's last M5s before its CPU is sampled. */
        usleep(20000);
        seg0 = tcp_outsegs();
        if (o.server_pid > 0) {
                if (proc_cpu_ns(o.server_pid, &scpu0) < 0)
                        fprintf(stderr, "svload: cannot read /proc/%d/stat\n", (int) o.server_pid);
                ssched0 = proc_sched_ns(o.server_pid);
        }
        t0 = now_s();
        close(go[1]);   /* release the barrier */

        for (int i = 0; i < o.conc; i++) {
                int st;

                while (waitpid(cpid[i], &st, 0) < 0 && errno == EINTR)
                        ;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        fail = 1;
        }
        free(cpid);
        tend = t0;
        for (int i = 0; i < o.conc; i++) {
                total += shm->cli[i].done;
                errors += shm->cli[i].errors;
                if (shm->cli[i].t_end > tend)
                        tend = shm->cli[i].t_end;
                ccpu += shm->cli[i].cpu_ns;
                ctx += shm->cli[i].tx;
                crx += shm->cli[i].rx;
        }
        /* The server reads the last M5s after the clients closed: give it that moment. */
        usleep(20000);
        seg1 = tcp_outsegs();
        if (o.server_pid > 0) {
                (void) proc_cpu_ns(o.server_pid, &scpu1);
                ssched1 = proc_sched_ns(o.server_pid);
                rss1 = proc_rss_kb(o.server_pid);
        }
        if (o.idle > 0)
                alive = idle_alive(idle_fds, o.idle);

        wall = tend - t0;
        /* Latencies are packed per client; a client that gave up left its tail unused. */
        {
                long packed = 0, off = 0;

                for (int i = 0; i < o.conc; i++) {
                        long nmine = o.n / o.conc + (i < o.n % o.conc ? 1 : 0);

                        memmove(lat + packed, lat + off, sizeof(double) * (size_t) shm->cli[i].done);
                        packed += shm->cli[i].done;
                        off += nmine;
                }
        }
        qsort(lat, (size_t) total, sizeof(double), cmp_dbl);
        for (long i = 0; i < total; i++)
                sum += lat[i];
        {
                double dn = total > 0 ? (double) total : 1.0;
                double srv = o.server_pid > 0 ? (double) (scpu1 - scpu0) / dn / 1e3 : -1.0;
                double sched = o.server_pid > 0 && ssched1 ? (double) (ssched1 - ssched0) / dn / 1e3 : -1.0;

                const char *kex = n_paths && devs[0].params.kex == SV_KEX_X25519 ? "x25519" : "none";

                if (o.records)
                        printf("bench=authserver_records label=%s C=%d payload_B=%zu n=%ld wall_s=%.4f rate_rec=%.1f "
                               "us_per_rec=%.2f lat_mean_us=%.2f lat_p50_us=%.2f lat_p90_us=%.2f lat_p99_us=%.2f "
                               "lat_max_us=%.2f cli_cpu_us=%.2f srv_cpu_us=%.2f srv_sched_us=%.2f c2s_B=%.1f "
                               "s2c_B=%.1f segs=%.2f kex=%s errors=%ld\n",
                               o.label, o.conc, o.payload, total, wall, dn / wall, wall / dn * 1e6, sum / dn * 1e6,
                               pct(lat, total, 0.50) * 1e6, pct(lat, total, 0.90) * 1e6, pct(lat, total, 0.99) * 1e6,
                               total ? lat[total - 1] * 1e6 : 0, (double) ccpu / dn / 1e3, srv, sched,
                               (double) ctx / dn, (double) crx / dn,
                               seg0 >= 0 && seg1 >= 0 ? (double) (seg1 - seg0) / dn : -1.0, kex, errors);
                else
                        printf("bench=authserver label=%s C=%d W=1 pin=none n=%ld wall_s=%.4f rate_hs=%.1f "
                               "lat_mean_us=%.2f lat_p50_us=%.2f lat_p90_us=%.2f lat_p99_us=%.2f lat_max_us=%.2f "
                               "cli_cpu_us=%.2f srv_cpu_us=%.2f srv_sched_us=%.2f tot_cpu_us=%.2f srv_util=%.3f "
                               "cli_util=%.3f c2s_B=%.1f s2c_B=%.1f segs=%.2f devices=%zu vault_B=%zu kex=%s idle=%ld "
                               "idle_alive=%ld srv_rss0_kB=%ld srv_rss_idle_kB=%ld srv_rss_kB=%ld errors=%ld\n",
                               o.label, o.conc, total, wall, dn / wall, sum / dn * 1e6, pct(lat, total, 0.50) * 1e6,
                               pct(lat, total, 0.90) * 1e6, pct(lat, total, 0.99) * 1e6, total ? lat[total - 1] * 1e6 : 0,
                               (double) ccpu / dn / 1e3, srv, sched, (double) ccpu / dn / 1e3 + (srv > 0 ? srv : 0),
                               o.server_pid > 0 ? (double) (scpu1 - scpu0) / 1e9 / wall : -1.0,
                               (double) ccpu / 1e9 / wall, (double) ctx / dn, (double) crx / dn,
                               seg0 >= 0 && seg1 >= 0 ? (double) (seg1 - seg0) / dn : -1.0, n_paths,
                               n_paths ? vault_size(&devs[0].params) : 0, kex, o.idle, alive, rss0, rss_idle, rss1,
                               errors);
                fflush(stdout);
        }
        for (long i = 0; i < o.idle; i++)
                close(idle_fds[i]);
        if (o.save && save_devices(devs, n_paths) < 0)
                fail = 1;
        if (fail || errors || (o.idle > 0 && alive != o.idle)) {
                fprintf(stderr, "svload: FAILED (client failure=%d errors=%ld idle alive %ld of %ld)\n", fail, errors,
                        alive, o.idle);
                return 1;
        }
        return 0;
}
