/* SPDX-License-Identifier: MIT */
/* The small text helpers shared by the programs: settings lines, numbers, host:port, JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ratelimit.h"
#include "settings.h"
#include "text.h"
#include "unit.h"

/* Every byte value alone and in company, both modes; the length is obeyed, not a NUL. */
START_TEST(test_is_printable) {
        const char sentence[] = "vault file /var/lib/vault: rolled back (epoch 3 < 4)";
        uint8_t buf[4];

        for (unsigned c = 0; c <= UINT8_MAX; c++) {
                bool graph = c >= 0x21 && c <= 0x7e, print = c >= 0x20 && c <= 0x7e;

                buf[0] = 'a';
                buf[1] = (uint8_t) c;
                buf[2] = 'z';
                ck_assert_msg(text_is_printable(buf + 1, 1, TEXT_NO_SPACE) == graph, "0x%02x", c);
                ck_assert_msg(text_is_printable(buf + 1, 1, TEXT_SPACE) == print, "0x%02x", c);
                ck_assert_msg(text_is_printable(buf, 3, TEXT_NO_SPACE) == graph, "a 0x%02x z", c);
                ck_assert_msg(text_is_printable(buf, 3, TEXT_SPACE) == print, "a 0x%02x z", c);
                /* Bytes past n are not looked at. */
                ck_assert(text_is_printable(buf, 1, TEXT_NO_SPACE));
        }
        ck_assert(text_is_printable("", 0, TEXT_NO_SPACE));
        ck_assert(text_is_printable(NULL, 0, TEXT_SPACE));
        ck_assert(text_is_printable(sentence, strlen(sentence), TEXT_SPACE));
        ck_assert(!text_is_printable(sentence, strlen(sentence), TEXT_NO_SPACE));
        ck_assert(text_is_printable("[::1]:7410", 10, TEXT_NO_SPACE));
        /* The NUL counts as a byte like any other: not printable. */
        ck_assert(!text_is_printable(sentence, sizeof sentence, TEXT_SPACE));
        ck_assert(!text_is_printable("ok\n", 3, TEXT_SPACE));
        ck_assert(!text_is_printable("caf\xc3\xa9", 5, TEXT_SPACE));
        ck_assert(!text_is_printable("del\x7f", 4, TEXT_SPACE));
        ck_assert(!text_is_printable("~\x80", 2, TEXT_SPACE));
        ck_assert(!text_is_printable("\xff", 1, TEXT_NO_SPACE));
}
END_TEST

START_TEST(test_split_setting) {
        char a[] = "  tcti = swtpm:path=/x \r\n", b[] = "   # comment\n", c[] = "\n", d[] = "no equals sign\n";
        char *key = NULL, *value = NULL;

        ck_assert_int_eq(text_split_setting(a, &key, &value), 1);
        ck_assert_str_eq(key, "tcti");
        ck_assert_str_eq(value, "swtpm:path=/x");
        ck_assert_int_eq(text_split_setting(b, &key, &value), 0);
        ck_assert_int_eq(text_split_setting(c, &key, &value), 0);
        ck_assert_int_eq(text_split_setting(d, &key, &value), -EINVAL);
}
END_TEST

