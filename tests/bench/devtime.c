/* SPDX-License-Identifier: MIT */
/*
 * devtime: times one or more commands from their process start to their exit, and optionally
 * the one TPM command of a device authentication alone, interleaved (tests/bench/run, section
 * "device"; docs/benchmarks.md, "Device side").
 *
 *   devtime --runs N [--warmup W] [--tcti TCTI] [--commit-dir DIR [--commit-size B]]
 *           -- LABEL CMD [ARGS...] [:: LABEL CMD [ARGS...]]...
 *
 * Each round runs every command once, in the order given (A B A B ...: before/after pairs see
 * the same load), each timed from just before posix_spawn() to wait4()'s return on
 * CLOCK_MONOTONIC, its stdout on /dev/null; then, with --tcti, one counter bump on that TPM:
 * the same TPM2_NV_Increment in the same salted HMAC session that vaultd sends per
 * authentication, through vaultd's own TPM layer (libvaulttpm.a), on a counter of its own that
 * it defines first and undefines at the end. With --commit-dir, then one durable replacement of
 * a B-byte file in DIR (default 4478, a 4 KiB vault's file) as vaultd/storage.c does it: a new
 * file (O_EXCL), write, fsync, rename over the old one, fsync of the directory. These two are
 * the floor of an authentication; the rest is the difference. Prints one key=value line per
 * command, one for the TPM and one for the file:
 *
 *   bench=devicectl_authenticate label=LABEL runs=N wall_mean_us= wall_p50_us= wall_p90_us=
 *         wall_p99_us= wall_max_us= cpu_p50_us= errors=
 *   bench=tpm_bump label=tpm runs=N wall_mean_us= wall_p50_us= wall_p90_us= ... errors=
 *   bench=file_commit label=commit runs=N wall_mean_us= wall_p50_us= wall_p90_us= ... errors=
 *
 * cpu is the child's user + system time (wait4's rusage). Exit 0, or 2 on a usage error,
 * 1 when the TPM part cannot be set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "tpm.h"

extern char **environ;

#define CMDS_MAX 8

struct cmd {
        const char *label;
        char **argv;
        double *wall, *cpu;
        long errors;
};

static int spawn_timed(struct cmd *c, long i, const posix_spawn_file_actions_t *fa) {
        struct rusage ru;
        double t0, t1;
        pid_t pid;
        int status, r;

        t0 = now_s();
        r = posix_spawn(&pid, c->argv[0], fa, NULL, c->argv, environ);
        if (r != 0) {
                fprintf(stderr, "devtime: cannot run %s: %s\n", c->argv[0], strerror(r));
                return -r;
        }
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        return -errno;
        t1 = now_s();
        if (i >= 0) {
                c->wall[i] = (t1 - t0) * 1e6;
                c->cpu[i] = (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                            (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        c->errors++;
        }
        return 0;
}

#define COMMIT_FILE "devtime.commit"

/* vaultd/storage.c's durable replacement of its vault file, on a file of our own in dirfd. */
static int commit_file(int dirfd, const uint8_t *buf, size_t len) {
        const char *tmp = "devtime.commit.tmp";
        int fd, r = 0;

        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, buf, len) != (ssize_t) len || fsync(fd) < 0)
                r = -EIO;
        if (close(fd) < 0 && r == 0)
                r = -EIO;
        if (r == 0 && renameat(dirfd, tmp, dirfd, COMMIT_FILE) < 0)
                r = -errno;
        if (r == 0 && fsync(dirfd) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(dirfd, tmp, 0);
        return r;
}

static void report(const char *bench, const char *label, double *v, double *cpu, long n, long errors) {
        double sum = 0;

        for (long i = 0; i < n; i++)
                sum += v[i];
        qsort(v, (size_t) n, sizeof *v, cmp_dbl);
        printf("bench=%s label=%s runs=%ld wall_mean_us=%.0f wall_p50_us=%.0f wall_p90_us=%.0f wall_p99_us=%.0f "
               "wall_max_us=%.0f", bench, label, n, n ? sum / (double) n : 0, pct(v, n, 0.50), pct(v, n, 0.90),
               pct(v, n, 0.99), n ? v[n - 1] : 0);
        if (cpu) {
                qsort(cpu, (size_t) n, sizeof *cpu, cmp_dbl);
                printf(" cpu_p50_us=%.0f", pct(cpu, n, 0.50));
        }
        printf(" errors=%ld\n", errors);
}

