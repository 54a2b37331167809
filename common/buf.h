/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A bounded byte buffer. Writers append up to a fixed capacity; readers consume from
 * the front and never past what was written. Every get and put checks the bound first
 * and fails with -ENOBUFS (put) or -EBADMSG (get) without moving. Buffers allocated with
 * buf_alloc() are wiped on buf_free(), because they routinely carry key material.
 */
struct buf {
        uint8_t *data;
        size_t cap;
        size_t len;     /* bytes written */
        size_t pos;     /* bytes consumed by the reader */
        bool owned;
};

int buf_alloc(struct buf *b, size_t cap);
void buf_free(struct buf *b);
/* A writer over caller memory; nothing is freed. */
void buf_init(struct buf *b, uint8_t *mem, size_t cap);
/* A reader over caller bytes; writes to it fail. */
void buf_reader(struct buf *b, const uint8_t *data, size_t len);

size_t buf_remaining(const struct buf *b);
const uint8_t *buf_peek(const struct buf *b);

int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_u16(struct buf *b, uint16_t v);
int buf_put_u32(struct buf *b, uint32_t v);
int buf_put_u64(struct buf *b, uint64_t v);
int buf_put_bytes(struct buf *b, const void *p, size_t n);

int buf_get_u8(struct buf *b, uint8_t *ret);
int buf_get_u16(struct buf *b, uint16_t *ret);
int buf_get_u32(struct buf *b, uint32_t *ret);
int buf_get_u64(struct buf *b, uint64_t *ret);
int buf_get_bytes(struct buf *b, void *ret, size_t n);
/* Borrow n bytes in place. */
int buf_get_ref(struct buf *b, const uint8_t **ret, size_t n);
/* Decoders end with this: -EBADMSG unless the input was consumed exactly. */
int buf_expect_end(const struct buf *b);

/* Big-endian helpers for fixed positions. */
void be16_put(uint8_t *p, uint16_t v);
void be64_put(uint8_t *p, uint64_t v);
uint16_t be16_get(const uint8_t *p);
uint64_t be64_get(const uint8_t *p);
