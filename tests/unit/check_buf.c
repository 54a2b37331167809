/* SPDX-License-Identifier: MIT */

/* common/buf: bounded big-endian writer/reader. Every failure must leave the buffer as it was. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

enum op {
        OP_U8,
        OP_U16,
        OP_U32,
        OP_U64,
        OP_BYTES,
};

/* One value of each width with its exact big-endian encoding. */
static const struct {
        enum op op;
        uint64_t v;
        size_t len;
        uint8_t enc[9];
} layouts[] = {
        { OP_U8, 0x00, 1, { 0x00 } },
        { OP_U8, 0xa5, 1, { 0xa5 } },
        { OP_U8, 0xff, 1, { 0xff } },
        { OP_U16, 0x0000, 2, { 0x00, 0x00 } },
        { OP_U16, 0x0102, 2, { 0x01, 0x02 } },
        { OP_U16, 0x8001, 2, { 0x80, 0x01 } },
        { OP_U16, 0xffff, 2, { 0xff, 0xff } },
        { OP_U32, 0x01020304, 4, { 0x01, 0x02, 0x03, 0x04 } },
        { OP_U32, 0x80000001, 4, { 0x80, 0x00, 0x00, 0x01 } },
        { OP_U32, 0xffffffff, 4, { 0xff, 0xff, 0xff, 0xff } },
        { OP_U64, 0x0102030405060708ull, 8, { 1, 2, 3, 4, 5, 6, 7, 8 } },
        { OP_U64, 0x8000000000000001ull, 8, { 0x80, 0, 0, 0, 0, 0, 0, 0x01 } },
        { OP_U64, UINT64_MAX, 8, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
        { OP_U64, 0, 8, { 0 } },
};

static int put(struct buf *b, enum op op, uint64_t v, size_t len) {
        static const uint8_t src[16] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04,
                                         0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c };

        switch (op) {
        case OP_U8: return buf_put_u8(b, (uint8_t) v);
        case OP_U16: return buf_put_u16(b, (uint16_t) v);
        case OP_U32: return buf_put_u32(b, (uint32_t) v);
        case OP_U64: return buf_put_u64(b, v);
        case OP_BYTES: return buf_put_bytes(b, src, len);
        }
        return -EINVAL;
}

static int get(struct buf *b, enum op op, uint64_t *ret, size_t len) {
        uint8_t u8 = 0, tmp[16];
        uint16_t u16 = 0;
        uint32_t u32 = 0;
        int r;

        switch (op) {
        case OP_U8: r = buf_get_u8(b, &u8); *ret = u8; return r;
        case OP_U16: r = buf_get_u16(b, &u16); *ret = u16; return r;
        case OP_U32: r = buf_get_u32(b, &u32); *ret = u32; return r;
        case OP_U64: return buf_get_u64(b, ret);
        case OP_BYTES: return buf_get_bytes(b, tmp, len);
        }
        return -EINVAL;
}

static size_t op_len(enum op op, size_t len) {
        switch (op) {
        case OP_U8: return 1;
        case OP_U16: return 2;
        case OP_U32: return 4;
        case OP_U64: return 8;
        case OP_BYTES: return len;
        }
        return 0;
}

START_TEST(test_layouts) {
        for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
                uint8_t mem[16];
                struct buf w, rd;
                uint64_t got = 0;

                memset(mem, 0xcc, sizeof mem);
                buf_init(&w, mem, sizeof mem);
                ck_assert_int_eq(put(&w, layouts[i].op, layouts[i].v, 0), 0);
                ck_assert_uint_eq(w.len, layouts[i].len);
                ck_assert_msg(memcmp(mem, layouts[i].enc, layouts[i].len) == 0,
                              "case %zu: encoded %s", i, unit_hex(mem, layouts[i].len));
                /* Nothing past the value was touched. */
                ck_assert_uint_eq(mem[layouts[i].len], 0xcc);

                buf_reader(&rd, layouts[i].enc, layouts[i].len);
                ck_assert_int_eq(get(&rd, layouts[i].op, &got, 0), 0);
                ck_assert_msg(got == layouts[i].v, "case %zu: decoded %" PRIx64, i, got);
                ck_assert_uint_eq(rd.pos, layouts[i].len);
                ck_assert_int_eq(buf_expect_end(&rd), 0);
        }
}
END_TEST

