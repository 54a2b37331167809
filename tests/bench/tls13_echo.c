/* SPDX-License-Identifier: MIT */
/*
 * tls13_echo: the TLS 1.3 baseline for the data channel benchmark (tests/bench/run, records).
 * Our own tool, not part of the shared peer kit in peer/ (which measures handshakes only).
 *
 *   tls13_echo [-m psk_dhe_ke|psk_ke] [-n N] [-u U] [-s S] [-r R] [-l LABEL]
 *
 * One TLS 1.3 connection with an external PSK over loopback (TLS_AES_128_GCM_SHA256, no
 * tickets, no middlebox compatibility, as tls13_psk_bench), between this process (client)
 * and one forked server process. After the handshake and U un-timed warm-up round trips, N
 * timed round trips, one in flight: the client writes S bytes (one SSL_write, one TLS
 * record), the server reads them and writes R bytes back (default R = S: an echo). The run
 * script passes R = the length of authserver's answer, so that both sides move the same
 * bytes per round trip as svload --records.
 *
 * Measured as svload --records: wall time of the timed phase, latency per round trip at
 * the client, client CPU (getrusage), server CPU (getrusage of the server process over
 * exactly the timed round trips, counted by the server), TLS bytes each way per round trip
 * (TCP payload), TCP segments per round trip (/proc/net/snmp, both directions). Prints one
 * `key=value` line (bench=tls13_echo).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define ECHO_MAX        16384   /* one TLS record */

static const unsigned char psk_id[] = "device-0001";
static const unsigned char psk_key[32] = {
        0x6b, 0x3a, 0x1f, 0x90, 0x22, 0x4c, 0x7e, 0x15, 0xa8, 0x01, 0xd3, 0x5e, 0x9b, 0x44, 0x0c, 0xf2,
        0x31, 0x87, 0x6d, 0xe0, 0x5a, 0x19, 0xbb, 0x72, 0x08, 0xc6, 0x4f, 0x93, 0x2e, 0xd1, 0x67, 0xa5,
};
static const unsigned char tls13_aes128gcm[2] = { 0x13, 0x01 };

struct bytes {
        uint64_t tx, rx;
};

/* Filled by the server process (MAP_SHARED). */
struct server_result {
        uint64_t cpu_ns;
        int ok;
};

static SSL_SESSION *psk_session;
static bool dhe = true;

static uint64_t cpu_ns(void) {
        struct rusage r;

        getrusage(RUSAGE_SELF, &r);
        return (uint64_t) (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000000ull +
               (uint64_t) (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1000ull;
}

static long count_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                     size_t *processed) {
        struct bytes *c = (struct bytes *) BIO_get_callback_arg(b);

        (void) argp, (void) len, (void) argi, (void) argl;
        if (c && ret > 0 && processed) {
                if (oper == (BIO_CB_READ | BIO_CB_RETURN))
                        c->rx += *processed;
                else if (oper == (BIO_CB_WRITE | BIO_CB_RETURN))
                        c->tx += *processed;
        }
        return ret;
}

static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess) {
        (void) ssl;
        if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(psk_session))) {
                *id = NULL, *idlen = 0, *sess = NULL;
                return 1;
        }
        SSL_SESSION_up_ref(psk_session);
        *sess = psk_session;
        *id = psk_id;
        *idlen = sizeof psk_id - 1;
        return 1;
}

static int find_session_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess) {
        (void) ssl;
        *sess = NULL;
        if (idlen == sizeof psk_id - 1 && memcmp(id, psk_id, idlen) == 0) {
                SSL_SESSION_up_ref(psk_session);
                *sess = psk_session;
        }
        return 1;
}

