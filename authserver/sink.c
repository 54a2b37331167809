/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authserver.h"

/*
 * One data channel's link to the --sink application (docs/sink.md): a non-blocking
 * SOCK_SEQPACKET connection, at most one packet in flight each way (conn.c sends the next
 * DATA only after the answer to the last one), so nothing here ever waits or queues. Reports
 * go up through the callbacks conn.c set: one per packet received, one for the end of the link.
 */

void sink_link_init(struct sink_link *l) {
        *l = (struct sink_link) { .fd = -1 };
}

bool sink_link_open(const struct sink_link *l) {
        return l->fd >= 0;
}

void sink_link_close(struct sink_link *l) {
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->timer);
        if (l->fd >= 0)
                close(l->fd);
        sink_link_init(l);
}

/* Ends the link and reports why; the callback may free the link's owner. */
static void link_fail(struct sink_link *l, const char *why, int err) {
        void (*on_end)(struct sink_link *, const char *, int, void *) = l->on_end;
        void *userdata = l->userdata;

        sink_link_close(l);
        on_end(l, why, err, userdata);
}

static int link_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct sink_link *l = userdata;
        uint8_t pkt[SINK_PACKET_MAX + 1];
        struct sink_msg m;
        ssize_t n;
        int r;

        n = recv(fd, pkt, sizeof pkt, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n < 0) {
                link_fail(l, "sink-gone", -errno);
                return 0;
        }
        if (n == 0) {
                link_fail(l, "sink-gone", 0);
                return 0;
        }
        /* MSG_TRUNC: n is the packet's whole length, longer than any valid one. */
        r = (size_t) n > SINK_PACKET_MAX ? -EMSGSIZE : sink_parse(pkt, (size_t) n, &m);
        if (r >= 0 && m.type != SINK_MSG_DATA && m.type != SINK_MSG_CLOSE)
                r = -EBADMSG;   /* SESSION and CUT go the other way only */
        if (r < 0) {
                /* A SESSION from the application is refused, but may have carried a key. */
                OPENSSL_cleanse(pkt, sizeof pkt);
                OPENSSL_cleanse(&m, sizeof m);
                link_fail(l, "sink-garbage", r);
                return 0;
        }
        (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        l->on_message(l, &m, l->userdata);
        /* l may be gone now: touch nothing. pkt is this frame's own. */
        OPENSSL_cleanse(pkt, sizeof pkt);
        return 0;
}

static int link_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        link_fail(userdata, "sink-timeout", -ETIMEDOUT);
        return 0;
}

int sink_link_connect(struct sink_link *l, sd_event *event, const char *path,
                      void (*on_message)(struct sink_link *, const struct sink_msg *, void *),
                      void (*on_end)(struct sink_link *, const char *, int, void *), void *userdata) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, r;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A Unix socket connects at once or not at all: a full backlog is EAGAIN, never a wait. */
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        l->fd = fd;
        l->on_message = on_message;
        l->on_end = on_end;
        l->userdata = userdata;
        r = sd_event_add_io(event, &l->io, fd, EPOLLIN, link_io, l);
        if (r >= 0)
                r = sd_event_add_time(event, &l->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, link_timeout, l);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        if (r < 0) {
                sink_link_close(l);
                return r;
        }
        return 0;
}

int sink_link_send(struct sink_link *l, const uint8_t *pkt, size_t len) {
        ssize_t n;

        if (l->fd < 0)
                return -ENOTCONN;
        /* EAGAIN: the application has not read what it was sent; it is too slow, no queue. */
        n = send(l->fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : -EIO;
}

int sink_link_expect(struct sink_link *l, unsigned timeout_ms) {
        int r = sd_event_source_set_time_relative(l->timer, (uint64_t) timeout_ms * 1000);

        return r < 0 ? r : sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}
