/* SPDX-License-Identifier: MIT */
/*
 * Test client: pokes vaultd's socket the way no well-behaved client does, to test how vaultd
 * copes with its connections (tests/vaultd/fdleak.test, peercred.test):
 *
 *   sockpoke SOCK empty-fds N     N connections, each sends one empty packet carrying
 *                                 PASS_FDS descriptors; vaultd must close each connection
 *   sockpoke SOCK bad-fds N       the same with a 1-byte (undecodable) packet
 *   sockpoke SOCK status-fds N    the same with a valid STATUS request; vaultd must answer
 *                                 IPC_BAD_REQUEST ("unexpected file descriptors")
 *   sockpoke SOCK idle SECONDS    one connection that sends nothing; vaultd must close it within
 *                                 SECONDS; prints the seconds it took
 *   sockpoke SOCK hold N SECONDS  opens up to N connections without sending anything, holds them
 *                                 SECONDS, closes them; prints how many connect()s succeeded
 *
 * Exit: 0 as expected, 1 not as expected (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

/* Descriptors sent with each packet: vaultd's own cap (PASSED_FDS_MAX). */
#define PASS_FDS 4
/* How long to wait for vaultd's answer or close in the packet modes. */
#define ANSWER_TIMEOUT_MS 5000
#define HOLD_MAX 1024

static const char *sock_path;

static int connect_vaultd(int flags) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(sock_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

static int send_with_fds(int fd, const void *data, size_t len) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(PASS_FDS * sizeof(int))];
        } control = { 0 };
        struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = control.buf, .msg_controllen = sizeof control.buf,
        };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        int fds[PASS_FDS], r = 0;

        for (size_t i = 0; i < PASS_FDS; i++) {
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fds[i] < 0) {
                        r = -errno;
                        while (i-- > 0)
                                close(fds[i]);
                        return r;
                }
        }
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(PASS_FDS * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, sizeof fds);
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                r = -errno;
        for (size_t i = 0; i < PASS_FDS; i++)
                close(fds[i]);
        return r;
}

/* Waits up to timeout_ms for a packet: > 0 its length (in buf), 0 vaultd closed, < 0 error or
 * -ETIMEDOUT. */
static ssize_t wait_packet(int fd, uint8_t *buf, size_t cap, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;
        int r;

        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n < 0)
                return errno == ECONNRESET ? 0 : -errno;
        return n;
}

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int poke(const char *mode, unsigned n) {
        static const uint8_t bad[1] = { 0xff };
        uint8_t status_req[IPC_PACKET_MAX], buf[IPC_PACKET_MAX];
        struct ipc_request req = { .op = IPC_OP_STATUS };
        struct ipc_reply rep;
        size_t req_len;
        int r;

        r = ipc_encode_request(&req, status_req, sizeof status_req, &req_len);
        if (r < 0) {
                fprintf(stderr, "sockpoke: cannot encode STATUS: %s\n", strerror(-r));
                return 1;
        }
        for (unsigned i = 0; i < n; i++) {
                ssize_t got;
                int fd;

                fd = connect_vaultd(0);
                if (fd < 0) {
                        fprintf(stderr, "sockpoke: connect %u: %s\n", i, strerror(-fd));
                        return 1;
                }
                if (strcmp(mode, "empty-fds") == 0)
                        r = send_with_fds(fd, "", 0);
                else if (strcmp(mode, "bad-fds") == 0)
                        r = send_with_fds(fd, bad, sizeof bad);
                else
                        r = send_with_fds(fd, status_req, req_len);
                if (r < 0) {
                        fprintf(stderr, "sockpoke: sendmsg %u: %s\n", i, strerror(-r));
                        close(fd);
                        return 1;
                }
                got = wait_packet(fd, buf, sizeof buf, ANSWER_TIMEOUT_MS);
                if (strcmp(mode, "status-fds") == 0) {
                        if (got <= 0 || ipc_decode_reply(buf, (size_t) got, &rep) < 0 ||
                            rep.op != IPC_OP_STATUS || rep.status != IPC_BAD_REQUEST) {
                                fprintf(stderr, "sockpoke: %u: expected an IPC_BAD_REQUEST reply (got %zd)\n", i, got);
                                close(fd);
                                return 1;
                        }
                } else if (got != 0) {
                        fprintf(stderr, "sockpoke: %u: vaultd did not close the connection (%s)\n", i,
                                got < 0 ? strerror((int) -got) : "it answered");
                        close(fd);
                        return 1;
                }
                close(fd);
        }
        return 0;
}

static int idle(unsigned max_s) {
        uint8_t buf[IPC_PACKET_MAX];
        double t0;
        ssize_t got;
        int fd;

        fd = connect_vaultd(0);
        if (fd < 0) {
                fprintf(stderr, "sockpoke: connect: %s\n", strerror(-fd));
                return 1;
        }
        t0 = now_s();
        got = wait_packet(fd, buf, sizeof buf, (int) max_s * 1000);
        close(fd);
        if (got != 0) {
                fprintf(stderr, "sockpoke: an idle connection was not closed within %u s (%s)\n", max_s,
                        got < 0 ? strerror((int) -got) : "vaultd sent a packet");
                return 1;
        }
        printf("%.0f\n", now_s() - t0);
        return 0;
}

static int hold(unsigned n, unsigned secs) {
        static int fds[HOLD_MAX];
        unsigned ok = 0;

        if (n > HOLD_MAX)
                n = HOLD_MAX;
        for (unsigned i = 0; i < n; i++) {
                /* Non-blocking: with vaultd's queue full, connect() fails with EAGAIN. */
                int fd = connect_vaultd(SOCK_NONBLOCK);

                if (fd >= 0)
                        fds[ok++] = fd;
        }
        printf("%u\n", ok);
        fflush(stdout);
        sleep(secs);
        for (unsigned i = 0; i < ok; i++)
                close(fds[i]);
        return 0;
}

static int parse_uint(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || v > 100000)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned a = 0, b = 0;

        if (argc < 4 || parse_uint(argv[3], &a) < 0 || (argc > 4 && parse_uint(argv[4], &b) < 0))
                goto usage;
        sock_path = argv[1];
        if ((strcmp(argv[2], "empty-fds") == 0 || strcmp(argv[2], "bad-fds") == 0 ||
             strcmp(argv[2], "status-fds") == 0) && argc == 4)
                return poke(argv[2], a);
        if (strcmp(argv[2], "idle") == 0 && argc == 4)
                return idle(a);
        if (strcmp(argv[2], "hold") == 0 && argc == 5)
                return hold(a, b);
usage:
        fprintf(stderr, "usage: sockpoke SOCK empty-fds|bad-fds|status-fds N | idle SECONDS | hold N SECONDS\n");
        return 2;
}
