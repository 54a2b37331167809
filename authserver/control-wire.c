/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"

/* The encodings of docs/control.md: integers big-endian, strings a u8 length and the bytes
 * (no NUL), doubles as their IEEE-754 bits in a u64. */

int control_put_string(struct buf *b, const char *s, size_t max) {
        size_t n = strlen(s);

        if (n > max || n > UINT8_MAX)
                return -ENAMETOOLONG;
        if (buf_put_u8(b, (uint8_t) n) < 0)
                return -ENOBUFS;
        return buf_put_bytes(b, s, n);
}

int control_get_string(struct buf *b, char *out, size_t cap) {
        uint8_t n;

        if (buf_get_u8(b, &n) < 0 || (size_t) n >= cap)
                return -EBADMSG;
        if (buf_get_bytes(b, out, n) < 0)
                return -EBADMSG;
        out[n] = '\0';
        if (memchr(out, '\0', n))
                return -EBADMSG;
        return 0;
}

static uint64_t double_bits(double d) {
        uint64_t v;

        memcpy(&v, &d, sizeof v);
        return v;
}

static double bits_double(uint64_t v) {
        double d;

        memcpy(&d, &v, sizeof d);
        return d;
}

int control_put_device(struct buf *b, const struct store_device *d) {
        if (control_put_string(b, d->id, STORE_ID_MAX) < 0 ||
            buf_put_u8(b, d->status == STORE_ACTIVE ? 0 : 1) < 0 ||
            buf_put_u8(b, d->profile) < 0 || buf_put_u16(b, d->n) < 0 || buf_put_u8(b, d->m) < 0 ||
            buf_put_u8(b, d->p) < 0 || buf_put_u8(b, d->kex) < 0 || buf_put_u64(b, d->epoch) < 0 ||
            buf_put_u8(b, d->has_pending) < 0 || buf_put_u64(b, (uint64_t) d->created) < 0 ||
            buf_put_u64(b, (uint64_t) d->last_success) < 0 || buf_put_u64(b, (uint64_t) d->last_failure) < 0 ||
            buf_put_u32(b, d->failures) < 0)
                return -ENOBUFS;
        return 0;
}

int control_get_device(struct buf *b, struct store_device *ret) {
        struct store_device d = { 0 };
        uint8_t status, pending;
        uint64_t created, success, failure;

        if (control_get_string(b, d.id, sizeof d.id) < 0 || buf_get_u8(b, &status) < 0 ||
            buf_get_u8(b, &d.profile) < 0 || buf_get_u16(b, &d.n) < 0 || buf_get_u8(b, &d.m) < 0 ||
            buf_get_u8(b, &d.p) < 0 || buf_get_u8(b, &d.kex) < 0 || buf_get_u64(b, &d.epoch) < 0 ||
            buf_get_u8(b, &pending) < 0 || buf_get_u64(b, &created) < 0 || buf_get_u64(b, &success) < 0 ||
            buf_get_u64(b, &failure) < 0 || buf_get_u32(b, &d.failures) < 0 || status > 1 || pending > 1)
                return -EBADMSG;
        d.status = status ? STORE_REVOKED : STORE_ACTIVE;
        d.has_pending = pending;
        d.created = (int64_t) created;
        d.last_success = (int64_t) success;
        d.last_failure = (int64_t) failure;
        *ret = d;
        return 0;
}

int control_put_aggregate(struct buf *b, const struct aggregate *a) {
        if (control_put_string(b, a->name, AGGREGATE_NAME_MAX) < 0 || buf_put_u64(b, a->count) < 0 ||
            buf_put_u64(b, double_bits(a->sum)) < 0 || buf_put_u64(b, double_bits(a->min)) < 0 ||
            buf_put_u64(b, double_bits(a->max)) < 0)
                return -ENOBUFS;
        return 0;
}

int control_get_aggregate(struct buf *b, struct aggregate *ret) {
        struct aggregate a = { 0 };
        uint64_t sum, min, max;

        if (control_get_string(b, a.name, sizeof a.name) < 0 || buf_get_u64(b, &a.count) < 0 ||
            buf_get_u64(b, &sum) < 0 || buf_get_u64(b, &min) < 0 || buf_get_u64(b, &max) < 0)
                return -EBADMSG;
        a.sum = bits_double(sum);
        a.min = bits_double(min);
        a.max = bits_double(max);
        *ret = a;
        return 0;
}

int control_put_audit(struct buf *b, const struct audit_row *a) {
        if (buf_put_u64(b, (uint64_t) a->time) < 0 || control_put_string(b, a->device_id, SV_ID_MAX) < 0 ||
            control_put_string(b, a->peer, sizeof a->peer - 1) < 0 ||
            control_put_string(b, a->outcome, sizeof a->outcome - 1) < 0 || buf_put_u64(b, a->epoch) < 0)
                return -ENOBUFS;
        return 0;
}

int control_get_audit(struct buf *b, struct audit_row *ret) {
        struct audit_row a = { 0 };
        uint64_t t;

        if (buf_get_u64(b, &t) < 0 || control_get_string(b, a.device_id, sizeof a.device_id) < 0 ||
            control_get_string(b, a.peer, sizeof a.peer) < 0 ||
            control_get_string(b, a.outcome, sizeof a.outcome) < 0 || buf_get_u64(b, &a.epoch) < 0)
                return -EBADMSG;
        a.time = (int64_t) t;
        *ret = a;
        return 0;
}

static int io_all(int fd, void *p, size_t len, bool out) {
        uint8_t *q = p;

        while (len > 0) {
                int r = acceptor_arm(fd);
                ssize_t n;

                if (r < 0)
                        return r;
                n = out ? send(fd, q, len, MSG_NOSIGNAL) : recv(fd, q, len, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
                if (n == 0)
                        return -ECONNRESET;
                q += n;
                len -= (size_t) n;
        }
        return 0;
}

int control_send_frame(int fd, const uint8_t *body, size_t len) {
        uint8_t hdr[4] = { (uint8_t) (len >> 24), (uint8_t) (len >> 16), (uint8_t) (len >> 8), (uint8_t) len };
        int r;

        if (len == 0 || len > UINT32_MAX)
                return -EINVAL;
        r = io_all(fd, hdr, sizeof hdr, true);
        return r < 0 ? r : io_all(fd, (void *) body, len, true);
}

int control_recv_frame(int fd, uint8_t *buf, size_t cap, size_t max, size_t *ret_len) {
        uint8_t hdr[4];
        size_t len;
        int r;

        r = io_all(fd, hdr, sizeof hdr, false);
        if (r < 0)
                return r;
        len = (size_t) hdr[0] << 24 | (size_t) hdr[1] << 16 | (size_t) hdr[2] << 8 | hdr[3];
        /* The length is checked before a byte of the body is read. */
        if (len == 0 || len > max || len > cap)
                return -EPROTO;
        r = io_all(fd, buf, len, false);
        if (r < 0)
                return r;
        *ret_len = len;
        return 0;
}

int audit_relay_row(int64_t time, const char *device, const char *peer, const char *outcome, uint64_t epoch,
                    void *userdata) {
        struct audit_relay *a = userdata;
        struct audit_row row = { .time = time, .epoch = epoch };

        snprintf(row.device_id, sizeof row.device_id, "%s", device);
        snprintf(row.peer, sizeof row.peer, "%s", peer);
        snprintf(row.outcome, sizeof row.outcome, "%s", outcome);
        return a->cb(&row, a->userdata);
}