START_TEST(test_parse_unsigned) {
        unsigned long v = 7;

        ck_assert_int_eq(text_parse_unsigned("42", 1, 100, &v), 0);
        ck_assert_uint_eq(v, 42);
        v = 7;
        ck_assert_int_eq(text_parse_unsigned("0", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned("101", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned("+5", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned("-5", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned(" 5", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned("5x", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned("", 1, 100, &v), -EINVAL);
        ck_assert_int_eq(text_parse_unsigned("99999999999999999999999", 1, 100, &v), -EINVAL);
        ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(test_parse_duration) {
        uint64_t v = 7;

        ck_assert_int_eq(text_parse_duration("90", 86400, 100 * 86400, &v), 0);
        ck_assert_uint_eq(v, 90 * 86400);
        ck_assert_int_eq(text_parse_duration("0", 86400, 100 * 86400, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(text_parse_duration("12h", 86400, 100 * 86400, &v), 0);
        ck_assert_uint_eq(v, 12 * 3600);
        ck_assert_int_eq(text_parse_duration("5min", 86400, 100 * 86400, &v), 0);
        ck_assert_uint_eq(v, 300);
        ck_assert_int_eq(text_parse_duration("30s", 86400, 100 * 86400, &v), 0);
        ck_assert_uint_eq(v, 30);
        ck_assert_int_eq(text_parse_duration("100d", 86400, 100 * 86400, &v), 0);
        ck_assert_uint_eq(v, 100 * 86400);
        v = 7;
        ck_assert_int_eq(text_parse_duration("101d", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("101", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("5m", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("h", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("-1", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("1 h", 86400, 100 * 86400, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("99999999999999999999", 1, UINT64_MAX, &v), -EINVAL);
        ck_assert_int_eq(text_parse_duration("18446744073709551615d", 86400, UINT64_MAX, &v), -EINVAL);
        ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(test_split_host_port) {
        char host[16];
        const char *port = NULL;

        ck_assert_int_eq(text_split_host_port("127.0.0.1:7410", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "127.0.0.1");
        ck_assert_str_eq(port, "7410");
        ck_assert_int_eq(text_split_host_port("[::1]:0", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "::1");
        ck_assert_str_eq(port, "0");
        ck_assert_int_eq(text_split_host_port("*:7410", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "*");
        ck_assert_int_eq(text_split_host_port("no-port", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(text_split_host_port(":7410", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(text_split_host_port("host:", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(text_split_host_port("[]:1", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(text_split_host_port("[::1:1", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(text_split_host_port("a-very-long-host-name:1", host, sizeof host, &port), -EINVAL);
}
END_TEST

START_TEST(test_json_escape) {
        char out[32];

        ck_assert_int_eq(text_json_escape("a\"b\\c\n", out, sizeof out), 0);
        ck_assert_str_eq(out, "a\\\"b\\\\c\\u000a");
        ck_assert_int_eq(text_json_escape("abcdef", out, 6), -ENOBUFS);
        ck_assert_int_eq(text_json_escape("abcde", out, 6), 0);
        ck_assert_str_eq(out, "abcde");
}
END_TEST

/* Bytes that are not well-formed UTF-8 never reach the JSON line: each becomes \ufffd, and
 * well-formed sequences (2, 3 and 4 bytes) pass through unchanged. */
START_TEST(test_json_escape_utf8) {
        static const struct {
                const char *in, *want;
        } cases[] = {
                { "caf\xc3\xa9", "caf\xc3\xa9" },                          /* U+00E9 */
                { "\xe2\x82\xac", "\xe2\x82\xac" },                         /* U+20AC */
                { "\xf0\x9f\x94\x91", "\xf0\x9f\x94\x91" },                 /* U+1F511 */
                { "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },                 /* U+10FFFF, the last */
                { "a\x80z", "a\\ufffdz" },                                  /* lone continuation */
                { "\xc0\xaf", "\\ufffd\\ufffd" },                          /* overlong '/' */
                { "\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd" },              /* overlong, 3 bytes */
                { "\xf0\x80\x80\xaf", "\\ufffd\\ufffd\\ufffd\\ufffd" },  /* overlong, 4 bytes */
                { "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd" },              /* surrogate U+D800 */
                { "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd" },  /* above U+10FFFF */
                { "\xc3", "\\ufffd" },                                      /* truncated at the end */
                { "\xe2\x82z", "\\ufffd\\ufffdz" },                        /* truncated in the middle */
                { "\xff\xfe", "\\ufffd\\ufffd" },                          /* never in UTF-8 */
                { "\x1b[31m\x7f", "\\u001b[31m\\u007f" },                   /* ESC, DEL */
        };
        char out[64];

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                ck_assert_int_eq(text_json_escape(cases[i].in, out, sizeof out), 0);
                ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: got '%s'", i, out);
        }
        /* 6 bytes out per byte in at most: a buffer of 6 * n + 1 always fits. */
        ck_assert_int_eq(text_json_escape("\xff\xff\xff", out, 19), 0);
        ck_assert_int_eq(text_json_escape("\xff\xff\xff", out, 18), -ENOBUFS);
}
END_TEST

START_TEST(test_argv_has_json) {
        char *a[] = { "prog", "--bogus", "list", "--json", NULL };
        char *b[] = { "prog", "list", "--", "--json", NULL };
        char *c[] = { "prog", "list", "--jsonx", NULL };

        ck_assert(text_argv_has_json(4, a));
        ck_assert(!text_argv_has_json(4, b));   /* after "--": an operand */
        ck_assert(!text_argv_has_json(3, c));
        ck_assert(!text_argv_has_json(1, a));
}
END_TEST

START_TEST(test_argv_verb_first) {
        char *argv[] = { "prog", "--db", "x", "list", "--json", NULL };
        char **r = text_argv_verb_first(5, argv, 3);

        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(r[0], "list");
        ck_assert_str_eq(r[1], "--db");
        ck_assert_str_eq(r[2], "x");
        ck_assert_str_eq(r[3], "--json");
        ck_assert_ptr_null(r[4]);
        free(r);
        r = text_argv_verb_first(5, argv, 1);   /* the verb first: only argv[0] dropped */
        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(r[0], "--db");
        ck_assert_str_eq(r[3], "--json");
        ck_assert_ptr_null(r[4]);
        free(r);
        ck_assert_ptr_null(text_argv_verb_first(5, argv, 0));
        ck_assert_ptr_null(text_argv_verb_first(5, argv, 5));
        ck_assert_ptr_null(text_argv_verb_first(1, argv, 1));
}
END_TEST

START_TEST(test_ratelimit) {
        struct ratelimit rl = { 0 };
        unsigned dropped = 99;

        ck_assert(ratelimit_pass(&rl, 5, 100, &dropped));
        ck_assert_uint_eq(dropped, 0);
        ck_assert(!ratelimit_pass(&rl, 6, 100, &dropped));
        ck_assert(!ratelimit_pass(&rl, 104, 100, &dropped));
        ck_assert(ratelimit_pass(&rl, 105, 100, &dropped));
        ck_assert_uint_eq(dropped, 2);
        ck_assert(!ratelimit_pass(&rl, 106, 100, &dropped));
        ck_assert(ratelimit_pass(&rl, 1000, 100, &dropped));
        ck_assert_uint_eq(dropped, 1);
}
END_TEST

struct seen_settings {
        char text[256];
        int stop_at, calls;
};

static int record_setting(const char *key, const char *value, const char *where, void *userdata) {
        struct seen_settings *seen = userdata;
        size_t used = strlen(seen->text);

        if (++seen->calls == seen->stop_at)
                return -ERANGE;
        snprintf(seen->text + used, sizeof seen->text - used, "%s=%s@%s;", key, value,
                 strrchr(where, ':') + 1);
        return 0;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_settings_read) {
        char dir[] = "/tmp/check_text.XXXXXX", path[64], missing[64], err[256];
        struct seen_settings seen = { .stop_at = -1 };

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/conf", dir);
        snprintf(missing, sizeof missing, "%s/none", dir);

        write_text(path, "# comment\n\n  listen = 127.0.0.1:7410 \ntimeout=5\n");
        ck_assert_int_eq(settings_read(path, true, record_setting, &seen, err, sizeof err), 0);
        ck_assert_str_eq(seen.text, "listen=127.0.0.1:7410@3;timeout=5@4;");
        ck_assert_str_eq(err, "");

        /* The callback's own error stops the reading and is returned as it is. */
        memset(&seen, 0, sizeof seen);
        seen.stop_at = 2;
        ck_assert_int_eq(settings_read(path, true, record_setting, &seen, err, sizeof err), -ERANGE);
        ck_assert_int_eq(seen.calls, 2);

        write_text(path, "listen = x\nno equals sign\n");
        memset(&seen, 0, sizeof seen);
        seen.stop_at = -1;
        ck_assert_int_eq(settings_read(path, true, record_setting, &seen, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, ":2: expected 'key = value', got 'no equals sign'"));

        ck_assert_int_eq(settings_read(missing, false, record_setting, &seen, err, sizeof err), 0);
        ck_assert_int_eq(settings_read(missing, true, record_setting, &seen, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
        /* A directory opens but cannot be read: the message says why. */
        ck_assert_int_eq(settings_read(dir, true, record_setting, &seen, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "Is a directory"));

        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *text_suite(void) {
        Suite *s = suite_create("text");
        TCase *tc = tcase_create("text");

        tcase_add_test(tc, test_is_printable);
        tcase_add_test(tc, test_split_setting);
        tcase_add_test(tc, test_parse_unsigned);
        tcase_add_test(tc, test_parse_duration);
        tcase_add_test(tc, test_split_host_port);
        tcase_add_test(tc, test_json_escape);
        tcase_add_test(tc, test_json_escape_utf8);
        tcase_add_test(tc, test_argv_has_json);
        tcase_add_test(tc, test_argv_verb_first);
        tcase_add_test(tc, test_settings_read);
        tcase_add_test(tc, test_ratelimit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(text_suite());
}
