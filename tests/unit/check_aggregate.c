/* SPDX-License-Identifier: MIT */

/*
 * authserver/aggregate: the built-in handler's pure part: what a DATA payload may be
 * (NAME=NUMBER, aggregate.h), the fold (count, sum, min, max, mean), the answer lines.
 */

#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "aggregate.h"
#include "unit.h"

static int parse(const char *s, char name[AGGREGATE_NAME_MAX + 1], double *v) {
        return aggregate_parse(s, strlen(s), name, v);
}

START_TEST(test_parse_good) {
        static const struct {
                const char *in, *name;
                double v;
        } cases[] = {
                { "temp=21.5", "temp", 21.5 },
                { "temp=22.5", "temp", 22.5 },
                { "a=0", "a", 0 },
                { "_x=-3", "_x", -3 },
                { "Room.4-b_2=+7.", "Room.4-b_2", 7 },
                { "x=.5", "x", 0.5 },
                { "x=1e3", "x", 1000 },
                { "x=-2.5E-2", "x", -0.025 },
                { "x=1e-999", "x", 0 },         /* underflow is a finite value */
                { "9=1", "9", 1 },
                { "x=1.7976931348623157e308", "x", DBL_MAX },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char name[AGGREGATE_NAME_MAX + 1];
                double v = -1;

                unit_assert(parse(cases[i].in, name, &v) == 0, "%s refused", cases[i].in);
                ck_assert_str_eq(name, cases[i].name);
                unit_assert(v == cases[i].v, "%s: %.17g", cases[i].in, v);
        }
}
END_TEST

START_TEST(test_parse_bad) {
        static const struct {
                const char *in;
                int want;
        } cases[] = {
                { "", -EINVAL }, { "temp", -EINVAL }, { "=1", -EINVAL }, { ".x=1", -EINVAL },
                { "-x=1", -EINVAL }, { "te mp=1", -EINVAL }, { "t:x=1", -EINVAL }, { "t/x=1", -EINVAL },
                { "temp =1", -EINVAL }, { "t\xc3\xa9=1", -EINVAL },
                { "temp=", -EDOM }, { "temp= 1", -EDOM }, { "temp=1 ", -EDOM }, { "temp=1\n", -EDOM },
                { "temp=0x10", -EDOM }, { "temp=inf", -EDOM }, { "temp=nan", -EDOM }, { "temp=-", -EDOM },
                { "temp=.", -EDOM }, { "temp=1e", -EDOM }, { "temp=1e+", -EDOM }, { "temp=1,5", -EDOM },
                { "temp=1=2", -EDOM }, { "temp=++1", -EDOM }, { "temp=abc", -EDOM },
                { "temp=1e999", -ERANGE }, { "temp=-1e400", -ERANGE },
                { "x=1.8e308", -ERANGE },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char name[AGGREGATE_NAME_MAX + 1] = "untouched";
                double v = 42;
                int r = parse(cases[i].in, name, &v);

                unit_assert(r == cases[i].want, "'%s': %d", cases[i].in, r);
                ck_assert_str_eq(name, "untouched");
                ck_assert(v == 42);
        }
}
END_TEST

START_TEST(test_parse_bounds) {
        char buf[256], name[AGGREGATE_NAME_MAX + 1];
        double v;

        /* A name of exactly the bound, one over it. */
        memset(buf, 'n', AGGREGATE_NAME_MAX);
        strcpy(buf + AGGREGATE_NAME_MAX, "=1");
        ck_assert_int_eq(parse(buf, name, &v), 0);
        ck_assert_uint_eq(strlen(name), AGGREGATE_NAME_MAX);
        memset(buf, 'n', AGGREGATE_NAME_MAX + 1);
        strcpy(buf + AGGREGATE_NAME_MAX + 1, "=1");
        ck_assert_int_eq(parse(buf, name, &v), -ENAMETOOLONG);
        /* A number of exactly the bound, one over it. */
        strcpy(buf, "x=");
        memset(buf + 2, '0', AGGREGATE_NUMBER_MAX);
        buf[2 + AGGREGATE_NUMBER_MAX] = '\0';
        ck_assert_int_eq(parse(buf, name, &v), 0);
        memset(buf + 2, '0', AGGREGATE_NUMBER_MAX + 1);
        buf[3 + AGGREGATE_NUMBER_MAX] = '\0';
        ck_assert_int_eq(parse(buf, name, &v), -EDOM);
        /* A NUL inside the payload is not the end of it. */
        ck_assert_int_eq(aggregate_parse("x=1\0" "5", 5, name, &v), -EDOM);
        ck_assert_int_eq(aggregate_parse("x\0=1", 4, name, &v), -EINVAL);
        /* The length given is the payload: bytes after it are not read. */
        ck_assert_int_eq(aggregate_parse("x=12", 3, name, &v), 0);
        ck_assert(v == 1);
        ck_assert_int_eq(aggregate_parse(NULL, 0, name, &v), -EINVAL);
}
END_TEST

