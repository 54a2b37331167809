/* SPDX-License-Identifier: MIT */

/*
 * common/sinkmsg: the sink protocol's packets (docs/sink.md), encoded and parsed to the byte:
 * round trips, the exact bytes of a SESSION, and every malformed packet refused.
 */

#include <errno.h>
#include <string.h>

#include "sinkmsg.h"
#include "unit.h"

static const uint8_t sid[SV_SESSION_ID_LEN] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

START_TEST(test_session_bytes) {
        uint8_t key[SV_KEY_LEN], pkt[SINK_PACKET_MAX];
        struct sink_msg m;
        int n;

        memset(key, 0xab, sizeof key);
        n = sink_encode_session(1, 0x0102030405060708ULL, sid, "dev-a", NULL, pkt, sizeof pkt);
        ck_assert_int_eq(n, 2 + 2 + 8 + 16 + 1 + 5);
        static const uint8_t head[] = { 1, 1, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
        ck_assert(memcmp(pkt, head, sizeof head) == 0);
        ck_assert(memcmp(pkt + 12, sid, sizeof sid) == 0);
        ck_assert_int_eq(pkt[28], 5);
        ck_assert(memcmp(pkt + 29, "dev-a", 5) == 0);
        ck_assert_int_eq(sink_parse(pkt, (size_t) n, &m), 0);
        ck_assert_int_eq(m.type, SINK_MSG_SESSION);
        ck_assert_int_eq(m.kex, 1);
        ck_assert(!m.has_key);
        ck_assert(m.epoch == 0x0102030405060708ULL);
        ck_assert_str_eq(m.device_id, "dev-a");
        ck_assert(memcmp(m.session_id, sid, sizeof sid) == 0);

        n = sink_encode_session(0, 7, sid, "dev-a", key, pkt, sizeof pkt);
        ck_assert_int_eq(n, 34 + SV_KEY_LEN);
        ck_assert_int_eq(pkt[3], SINK_FLAG_KEY);
        ck_assert_int_eq(sink_parse(pkt, (size_t) n, &m), 0);
        ck_assert(m.has_key);
        ck_assert(memcmp(m.key, key, sizeof key) == 0);
        /* One byte short or long, a flag unknown: refused. */
        ck_assert_int_eq(sink_parse(pkt, (size_t) n - 1, &m), -EBADMSG);
        pkt[n] = 0;
        ck_assert_int_eq(sink_parse(pkt, (size_t) n + 1, &m), -EBADMSG);
        pkt[3] = 0x03;
        ck_assert_int_eq(sink_parse(pkt, (size_t) n, &m), -EBADMSG);
        pkt[3] = 0;     /* no key flag, but 32 bytes of key: the length does not fit */
        ck_assert_int_eq(sink_parse(pkt, (size_t) n, &m), -EBADMSG);
        /* Ids as the vault allows them, nothing else. */
        ck_assert_int_eq(sink_encode_session(0, 0, sid, "", NULL, pkt, sizeof pkt), -EINVAL);
        ck_assert_int_eq(sink_encode_session(0, 0, sid, "a b", NULL, pkt, sizeof pkt), -EINVAL);
        ck_assert_int_eq(sink_encode_session(0, 0, sid, "dev-a", NULL, pkt, 20), -ENOBUFS);
}
END_TEST

START_TEST(test_data_close_cut) {
        uint8_t payload[RECORD_PAYLOAD_MAX + 1], pkt[SINK_PACKET_MAX + 1];
        struct sink_msg m;
        int n;

        memset(payload, 'x', sizeof payload);
        n = sink_encode_data(0x01020304, payload, RECORD_PAYLOAD_MAX, pkt, sizeof pkt);
        ck_assert_int_eq(n, SINK_PACKET_MAX);
        static const uint8_t head[] = { 1, 2, 1, 2, 3, 4, 'x' };
        ck_assert(memcmp(pkt, head, sizeof head) == 0);
        ck_assert_int_eq(sink_parse(pkt, (size_t) n, &m), 0);
        ck_assert_int_eq(m.type, SINK_MSG_DATA);
        ck_assert_uint_eq(m.seq, 0x01020304);
        ck_assert_uint_eq(m.payload_len, RECORD_PAYLOAD_MAX);
        ck_assert(m.payload == pkt + 6);
        ck_assert_int_eq(sink_encode_data(1, payload, RECORD_PAYLOAD_MAX + 1, pkt, sizeof pkt), -EINVAL);
        ck_assert_int_eq(sink_encode_data(1, payload, RECORD_PAYLOAD_MAX, pkt, SINK_PACKET_MAX - 1), -ENOBUFS);
        pkt[SINK_PACKET_MAX] = 'x';
        ck_assert_int_eq(sink_parse(pkt, SINK_PACKET_MAX + 1, &m), -EBADMSG);
        n = sink_encode_data(7, NULL, 0, pkt, sizeof pkt);
        ck_assert_int_eq(n, 6);
        ck_assert_int_eq(sink_parse(pkt, 6, &m), 0);
        ck_assert_uint_eq(m.seq, 7);
        ck_assert_uint_eq(m.payload_len, 0);
        for (size_t short_len = 2; short_len < 6; short_len++)       /* no room for the seq */
                ck_assert_int_eq(sink_parse(pkt, short_len, &m), -EBADMSG);

        n = sink_encode_close(pkt, sizeof pkt);
        ck_assert_int_eq(n, 2);
        ck_assert_int_eq(pkt[1], SINK_MSG_CLOSE);
        ck_assert_int_eq(sink_parse(pkt, 2, &m), 0);
        ck_assert_int_eq(sink_parse(pkt, 3, &m), -EBADMSG);

        n = sink_encode_cut("record-limit", pkt, sizeof pkt);
        ck_assert_int_eq(n, 2 + 12);
        ck_assert_int_eq(sink_parse(pkt, (size_t) n, &m), 0);
        ck_assert_str_eq(m.reason, "record-limit");
        ck_assert_int_eq(sink_parse(pkt, 2, &m), -EBADMSG);    /* a CUT says why */
        ck_assert_int_eq(sink_encode_cut("Idle", pkt, sizeof pkt), -EINVAL);
        ck_assert_int_eq(sink_encode_cut("", pkt, sizeof pkt), -EINVAL);
        ck_assert_int_eq(sink_encode_cut("abcdefghijklmnopqrstuvwxyzabcdefg", pkt, sizeof pkt), -EINVAL);
}
END_TEST

START_TEST(test_garbage) {
        struct sink_msg m = { .type = 77 };

        ck_assert_int_eq(sink_parse((const uint8_t *) "", 0, &m), -EBADMSG);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x01", 1, &m), -EBADMSG);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x09\x02\0\0\0\1hi", 8, &m), -EPROTONOSUPPORT);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x00\x02\0\0\0\1hi", 8, &m), -EPROTONOSUPPORT);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x01\x00", 2, &m), -EBADMSG);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x01\x05", 2, &m), -EBADMSG);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x01\x01", 2, &m), -EBADMSG);
        ck_assert_int_eq(sink_parse((const uint8_t *) "\x01\x04x y", 5, &m), -EBADMSG);
        ck_assert_int_eq(m.type, 77);   /* ret untouched on failure */
}
END_TEST

static Suite *sinkmsg_suite(void) {
        Suite *s = suite_create("sinkmsg");
        TCase *tc = tcase_create("sinkmsg");

        tcase_add_test(tc, test_session_bytes);
        tcase_add_test(tc, test_data_close_cut);
        tcase_add_test(tc, test_garbage);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(sinkmsg_suite());
}
