/* SPDX-License-Identifier: MIT */
/* netprefix: which network a peer counts against (the per-network cap and back-off of authserver). */
#include <errno.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "netprefix.h"
#include "unit.h"

static struct netprefix prefix_of(const char *text) {
        struct sockaddr_storage ss = { 0 };
        struct netprefix p;
        size_t len;

        if (strchr(text, ':')) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

                in6->sin6_family = AF_INET6;
                ck_assert_int_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
                len = sizeof *in6;
        } else {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;

                in->sin_family = AF_INET;
                ck_assert_int_eq(inet_pton(AF_INET, text, &in->sin_addr), 1);
                len = sizeof *in;
        }
        ck_assert_int_eq(netprefix_from_sockaddr((struct sockaddr *) &ss, len, &p), 0);
        return p;
}

static bool same(const char *a, const char *b) {
        struct netprefix pa = prefix_of(a), pb = prefix_of(b);

        return memcmp(pa.key, pb.key, NETPREFIX_KEY_LEN) == 0;
}

/* Addresses that one party can rotate through count as one network; neighbours do not. */
static const struct {
        const char *a, *b;
        bool same;
} cases[] = {
        { "192.0.2.1",            "192.0.2.254",                    true },
        { "192.0.2.1",            "192.0.3.1",                      false },
        { "127.1.0.2",            "127.1.0.77",                     true },
        { "127.0.0.1",            "127.1.0.1",                      false },
        /* IPv6: the whole /48, not only the /64 */
        { "2001:db8:1::1",        "2001:db8:1:ffff:1:2:3:4",        true },
        { "2001:db8:1:2::5",      "2001:db8:1:3::5",                true },
        { "2001:db8:1::1",        "2001:db8:2::1",                  false },
        { "2001:db8:1::1",        "2001:db9:1::1",                  false },
        /* IPv4-mapped is its IPv4 network, and never equal to an IPv6 network */
        { "::ffff:192.0.2.9",     "192.0.2.1",                      true },
        { "::ffff:192.0.2.9",     "::ffff:192.0.3.9",               false },
        { "::c000:201",           "192.0.2.1",                      false },
};

START_TEST(test_grouping) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                unit_assert(same(cases[i].a, cases[i].b) == cases[i].same, "%s vs %s: want %s", cases[i].a,
                            cases[i].b, cases[i].same ? "one network" : "two networks");
}
END_TEST

START_TEST(test_format) {
        static const struct {
                const char *addr, *text;
        } fmt[] = {
                { "192.0.2.77",                 "192.0.2.0/24" },
                { "::ffff:10.1.2.3",            "10.1.2.0/24" },
                { "2001:db8:1:2:3:4:5:6",       "2001:db8:1::/48" },
                { "::1",                        "::/48" },
        };
        char buf[NETPREFIX_TEXT_MAX];

        for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
                struct netprefix p = prefix_of(fmt[i].addr);

                ck_assert_int_eq(netprefix_format(&p, buf, sizeof buf), 0);
                ck_assert_str_eq(buf, fmt[i].text);
        }
        struct netprefix p = prefix_of("ffff:ffff:ffff:ffff::1");
        ck_assert_int_eq(netprefix_format(&p, buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "ffff:ffff:ffff::/48");
        ck_assert_int_eq(netprefix_format(&p, buf, 8), -ENOSPC);
        p.key[0] = 9;
        ck_assert_int_eq(netprefix_format(&p, buf, sizeof buf), -EINVAL);
}
END_TEST

START_TEST(test_bad_input) {
        struct sockaddr_storage ss = { .ss_family = AF_UNIX };
        struct netprefix p = { { 0x77 } };

        ck_assert_int_eq(netprefix_from_sockaddr((struct sockaddr *) &ss, sizeof ss, &p), -EAFNOSUPPORT);
        ss.ss_family = AF_INET6;
        ck_assert_int_eq(netprefix_from_sockaddr((struct sockaddr *) &ss, sizeof(struct sockaddr_in), &p), -EINVAL);
        ss.ss_family = AF_INET;
        ck_assert_int_eq(netprefix_from_sockaddr((struct sockaddr *) &ss, 4, &p), -EINVAL);
        ck_assert_int_eq(netprefix_from_sockaddr(NULL, sizeof ss, &p), -EINVAL);
        /* nothing written on failure */
        ck_assert_uint_eq(p.key[0], 0x77);
}
END_TEST

static Suite *netprefix_suite(void) {
        Suite *s = suite_create("netprefix");
        TCase *tc = tcase_create("netprefix");

        tcase_add_test(tc, test_grouping);
        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_bad_input);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(netprefix_suite());
}
