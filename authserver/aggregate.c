/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_alnum(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool name_char(char c, bool first) {
        return is_alnum(c) || c == '_' || (!first && (c == '.' || c == '-'));
}

static bool name_valid_n(const char *s, size_t len) {
        if (len == 0 || len > AGGREGATE_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!name_char(s[i], i == 0))
                        return false;
        return true;
}

bool aggregate_name_valid(const char *s) {
        size_t len = strnlen(s, AGGREGATE_NAME_MAX + 1);

        return name_valid_n(s, len);
}

static size_t digits(const char *s, size_t i, size_t len) {
        size_t start = i;

        while (i < len && is_digit(s[i]))
                i++;
        return i - start;
}

/* The NUMBER grammar of aggregate.h, checked before strtod() sees it: strtod() alone would
 * take spaces, hex, "inf", "nan" and the locale's decimal point. */
static bool number_syntax(const char *s, size_t len) {
        size_t i = 0, d, f = 0;

        if (i < len && (s[i] == '+' || s[i] == '-'))
                i++;
        d = digits(s, i, len);
        i += d;
        if (i < len && s[i] == '.') {
                i++;
                f = digits(s, i, len);
                i += f;
        }
        if (d + f == 0)
                return false;
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < len && (s[i] == '+' || s[i] == '-'))
                        i++;
                d = digits(s, i, len);
                if (d == 0)
                        return false;
                i += d;
        }
        return i == len;
}

int aggregate_parse(const void *payload, size_t len, char ret_name[AGGREGATE_NAME_MAX + 1], double *ret_value) {
        const char *p = payload, *eq;
        char num[AGGREGATE_NUMBER_MAX + 1], *end;
        size_t name_len, num_len;
        double v;

        if (!p || len == 0)
                return -EINVAL;
        eq = memchr(p, '=', len);
        if (!eq)
                return -EINVAL;
        name_len = (size_t) (eq - p);
        num_len = len - name_len - 1;
        if (name_len > AGGREGATE_NAME_MAX)
                return -ENAMETOOLONG;
        if (!name_valid_n(p, name_len))
                return -EINVAL;
        if (num_len > AGGREGATE_NUMBER_MAX || !number_syntax(eq + 1, num_len))
                return -EDOM;
        memcpy(num, eq + 1, num_len);
        num[num_len] = '\0';
        /* The syntax is checked: only the range can fail. A C-locale '.' is assumed; authserver
         * never calls setlocale(). Underflow to 0 or a subnormal is a fine value. */
        errno = 0;
        v = strtod(num, &end);
        if (end != num + num_len)
                return -EDOM;
        if (!isfinite(v))
                return -ERANGE;
        memcpy(ret_name, p, name_len);
        ret_name[name_len] = '\0';
        *ret_value = v;
        return 0;
}

int aggregate_fold(struct aggregate *a, double value) {
        double sum;

        if (!isfinite(value))
                return -ERANGE;
        if (a->count == 0) {
                a->count = 1;
                a->sum = a->min = a->max = value;
                return 0;
        }
        if (a->count == UINT64_MAX)
                return -ERANGE;
        sum = a->sum + value;
        if (!isfinite(sum))
                return -ERANGE;
        a->count++;
        a->sum = sum;
        if (value < a->min)
                a->min = value;
        if (value > a->max)
                a->max = value;
        return 0;
}

double aggregate_mean(const struct aggregate *a) {
        return a->count ? a->sum / (double) a->count : 0.0;
}

int aggregate_format(const struct aggregate *a, char *buf, size_t cap) {
        int n;

        if (a->count == 0 || !aggregate_name_valid(a->name))
                return -EINVAL;
        n = snprintf(buf, cap, "%s count=%llu sum=%.15g mean=%.15g min=%.15g max=%.15g", a->name,
                     (unsigned long long) a->count, a->sum, aggregate_mean(a), a->min, a->max);
        if (n < 0 || (size_t) n >= cap)
                return -ENOBUFS;
        return n;
}

_Static_assert(AGGREGATE_NAME_MAX == 64, "the error line names the bound");

int aggregate_format_error(int r, char *buf, size_t cap) {
        const char *why;
        int n;

        switch (r) {
        case -EINVAL: why = "expected NAME=NUMBER"; break;
        case -ENAMETOOLONG: why = "name too long (at most 64 bytes)"; break;
        case -EDOM: why = "not a decimal number"; break;
        case -ERANGE: why = "number out of range"; break;
        default: why = "not stored"; break;
        }
        n = snprintf(buf, cap, "error: %s", why);
        if (n < 0 || (size_t) n >= cap)
                return -ENOBUFS;
        return n;
}