START_TEST(test_fold_and_format) {
        struct aggregate a = { .name = "temp" };
        char line[AGGREGATE_LINE_MAX];

        ck_assert_int_eq(aggregate_format(&a, line, sizeof line), -EINVAL);
        ck_assert(aggregate_mean(&a) == 0);
        ck_assert_int_eq(aggregate_fold(&a, 21.5), 0);
        ck_assert_int_gt(aggregate_format(&a, line, sizeof line), 0);
        ck_assert_str_eq(line, "temp count=1 sum=21.5 mean=21.5 min=21.5 max=21.5");
        ck_assert_int_eq(aggregate_fold(&a, 22.5), 0);
        ck_assert_int_eq(aggregate_format(&a, line, sizeof line), (int) strlen(line));
        ck_assert_str_eq(line, "temp count=2 sum=44 mean=22 min=21.5 max=22.5");
        ck_assert_int_eq(aggregate_fold(&a, -100), 0);
        ck_assert_int_eq(aggregate_fold(&a, 1000), 0);
        ck_assert_uint_eq(a.count, 4);
        ck_assert(a.min == -100 && a.max == 1000 && a.sum == 944 && aggregate_mean(&a) == 236);
        /* Too small a buffer: nothing but -ENOBUFS. */
        ck_assert_int_eq(aggregate_format(&a, line, 10), -ENOBUFS);
}
END_TEST

START_TEST(test_fold_range) {
        struct aggregate a = { .name = "big" }, before;
        char line[AGGREGATE_LINE_MAX];

        ck_assert_int_eq(aggregate_fold(&a, DBL_MAX), 0);
        before = a;
        /* The sum would overflow: refused, nothing changes. */
        ck_assert_int_eq(aggregate_fold(&a, DBL_MAX), -ERANGE);
        ck_assert(a.count == before.count && a.sum == before.sum && a.min == before.min && a.max == before.max);
        ck_assert_int_eq(aggregate_fold(&a, INFINITY), -ERANGE);
        ck_assert_int_eq(aggregate_fold(&a, NAN), -ERANGE);
        ck_assert_uint_eq(a.count, 1);
        ck_assert_int_eq(aggregate_fold(&a, -DBL_MAX), 0);
        ck_assert(a.sum == 0 && a.min == -DBL_MAX && a.max == DBL_MAX);
        /* The longest numbers fit in a line with the longest name. */
        memset(a.name, 'n', AGGREGATE_NAME_MAX);
        a.name[AGGREGATE_NAME_MAX] = '\0';
        a.count = UINT64_MAX;
        a.sum = -DBL_MAX;
        a.min = -DBL_MIN;
        ck_assert_int_gt(aggregate_format(&a, line, sizeof line), 0);
        ck_assert_int_eq(aggregate_fold(&a, 1), -ERANGE);
}
END_TEST

START_TEST(test_error_lines) {
        static const int errs[] = { -EINVAL, -ENAMETOOLONG, -EDOM, -ERANGE, -EIO, -ESTALE };
        char line[AGGREGATE_LINE_MAX];

        for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
                ck_assert_int_gt(aggregate_format_error(errs[i], line, sizeof line), 7);
                ck_assert(strncmp(line, "error: ", 7) == 0);
        }
        /* A valid NAME cannot make an answer line look like an error line. */
        ck_assert(!aggregate_name_valid("error:"));
        ck_assert(aggregate_name_valid("error"));
        ck_assert(!aggregate_name_valid(""));
        ck_assert_int_eq(aggregate_format_error(-EINVAL, line, 5), -ENOBUFS);
}
END_TEST

static Suite *aggregate_suite(void) {
        Suite *s = suite_create("aggregate");
        TCase *tc = tcase_create("aggregate");

        tcase_add_test(tc, test_parse_good);
        tcase_add_test(tc, test_parse_bad);
        tcase_add_test(tc, test_parse_bounds);
        tcase_add_test(tc, test_fold_and_format);
        tcase_add_test(tc, test_fold_range);
        tcase_add_test(tc, test_error_lines);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(aggregate_suite());
}