START_TEST(test_sequence_round_trip) {
        static const uint8_t want[] = {
                0x7f,
                0x12, 0x34,
                0xde, 0xad, 0xbe, 0xef,
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                'a', 'b', 'c',
        };
        uint8_t mem[sizeof want], s[3], u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        const uint8_t *ref;
        struct buf b;

        buf_init(&b, mem, sizeof mem);
        ck_assert_int_eq(buf_put_u8(&b, 0x7f), 0);
        ck_assert_int_eq(buf_put_u16(&b, 0x1234), 0);
        ck_assert_int_eq(buf_put_u32(&b, 0xdeadbeef), 0);
        ck_assert_int_eq(buf_put_u64(&b, 0x0123456789abcdefull), 0);
        ck_assert_int_eq(buf_put_bytes(&b, "abc", 3), 0);
        ck_assert_int_eq(buf_put_bytes(&b, NULL, 0), 0);
        ck_assert_uint_eq(b.len, sizeof want);
        ck_assert_msg(memcmp(mem, want, sizeof want) == 0, "got %s", unit_hex(mem, sizeof mem));
        /* Full: even one more byte is refused. */
        ck_assert_int_eq(buf_put_u8(&b, 0), -ENOBUFS);

        buf_reader(&b, mem, sizeof mem);
        ck_assert_uint_eq(buf_remaining(&b), sizeof want);
        ck_assert_int_eq(buf_get_u8(&b, &u8), 0);
        ck_assert_uint_eq(u8, 0x7f);
        ck_assert_int_eq(buf_get_u16(&b, &u16), 0);
        ck_assert_uint_eq(u16, 0x1234);
        ck_assert_int_eq(buf_expect_end(&b), -EBADMSG);
        ck_assert_int_eq(buf_get_u32(&b, &u32), 0);
        ck_assert_uint_eq(u32, 0xdeadbeef);
        ck_assert_int_eq(buf_get_u64(&b, &u64), 0);
        ck_assert(u64 == 0x0123456789abcdefull);
        ck_assert_ptr_eq(buf_peek(&b), mem + 15);
        ck_assert_int_eq(buf_get_ref(&b, &ref, 2), 0);
        ck_assert_ptr_eq(ref, mem + 15);
        ck_assert_int_eq(buf_get_bytes(&b, s, 1), 0);
        ck_assert_uint_eq(s[0], 'c');
        ck_assert_int_eq(buf_get_bytes(&b, s, 0), 0);
        ck_assert_uint_eq(buf_remaining(&b), 0);
        ck_assert_int_eq(buf_expect_end(&b), 0);
}
END_TEST

START_TEST(test_be_helpers) {
        uint8_t p[8];

        be16_put(p, 0xa1b2);
        ck_assert_uint_eq(p[0], 0xa1);
        ck_assert_uint_eq(p[1], 0xb2);
        ck_assert_uint_eq(be16_get(p), 0xa1b2);
        be64_put(p, 0x1122334455667788ull);
        ck_assert_msg(memcmp(p, "\x11\x22\x33\x44\x55\x66\x77\x88", 8) == 0, "got %s", unit_hex(p, 8));
        ck_assert(be64_get(p) == 0x1122334455667788ull);
        be64_put(p, UINT64_MAX);
        ck_assert(be64_get(p) == UINT64_MAX);
}
END_TEST

/*
 * Every put that does not fit, at every fill level of every capacity: -ENOBUFS, len and
 * the memory beyond it unchanged.
 */
START_TEST(test_put_overflow) {
        static const enum op ops[] = { OP_U8, OP_U16, OP_U32, OP_U64, OP_BYTES };

        for (size_t cap = 0; cap <= 12; cap++)
                for (size_t fill = 0; fill <= cap; fill++)
                        for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
                                for (size_t blen = 0; blen <= (ops[o] == OP_BYTES ? 13 : 0); blen++) {
                                        uint8_t mem[16], before[16];
                                        size_t need = op_len(ops[o], blen);
                                        struct buf b;
                                        int r;

                                        memset(mem, 0x5a, sizeof mem);
                                        buf_init(&b, mem, cap);
                                        for (size_t i = 0; i < fill; i++)
                                                ck_assert_int_eq(buf_put_u8(&b, (uint8_t) i), 0);
                                        memcpy(before, mem, sizeof mem);
                                        r = put(&b, ops[o], 0x0102030405060708ull, blen);
                                        if (fill + need <= cap) {
                                                ck_assert_int_eq(r, 0);
                                                ck_assert_uint_eq(b.len, fill + need);
                                        } else {
                                                ck_assert_msg(r == -ENOBUFS, "cap %zu fill %zu op %zu len %zu: %d",
                                                              cap, fill, o, blen, r);
                                                ck_assert_uint_eq(b.len, fill);
                                                ck_assert_msg(memcmp(mem, before, sizeof mem) == 0,
                                                              "cap %zu fill %zu op %zu: memory written", cap, fill, o);
                                        }
                                        ck_assert_uint_eq(b.pos, 0);
                                        ck_assert_uint_eq(b.cap, cap);
                                }
}
END_TEST

