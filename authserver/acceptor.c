/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"

/*
 * A listening socket served on a thread of its own, one connection at a time (the control
 * socket, the metrics endpoint): the thread blocks in poll() on the socket and an eventfd
 * that acceptor_stop() writes, and hands each accepted connection to serve(), then closes it.
 */

static void *acceptor_main(void *userdata) {
        struct acceptor *a = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = a->fd, .events = POLLIN }, { .fd = a->stop_fd, .events = POLLIN } };
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                fd = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        /* Out of descriptors: a pause, not a busy loop. */
                        if (errno == EMFILE || errno == ENFILE)
                                (void) poll(NULL, 0, 100);
                        continue;
                }
                a->serve(a->userdata, fd);
                close(fd);
        }
        return NULL;
}

int acceptor_start(struct acceptor *a, int fd, void (*serve)(void *userdata, int fd), void *userdata) {
        int r;

        *a = (struct acceptor) { .fd = fd, .stop_fd = -1, .serve = serve, .userdata = userdata };
        a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->stop_fd < 0)
                return -errno;
        r = -pthread_create(&a->thread, NULL, acceptor_main, a);
        if (r < 0)
                return r;
        a->started = true;
        return 0;
}

void acceptor_stop(struct acceptor *a) {
        if (a->started) {
                (void) eventfd_write(a->stop_fd, 1);
                pthread_join(a->thread, NULL);
                a->started = false;
        }
        if (a->stop_fd >= 0)
                close(a->stop_fd);
        a->stop_fd = -1;
}
