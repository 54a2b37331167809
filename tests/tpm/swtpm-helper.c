/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "swtpm-helper.h"

/* How long to wait for the daemon to come up or go away (it takes ~15 ms). */
#define SWTPM_WAIT_MS 5000

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int is_executable(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int swtpm_find(char *buf, size_t size) {
        const char *env = getenv("SWTPM"), *path;

        if (env && *env) {
                if (!is_executable(env) || (size_t) snprintf(buf, size, "%s", env) >= size)
                        return -ENOENT;
                return 0;
        }

        path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");
                int k = snprintf(buf, size, "%.*s/swtpm", (int) n, path);

                if (n > 0 && k > 0 && (size_t) k < size && is_executable(buf))
                        return 0;
                path += n;
                if (*path == ':')
                        path++;
        }
        return -ENOENT;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        (void) remove(path);
        return 0;
}

static void rm_rf(const char *dir) {
        (void) nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The daemon is not our child (swtpm --daemon forks and its parent exits), so waitpid() cannot
 * tell us it is gone: look at it. A zombie waiting for PID 1 to reap it counts as gone. */
static int pid_alive(pid_t pid) {
        char path[64], buf[512];
        const char *p;
        ssize_t n;
        int fd;

        if (kill(pid, 0) < 0 && errno == ESRCH)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno != ENOENT;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 1;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

static pid_t read_pid(const char *dir) {
        char path[SWTPM_DIR_MAX + 8], buf[32];
        ssize_t n;
        long v;
        char *end;
        int fd;

        snprintf(path, sizeof(path), "%s/pid", dir);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || (*end != '\0' && *end != '\n') || v <= 1 || v > INT_MAX)
                return 0;
        return (pid_t) v;
}

static int make_dir(char *buf, size_t size) {
        const char *tmp = getenv("TMPDIR");
        char abs[PATH_MAX];

        if (!tmp || !*tmp)
                tmp = "/tmp";
        /* --daemon chdirs to /: a relative state directory would put the TPM in failure mode. */
        if (!realpath(tmp, abs))
                return -errno;
        if ((size_t) snprintf(buf, size, "%s/swtpm.XXXXXX", abs) >= size)
                return -ENAMETOOLONG;
        if (!mkdtemp(buf))
                return -errno;
        return 0;
}

int swtpm_start(struct swtpm *ret) {
        struct swtpm s = { .pid = 0 };
        char bin[PATH_MAX], server[SWTPM_DIR_MAX + 32], ctrl[SWTPM_DIR_MAX + 40];
        char state[SWTPM_DIR_MAX + 16], pidfile[SWTPM_DIR_MAX + 16], sock[SWTPM_DIR_MAX + 8];
        int r, status;
        pid_t child;

        r = swtpm_find(bin, sizeof(bin));
        if (r < 0)
                return r;
        r = make_dir(s.dir, sizeof(s.dir));
        if (r < 0)
                return r;

        snprintf(sock, sizeof(sock), "%s/sock", s.dir);
        snprintf(server, sizeof(server), "type=unixio,path=%s/sock", s.dir);
        snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s/sock.ctrl", s.dir);
        snprintf(state, sizeof(state), "dir=%s", s.dir);
        snprintf(pidfile, sizeof(pidfile), "file=%s/pid", s.dir);
        snprintf(s.tcti, sizeof(s.tcti), "swtpm:path=%s", sock);

        const char *argv[] = {
                bin, "socket", "--tpm2", "--daemon",
                "--server", server, "--ctrl", ctrl, "--tpmstate", state,
                "--flags", "not-need-init,startup-clear", "--pid", pidfile, NULL,
        };

        child = fork();
        if (child < 0) {
                r = -errno;
                goto fail;
        }
        if (child == 0) {
                /* Our stdout is the TAP stream: nothing of swtpm's may land there. */
                int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
                        _exit(126);
                execv(bin, (char *const *) argv);
                _exit(127);
        }
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR) {
                        r = -errno;
                        goto fail;
                }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                r = -EIO;
                goto fail;
        }

        for (unsigned ms = 0; ; ms++) {
                /* Ready when both are there: the socket to use it, the pid file to stop it. */
                if (access(sock, F_OK) == 0) {
                        s.pid = read_pid(s.dir);
                        if (s.pid > 0)
                                break;
                }
                if (ms >= SWTPM_WAIT_MS) {
                        r = -ETIMEDOUT;
                        goto fail;
                }
                sleep_ms(1);
        }

        *ret = s;
        return 0;

fail:
        swtpm_stop(&s);
        return r;
}

void swtpm_stop(struct swtpm *s) {
        pid_t pid = s->pid;

        /* The pid file is the truth even if start gave up waiting for the socket. */
        if (pid <= 0 && s->dir[0])
                pid = read_pid(s->dir);
        if (pid > 0 && kill(pid, SIGTERM) == 0) {
                unsigned ms;

                for (ms = 0; ms < SWTPM_WAIT_MS && pid_alive(pid); ms++)
                        sleep_ms(1);
                if (pid_alive(pid)) {
                        (void) kill(pid, SIGKILL);
                        for (ms = 0; ms < SWTPM_WAIT_MS && pid_alive(pid); ms++)
                                sleep_ms(1);
                }
        }
        if (s->dir[0])
                rm_rf(s->dir);
        s->dir[0] = '\0';
        s->tcti[0] = '\0';
        s->pid = 0;
}