/* A put whose size would wrap around size_t is still refused. */
START_TEST(test_put_huge) {
        uint8_t mem[8];
        struct buf b;

        buf_init(&b, mem, sizeof mem);
        ck_assert_int_eq(buf_put_u32(&b, 1), 0);
        ck_assert_int_eq(buf_put_bytes(&b, mem, SIZE_MAX), -ENOBUFS);
        ck_assert_int_eq(buf_put_bytes(&b, mem, SIZE_MAX - 3), -ENOBUFS);
        ck_assert_uint_eq(b.len, 4);
}
END_TEST

/* Every get past the end at every position: -EBADMSG, pos and the output unchanged. */
START_TEST(test_get_underflow) {
        static const enum op ops[] = { OP_U8, OP_U16, OP_U32, OP_U64, OP_BYTES };
        static const uint8_t data[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

        for (size_t len = 0; len <= sizeof data; len++)
                for (size_t pos = 0; pos <= len; pos++)
                        for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
                                for (size_t blen = 0; blen <= (ops[o] == OP_BYTES ? 13 : 0); blen++) {
                                        size_t need = op_len(ops[o], blen);
                                        uint8_t *copy = unit_dup(data, len);
                                        const uint8_t *ref = NULL;
                                        uint64_t got = 0xfeedfeedfeedfeedull;
                                        struct buf b;
                                        int r;

                                        buf_reader(&b, copy, len);
                                        ck_assert_int_eq(buf_get_ref(&b, &ref, pos), 0);
                                        r = get(&b, ops[o], &got, blen);
                                        if (pos + need <= len) {
                                                ck_assert_int_eq(r, 0);
                                                ck_assert_uint_eq(b.pos, pos + need);
                                        } else {
                                                ck_assert_msg(r == -EBADMSG, "len %zu pos %zu op %zu: %d", len, pos, o, r);
                                                ck_assert_uint_eq(b.pos, pos);
                                                if (ops[o] == OP_U64)
                                                        ck_assert(got == 0xfeedfeedfeedfeedull);
                                        }
                                        ck_assert_uint_eq(b.len, len);
                                        free(copy);
                                }
}
END_TEST

START_TEST(test_get_ref_bounds) {
        static const uint8_t data[4] = { 1, 2, 3, 4 };
        const uint8_t *ref = data;
        struct buf b;

        buf_reader(&b, data, sizeof data);
        ck_assert_int_eq(buf_get_ref(&b, &ref, 5), -EBADMSG);
        ck_assert_ptr_eq(ref, data);
        ck_assert_int_eq(buf_get_ref(&b, &ref, SIZE_MAX), -EBADMSG);
        ck_assert_uint_eq(b.pos, 0);
        ck_assert_int_eq(buf_get_ref(&b, &ref, 4), 0);
        ck_assert_int_eq(buf_get_ref(&b, &ref, 0), 0);
        ck_assert_int_eq(buf_get_ref(&b, &ref, 1), -EBADMSG);
        ck_assert_int_eq(buf_expect_end(&b), 0);
}
END_TEST

/* A reader has no room: every put fails and the caller's bytes stay as they were. */
START_TEST(test_reader_refuses_puts) {
        uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, before[8];
        struct buf b;
        uint8_t u8;

        memcpy(before, data, sizeof data);
        for (size_t len = 0; len <= sizeof data; len++) {
                buf_reader(&b, data, len);
                ck_assert_int_eq(buf_put_u8(&b, 0xff), -ENOBUFS);
                ck_assert_int_eq(buf_put_u16(&b, 0xffff), -ENOBUFS);
                ck_assert_int_eq(buf_put_u32(&b, 0xffffffff), -ENOBUFS);
                ck_assert_int_eq(buf_put_u64(&b, UINT64_MAX), -ENOBUFS);
                ck_assert_int_eq(buf_put_bytes(&b, "x", 1), -ENOBUFS);
                ck_assert_uint_eq(b.len, len);
                /* Even after reading, consumed space is not reusable for writing. */
                if (len > 0) {
                        ck_assert_int_eq(buf_get_u8(&b, &u8), 0);
                        ck_assert_int_eq(buf_put_u8(&b, 0xff), -ENOBUFS);
                }
                ck_assert_msg(memcmp(data, before, sizeof data) == 0, "reader memory written");
        }
}
END_TEST

START_TEST(test_expect_end) {
        static const uint8_t data[3] = { 1, 2, 3 };
        struct buf b;
        uint8_t u8;

        buf_reader(&b, data, 0);
        ck_assert_int_eq(buf_expect_end(&b), 0);
        buf_reader(&b, data, sizeof data);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(buf_expect_end(&b), -EBADMSG);
                ck_assert_int_eq(buf_get_u8(&b, &u8), 0);
        }
        ck_assert_int_eq(buf_expect_end(&b), 0);
        /* A writer: what was written and not read is "remaining". */
        {
                uint8_t mem[4];

                buf_init(&b, mem, sizeof mem);
                ck_assert_int_eq(buf_expect_end(&b), 0);
                ck_assert_int_eq(buf_put_u16(&b, 7), 0);
                ck_assert_int_eq(buf_expect_end(&b), -EBADMSG);
                ck_assert_uint_eq(buf_remaining(&b), 2);
        }
}
END_TEST

