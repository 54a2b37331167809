/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control.h"

/*
 * A listening socket served on a thread of its own (the control socket, the metrics
 * endpoint): the thread blocks in poll() on the socket and an eventfd that acceptor_stop()
 * writes. Every connection has an absolute deadline (timeout_ms from its accept()), not a
 * time-out per read: a peer that trickles one byte at a time is cut when its time is up.
 * With max_conns 1 the connection is served on the acceptor's thread, one at a time (the
 * control socket: its requests share one store handle); above 1, each on a thread of its
 * own, at most max_conns at once and, with one_per_address, one per peer address, so that
 * one slow peer cannot keep another from being served. A connection beyond either limit is
 * closed at once.
 */

/* The deadline of the connection this thread serves (CLOCK_MONOTONIC ms); 0 = none. */
static _Thread_local int64_t deadline_ms;

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int acceptor_arm(int fd) {
        struct timeval tv;
        int64_t left;

        if (deadline_ms == 0)
                return 0;
        left = deadline_ms - now_ms();
        if (left <= 0)
                return -ETIMEDOUT;
        tv = (struct timeval) { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                return -errno;
        return 0;
}

static void serve_with_deadline(struct acceptor *a, int fd) {
        deadline_ms = now_ms() + a->timeout_ms;
        if (acceptor_arm(fd) == 0)
                a->serve(a->userdata, fd);
        deadline_ms = 0;
        close(fd);
}

static bool same_address(const struct sockaddr_storage *x, const struct sockaddr_storage *y) {
        if (x->ss_family != y->ss_family)
                return false;
        if (x->ss_family == AF_INET)
                return memcmp(&((const struct sockaddr_in *) x)->sin_addr, &((const struct sockaddr_in *) y)->sin_addr,
                              sizeof(struct in_addr)) == 0;
        if (x->ss_family == AF_INET6)
                return memcmp(&((const struct sockaddr_in6 *) x)->sin6_addr,
                              &((const struct sockaddr_in6 *) y)->sin6_addr, sizeof(struct in6_addr)) == 0;
        return false;   /* AF_UNIX peers have no address to tell apart */
}

static void give_back(struct acceptor *a, unsigned slot) {
        pthread_mutex_lock(&a->lock);
        a->slot_used[slot] = false;
        a->n_active--;
        pthread_cond_broadcast(&a->idle);
        pthread_mutex_unlock(&a->lock);
}

struct job {
        struct acceptor *a;
        int fd;
        unsigned slot;
};

static void *job_main(void *userdata) {
        struct job *j = userdata;
        struct acceptor *a = j->a;

        serve_with_deadline(a, j->fd);
        give_back(a, j->slot);
        free(j);
        return NULL;
}

/* A slot for a connection from ss, or -EBUSY (at the cap, or its address already served). */
static int take_slot(struct acceptor *a, const struct sockaddr_storage *ss) {
        int free_slot = -EBUSY;

        pthread_mutex_lock(&a->lock);
        for (unsigned i = 0; i < a->max_conns; i++) {
                if (!a->slot_used[i]) {
                        if (free_slot < 0)
                                free_slot = (int) i;
                } else if (a->one_per_address && same_address(&a->slot_addr[i], ss)) {
                        free_slot = -EBUSY;
                        break;
                }
        }
        if (free_slot >= 0) {
                a->slot_used[free_slot] = true;
                a->slot_addr[free_slot] = *ss;
                a->n_active++;
        }
        pthread_mutex_unlock(&a->lock);
        return free_slot;
}

static void dispatch(struct acceptor *a, int fd, const struct sockaddr_storage *ss) {
        pthread_attr_t attr;
        pthread_t t;
        struct job *j;
        int slot, r = -ENOMEM;

        if (a->max_conns <= 1) {
                serve_with_deadline(a, fd);
                return;
        }
        slot = take_slot(a, ss);
        if (slot < 0) {
                close(fd);
                return;
        }
        j = malloc(sizeof *j);
        if (j) {
                *j = (struct job) { .a = a, .fd = fd, .slot = (unsigned) slot };
                r = -pthread_attr_init(&attr);
                if (r == 0) {
                        r = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                        if (r == 0)
                                r = -pthread_create(&t, &attr, job_main, j);
                        pthread_attr_destroy(&attr);
                }
        }
        if (r < 0) {
                free(j);
                close(fd);
                give_back(a, (unsigned) slot);
        }
}

static void *acceptor_main(void *userdata) {
        struct acceptor *a = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = a->fd, .events = POLLIN }, { .fd = a->stop_fd, .events = POLLIN } };
                struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
                socklen_t len = sizeof ss;
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                fd = accept4(a->fd, (struct sockaddr *) &ss, &len, SOCK_CLOEXEC);
                if (fd < 0) {
                        /* Out of descriptors: a pause, not a busy loop. */
                        if (errno == EMFILE || errno == ENFILE)
                                (void) poll(NULL, 0, 100);
                        continue;
                }
                dispatch(a, fd, &ss);
        }
        return NULL;
}

int acceptor_start(struct acceptor *a, int fd, const struct acceptor_limits *limits,
                   void (*serve)(void *userdata, int fd), void *userdata) {
        int r;

        if (limits->max_conns > ACCEPTOR_MAX_CONNS || limits->timeout_ms <= 0)
                return -EINVAL;
        *a = (struct acceptor) { .fd = fd, .stop_fd = -1, .serve = serve, .userdata = userdata,
                                 .timeout_ms = limits->timeout_ms, .max_conns = limits->max_conns,
                                 .one_per_address = limits->one_per_address };
        r = -pthread_mutex_init(&a->lock, NULL);
        if (r < 0)
                return r;
        r = -pthread_cond_init(&a->idle, NULL);
        if (r < 0) {
                pthread_mutex_destroy(&a->lock);
                return r;
        }
        a->sync_ready = true;
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
        if (a->sync_ready) {
                /* The connections still served end by their deadline at the latest. */
                pthread_mutex_lock(&a->lock);
                while (a->n_active > 0)
                        pthread_cond_wait(&a->idle, &a->lock);
                pthread_mutex_unlock(&a->lock);
                pthread_cond_destroy(&a->idle);
                pthread_mutex_destroy(&a->lock);
                a->sync_ready = false;
        }
        if (a->stop_fd >= 0)
                close(a->stop_fd);
        a->stop_fd = -1;
}