/* The context of tls13_psk_bench: TLS 1.3 only, one suite, no tickets, no compat mode. */
static SSL_CTX *make_ctx(bool server) {
        SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        const SSL_CIPHER *c;
        SSL *tmp;

        if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
            !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
            !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256"))
                return NULL;
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
        if (!dhe)
                SSL_CTX_set_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
        /* psk_ke: the server's groups do not overlap the client's (see tls13_psk_bench). */
        if (!SSL_CTX_set1_groups_list(ctx, server && !dhe ? "P-256" : "X25519"))
                return NULL;
        if (server) {
                SSL_CTX_set_num_tickets(ctx, 0);
                SSL_CTX_set_psk_find_session_callback(ctx, find_session_cb);
        } else
                SSL_CTX_set_psk_use_session_callback(ctx, use_session_cb);
        tmp = SSL_new(ctx);
        c = tmp ? SSL_CIPHER_find(tmp, tls13_aes128gcm) : NULL;
        psk_session = SSL_SESSION_new();
        if (!c || !psk_session || !SSL_SESSION_set1_master_key(psk_session, psk_key, sizeof psk_key) ||
            !SSL_SESSION_set_cipher(psk_session, c) || !SSL_SESSION_set_protocol_version(psk_session, TLS1_3_VERSION)) {
                SSL_free(tmp);
                return NULL;
        }
        SSL_free(tmp);
        return ctx;
}

static SSL *new_ssl(SSL_CTX *ctx, int fd, struct bytes *b) {
        SSL *ssl = SSL_new(ctx);
        BIO *bio = BIO_new_socket(fd, BIO_NOCLOSE);

        if (!ssl || !bio) {
                SSL_free(ssl);
                BIO_free(bio);
                return NULL;
        }
        BIO_set_callback_ex(bio, count_cb);
        BIO_set_callback_arg(bio, (char *) b);
        SSL_set_bio(ssl, bio, bio);
        return ssl;
}

static int read_full(SSL *ssl, unsigned char *buf, size_t len) {
        for (size_t got = 0; got < len;) {
                int k = SSL_read(ssl, buf + got, (int) (len - got));

                if (k <= 0)
                        return -1;
                got += (size_t) k;
        }
        return 0;
}

/* The server process: one connection, answers R bytes to each S bytes until close_notify. */
static int serve(int lfd, long warmup, long n, size_t s, size_t r, struct server_result *res) {
        unsigned char in[ECHO_MAX], out[ECHO_MAX];
        struct bytes b = { 0 };
        SSL_CTX *ctx = make_ctx(true);
        uint64_t c0 = 0;
        SSL *ssl;
        int fd, k, one = 1;

        fd = accept(lfd, NULL, NULL);
        if (!ctx || fd < 0)
                return 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssl = new_ssl(ctx, fd, &b);
        if (!ssl || SSL_accept(ssl) != 1)
                return 1;
        memset(out, 'y', r);
        for (long i = 0; i < warmup + n; i++) {
                /* The timed phase starts with the first round trip after the warm-up. */
                if (i == warmup)
                        c0 = cpu_ns();
                if (read_full(ssl, in, s) < 0 || SSL_write(ssl, out, (int) r) != (int) r)
                        return 1;
        }
        res->cpu_ns = cpu_ns() - c0;
        /* Then the client's close_notify, and nothing else. */
        k = SSL_read(ssl, in, 1);
        if (k > 0 || SSL_get_error(ssl, k) != SSL_ERROR_ZERO_RETURN)
                return 1;
        (void) SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
        SSL_CTX_free(ctx);
        res->ok = 1;
        return 0;
}

static void usage(void) {
        fprintf(stderr, "usage: tls13_echo [-m psk_dhe_ke|psk_ke] [-n N] [-u U] [-s S] [-r R] [-l LABEL]\n"
                        "  one TLS 1.3 PSK connection, U warm-up and N timed round trips of S bytes up, R down\n");
        exit(2);
}