START_TEST(test_alloc_free) {
        static const struct buf zero;
        struct buf b;

        ck_assert_int_eq(buf_alloc(&b, 0), -EINVAL);
        ck_assert_int_eq(buf_alloc(&b, 64), 0);
        ck_assert_ptr_nonnull(b.data);
        ck_assert_uint_eq(b.cap, 64);
        ck_assert_uint_eq(b.len, 0);
        ck_assert_uint_eq(b.pos, 0);
        ck_assert(b.owned);
        /* calloc'd: a fresh buffer holds no stale bytes. */
        for (size_t i = 0; i < 64; i++)
                ck_assert_uint_eq(b.data[i], 0);
        for (int i = 0; i < 8; i++)
                ck_assert_int_eq(buf_put_u64(&b, 0x1111111111111111ull * (unsigned) i), 0);
        ck_assert_int_eq(buf_put_u8(&b, 1), -ENOBUFS);
        buf_free(&b);
        ck_assert_msg(memcmp(&b, &zero, sizeof b) == 0, "buf_free left the struct set");
        /* Freeing twice, or freeing NULL, is harmless. */
        buf_free(&b);
        buf_free(NULL);
        ck_assert_msg(memcmp(&b, &zero, sizeof b) == 0, "second buf_free changed the struct");
}
END_TEST

/*
 * buf_free on a buffer over caller memory must not free that memory (ASan would report
 * a bad free) and must not wipe it (the caller owns it), but resets the struct.
 */
START_TEST(test_free_borrowed) {
        static const struct buf zero;
        uint8_t mem[16];
        uint8_t *heap = malloc(8);
        struct buf b;

        ck_assert_ptr_nonnull(heap);
        buf_init(&b, mem, sizeof mem);
        ck_assert(!b.owned);
        ck_assert_int_eq(buf_put_u64(&b, 0x0102030405060708ull), 0);
        buf_free(&b);
        ck_assert_msg(memcmp(&b, &zero, sizeof b) == 0, "struct not reset");
        ck_assert_msg(memcmp(mem, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) == 0, "caller memory changed");

        memset(heap, 0x42, 8);
        buf_reader(&b, heap, 8);
        buf_free(&b);
        ck_assert_msg(memcmp(&b, &zero, sizeof b) == 0, "struct not reset");
        for (int i = 0; i < 8; i++)
                ck_assert_uint_eq(heap[i], 0x42);
        free(heap);
}
END_TEST

/*
 * Freed memory cannot be read, so the wipe itself is not observable here; what is: every
 * alloc/free pair resets the struct, and under ASan (--enable-sanitizers) many rounds of
 * sizes show no leak, double free or overflow.
 */
START_TEST(test_alloc_free_rounds) {
        struct buf b, copy;
        int r;

        for (int i = 0; i < 1000; i++) {
                r = buf_alloc(&b, (size_t) (i % 97) + 1);
                ck_assert_int_eq(r, 0);
                ck_assert_int_eq(buf_put_bytes(&b, "secret", b.cap < 6 ? b.cap : 6), 0);
                copy = b;
                buf_free(&b);
                ck_assert_ptr_null(b.data);
                ck_assert_uint_eq(b.cap, 0);
                ck_assert(!b.owned);
                ck_assert_ptr_nonnull(copy.data);
        }
}
END_TEST

static Suite *buf_suite(void) {
        Suite *s = suite_create("buf");
        TCase *tc = tcase_create("codec");

        tcase_add_test(tc, test_layouts);
        tcase_add_test(tc, test_sequence_round_trip);
        tcase_add_test(tc, test_be_helpers);
        suite_add_tcase(s, tc);

        tc = tcase_create("bounds");
        tcase_add_test(tc, test_put_overflow);
        tcase_add_test(tc, test_put_huge);
        tcase_add_test(tc, test_get_underflow);
        tcase_add_test(tc, test_get_ref_bounds);
        tcase_add_test(tc, test_reader_refuses_puts);
        tcase_add_test(tc, test_expect_end);
        suite_add_tcase(s, tc);

        tc = tcase_create("lifetime");
        tcase_add_test(tc, test_alloc_free);
        tcase_add_test(tc, test_free_borrowed);
        tcase_add_test(tc, test_alloc_free_rounds);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(buf_suite());
}
