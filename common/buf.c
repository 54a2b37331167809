/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"

int buf_alloc(struct buf *b, size_t cap) {
        uint8_t *mem;

        if (cap == 0)
                return -EINVAL;
        mem = calloc(1, cap);
        if (!mem)
                return -ENOMEM;
        *b = (struct buf) { .data = mem, .cap = cap, .owned = true };
        return 0;
}

void buf_free(struct buf *b) {
        if (!b)
                return;
        if (b->data && b->owned) {
                OPENSSL_cleanse(b->data, b->cap);
                free(b->data);
        }
        *b = (struct buf) { 0 };
}

void buf_init(struct buf *b, uint8_t *mem, size_t cap) {
        *b = (struct buf) { .data = mem, .cap = cap };
}

void buf_reader(struct buf *b, const uint8_t *data, size_t len) {
        /* The cast is safe: a reader has len == cap, so every put fails before writing. */
        *b = (struct buf) { .data = (uint8_t *) data, .cap = len, .len = len };
}

size_t buf_remaining(const struct buf *b) {
        return b->len - b->pos;
}

const uint8_t *buf_peek(const struct buf *b) {
        return b->data + b->pos;
}

int buf_put_bytes(struct buf *b, const void *p, size_t n) {
        if (n > b->cap - b->len)
                return -ENOBUFS;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int buf_put_u8(struct buf *b, uint8_t v) {
        return buf_put_bytes(b, &v, 1);
}

int buf_put_u16(struct buf *b, uint16_t v) {
        uint8_t p[2];

        be16_put(p, v);
        return buf_put_bytes(b, p, sizeof p);
}

int buf_put_u32(struct buf *b, uint32_t v) {
        uint8_t p[4] = { v >> 24, v >> 16, v >> 8, v };

        return buf_put_bytes(b, p, sizeof p);
}

int buf_put_u64(struct buf *b, uint64_t v) {
        uint8_t p[8];

        be64_put(p, v);
        return buf_put_bytes(b, p, sizeof p);
}

int buf_get_ref(struct buf *b, const uint8_t **ret, size_t n) {
        if (n > buf_remaining(b))
                return -EBADMSG;
        *ret = b->data + b->pos;
        b->pos += n;
        return 0;
}

int buf_get_bytes(struct buf *b, void *ret, size_t n) {
        const uint8_t *p;
        int r;

        r = buf_get_ref(b, &p, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(ret, p, n);
        return 0;
}

int buf_get_u8(struct buf *b, uint8_t *ret) {
        return buf_get_bytes(b, ret, 1);
}

int buf_get_u16(struct buf *b, uint16_t *ret) {
        const uint8_t *p;
        int r;

        r = buf_get_ref(b, &p, 2);
        if (r < 0)
                return r;
        *ret = be16_get(p);
        return 0;
}

int buf_get_u32(struct buf *b, uint32_t *ret) {
        const uint8_t *p;
        int r;

        r = buf_get_ref(b, &p, 4);
        if (r < 0)
                return r;
        *ret = (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        return 0;
}

int buf_get_u64(struct buf *b, uint64_t *ret) {
        const uint8_t *p;
        int r;

        r = buf_get_ref(b, &p, 8);
        if (r < 0)
                return r;
        *ret = be64_get(p);
        return 0;
}

int buf_expect_end(const struct buf *b) {
        return buf_remaining(b) == 0 ? 0 : -EBADMSG;
}

void be16_put(uint8_t *p, uint16_t v) {
        p[0] = v >> 8;
        p[1] = v;
}

void be64_put(uint8_t *p, uint64_t v) {
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (uint8_t) v;
}

uint16_t be16_get(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

uint64_t be64_get(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}