static void usage(void) {
        fprintf(stderr, "usage: devtime --runs N [--warmup W] [--tcti TCTI] [--commit-dir DIR [--commit-size B]] -- LABEL CMD [ARGS...] [:: LABEL CMD [ARGS...]]...\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "runs",   required_argument, NULL, 'n' },
                { "warmup", required_argument, NULL, 'w' },
                { "tcti",   required_argument, NULL, 't' },
                { "commit-dir",  required_argument, NULL, 'd' },
                { "commit-size", required_argument, NULL, 's' },
                { 0 }
        };
        uint8_t auth[TPM_COUNTER_AUTH_SIZE];
        struct cmd cmds[CMDS_MAX] = { 0 };
        posix_spawn_file_actions_t fa;
        struct tpm_ctx *tpm = NULL;
        const char *tcti = NULL;
        long runs = 100, warmup = 1, tpm_errors = 0, commit_size = 4478, commit_errors = 0;
        double *tpm_wall = NULL, *commit_wall = NULL;
        const char *commit_dir = NULL;
        uint8_t *commit_buf = NULL;
        int dirfd = -1;
        uint32_t index = 0;
        uint64_t value;
        size_t n_cmds = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        runs = strtol(optarg, NULL, 10);
                        break;
                case 'w':
                        warmup = strtol(optarg, NULL, 10);
                        break;
                case 't':
                        tcti = optarg;
                        break;
                case 'd':
                        commit_dir = optarg;
                        break;
                case 's':
                        commit_size = strtol(optarg, NULL, 10);
                        break;
                default:
                        usage();
                        return 2;
                }
        if (runs < 1 || runs > 1000000 || warmup < 0 || warmup > 1000 || commit_size < 1 ||
            commit_size > (1L << 24)) {
                usage();
                return 2;
        }
        /* LABEL CMD ARGS... groups, separated by "::" (argv is ours to cut). */
        for (int i = optind; i < argc;) {
                int j = i;

                while (j < argc && strcmp(argv[j], "::") != 0)
                        j++;
                if (j - i < 2 || n_cmds == CMDS_MAX) {
                        usage();
                        return 2;
                }
                cmds[n_cmds].label = argv[i];
                cmds[n_cmds].argv = argv + i + 1;
                cmds[n_cmds].wall = calloc((size_t) runs, sizeof(double));
                cmds[n_cmds].cpu = calloc((size_t) runs, sizeof(double));
                if (!cmds[n_cmds].wall || !cmds[n_cmds].cpu)
                        return 1;
                n_cmds++;
                if (j < argc)
                        argv[j++] = NULL;
                i = j;
        }
        if (n_cmds == 0) {
                usage();
                return 2;
        }

        if (tcti) {
                /* As vaultd sets OpenSSL up, so that the bump costs what it costs there. */
                if (tpm_openssl_init() < 0)
                        return 1;
                /* tss2 logs to stderr by default (the failed probes of a free index too). */
                if (setenv("TSS2_LOG", "all+none", 0) < 0)
                        return 1;
                for (size_t i = 0; i < sizeof auth; i++)
                        auth[i] = (uint8_t) (0xa5 ^ i);
                r = tpm_open(tcti, &tpm);
                if (r < 0) {
                        fprintf(stderr, "devtime: tpm_open: %s\n", tpm_last_error(NULL));
                        return 1;
                }
                r = tpm_counter_define(tpm, auth, &index, &value);
                if (r >= 0)
                        r = tpm_counter_bind(tpm, index, auth);
                if (r < 0) {
                        fprintf(stderr, "devtime: TPM counter: %s\n", tpm_last_error(tpm));
                        if (index)
                                (void) tpm_counter_undefine(tpm, index);
                        tpm_close(tpm);
                        return 1;
                }
                tpm_wall = calloc((size_t) runs, sizeof(double));
                if (!tpm_wall)
                        return 1;
        }

        if (commit_dir) {
                dirfd = open(commit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                commit_wall = calloc((size_t) runs, sizeof(double));
                commit_buf = malloc((size_t) commit_size);
                if (dirfd < 0 || !commit_wall || !commit_buf) {
                        fprintf(stderr, "devtime: %s: %s\n", commit_dir, strerror(errno));
                        return 1;
                }
                memset(commit_buf, 0x5a, (size_t) commit_size);
        }

        if (posix_spawn_file_actions_init(&fa) != 0 ||
            posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0) != 0)
                return 1;
        for (long i = -warmup; i < runs; i++) {
                for (size_t k = 0; k < n_cmds; k++)
                        if (spawn_timed(&cmds[k], i, &fa) < 0)
                                return 1;
                if (tpm) {
                        double t0 = now_s();

                        r = tpm_counter_bump(tpm);
                        if (i >= 0) {
                                tpm_wall[i] = (now_s() - t0) * 1e6;
                                if (r < 0)
                                        tpm_errors++;
                        }
                }
                if (dirfd >= 0) {
                        double t0 = now_s();

                        r = commit_file(dirfd, commit_buf, (size_t) commit_size);
                        if (i >= 0) {
                                commit_wall[i] = (now_s() - t0) * 1e6;
                                if (r < 0)
                                        commit_errors++;
                        }
                }
        }
        posix_spawn_file_actions_destroy(&fa);

        for (size_t k = 0; k < n_cmds; k++) {
                report("devicectl_authenticate", cmds[k].label, cmds[k].wall, cmds[k].cpu, runs, cmds[k].errors);
                free(cmds[k].wall);
                free(cmds[k].cpu);
        }
        if (tpm) {
                report("tpm_bump", "tpm", tpm_wall, NULL, runs, tpm_errors);
                free(tpm_wall);
                if (tpm_counter_undefine(tpm, index) < 0)
                        fprintf(stderr, "devtime: could not undefine counter 0x%08x: %s\n", index, tpm_last_error(tpm));
                tpm_close(tpm);
        }
        if (dirfd >= 0) {
                report("file_commit", "commit", commit_wall, NULL, runs, commit_errors);
                (void) unlinkat(dirfd, COMMIT_FILE, 0);
                close(dirfd);
                free(commit_wall);
                free(commit_buf);
        }
        return 0;
}