int main(int argc, char *argv[]) {
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof addr;
        long n = 10000, warmup = 500, s = 64, r = -1;
        const char *label = "-";
        unsigned char msg[ECHO_MAX], buf[ECHO_MAX];
        struct server_result *res;
        struct bytes b = { 0 };
        double *lat, t0, wall, sum = 0;
        long long seg0, seg1;
        uint64_t c0, c1, tx0, rx0;
        SSL_CTX *ctx;
        SSL *ssl;
        EVP_PKEY *pk = NULL;
        pid_t pid;
        int lfd, fd, opt, st, one = 1, fail = 0;

        while ((opt = getopt(argc, argv, "m:n:u:s:r:l:h")) >= 0)
                switch (opt) {
                case 'm':
                        if (strcmp(optarg, "psk_dhe_ke") == 0)
                                dhe = true;
                        else if (strcmp(optarg, "psk_ke") == 0)
                                dhe = false;
                        else
                                usage();
                        break;
                case 'n': n = atol(optarg); break;
                case 'u': warmup = atol(optarg); break;
                case 's': s = atol(optarg); break;
                case 'r': r = atol(optarg); break;
                case 'l': label = optarg; break;
                default: usage();
                }
        if (r < 0)
                r = s;
        if (n < 1 || warmup < 0 || s < 1 || s > ECHO_MAX || r < 1 || r > ECHO_MAX)
                usage();
        signal(SIGPIPE, SIG_IGN);
        res = mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        lat = calloc((size_t) n, sizeof *lat);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (res == MAP_FAILED || !lat || lfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
            listen(lfd, 1) < 0 || getsockname(lfd, (struct sockaddr *) &addr, &alen) < 0) {
                perror("tls13_echo: setup");
                return 1;
        }
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                perror("tls13_echo: fork");
                return 1;
        }
        if (pid == 0) {
                int k = serve(lfd, warmup, n, (size_t) s, (size_t) r, res);

                if (k)
                        ERR_print_errors_fp(stderr);
                _exit(k);
        }
        close(lfd);

        ctx = make_ctx(false);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (!ctx || fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
                perror("tls13_echo: connect");
                kill(pid, SIGTERM);
                return 1;
        }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssl = new_ssl(ctx, fd, &b);
        if (!ssl || SSL_connect(ssl) != 1) {
                ERR_print_errors_fp(stderr);
                kill(pid, SIGTERM);
                return 1;
        }
        if (!SSL_session_reused(ssl) || (SSL_get_peer_tmp_key(ssl, &pk) == 1) != dhe) {
                fprintf(stderr, "tls13_echo: negotiated mode is not the requested one\n");
                kill(pid, SIGTERM);
                return 1;
        }
        EVP_PKEY_free(pk);
        memset(msg, 'x', (size_t) s);
        for (long i = 0; i < warmup && !fail; i++)
                fail = SSL_write(ssl, msg, (int) s) != (int) s || read_full(ssl, buf, (size_t) r) < 0;

        usleep(20000);  /* let the server settle before the segment count starts */
        seg0 = tcp_outsegs();
        tx0 = b.tx, rx0 = b.rx;
        c0 = cpu_ns();
        t0 = now_s();
        for (long i = 0; i < n && !fail; i++) {
                double t = now_s();

                fail = SSL_write(ssl, msg, (int) s) != (int) s || read_full(ssl, buf, (size_t) r) < 0;
                lat[i] = now_s() - t;
        }
        wall = now_s() - t0;
        c1 = cpu_ns();
        seg1 = tcp_outsegs();
        if (!fail && SSL_shutdown(ssl) < 0)
                fail = 1;
        SSL_free(ssl);
        close(fd);
        SSL_CTX_free(ctx);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (fail || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !res->ok) {
                ERR_print_errors_fp(stderr);
                fprintf(stderr, "tls13_echo: FAILED\n");
                return 1;
        }
        qsort(lat, (size_t) n, sizeof *lat, cmp_dbl);
        for (long i = 0; i < n; i++)
                sum += lat[i];
        printf("bench=tls13_echo label=%s mode=%s payload_B=%ld reply_B=%ld n=%ld wall_s=%.4f rate_rec=%.1f "
               "us_per_rec=%.2f lat_mean_us=%.2f lat_p50_us=%.2f lat_p90_us=%.2f lat_p99_us=%.2f lat_max_us=%.2f "
               "cli_cpu_us=%.2f srv_cpu_us=%.2f c2s_B=%.1f s2c_B=%.1f segs=%.2f errors=0\n",
               label, dhe ? "psk_dhe_ke" : "psk_ke", s, r, n, wall, (double) n / wall, wall / (double) n * 1e6,
               sum / (double) n * 1e6, pct(lat, n, 0.50) * 1e6, pct(lat, n, 0.90) * 1e6, pct(lat, n, 0.99) * 1e6,
               lat[n - 1] * 1e6, (double) (c1 - c0) / (double) n / 1e3, (double) res->cpu_ns / (double) n / 1e3,
               (double) (b.tx - tx0) / (double) n, (double) (b.rx - rx0) / (double) n,
               seg0 >= 0 && seg1 >= 0 ? (double) (seg1 - seg0) / (double) n : -1.0);
        free(lat);
        return 0;
}
