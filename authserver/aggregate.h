/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * authserver's built-in handler of the data channel (protocol §11), as pure code: a DATA
 * payload `NAME=NUMBER` is folded into the running aggregate of NAME (over all devices), and
 * answered with one text line. No I/O: the store keeps the aggregates (store.h), conn.c
 * carries the records.
 *
 * The payload, byte for byte (no spaces, no line end, no NUL):
 *   NAME    1..AGGREGATE_NAME_MAX bytes of [A-Za-z0-9_.-], starting with a letter, a digit or '_'
 *   '='
 *   NUMBER  [+-]? DIGITS [. DIGITS?]? ([eE] [+-]? DIGITS)?  or  [+-]? . DIGITS (exponent as before)
 *           at most AGGREGATE_NUMBER_MAX bytes, decimal only (no hex, inf, nan), and its value a
 *           finite double (1e999 is refused, 1e-999 is 0)
 *
 * Answer lines (no line end; the record is the frame):
 *   NAME count=C sum=S mean=M min=L max=H     C an integer, the others %.15g
 *   error: WHY                                for anything else; nothing is folded then
 */

#define AGGREGATE_NAME_MAX      64
#define AGGREGATE_NUMBER_MAX    64
/* The longest answer: a name and five numbers of at most 24 bytes each. */
#define AGGREGATE_LINE_MAX      256

struct aggregate {
        char name[AGGREGATE_NAME_MAX + 1];
        uint64_t count;                 /* 0: empty, the other fields are not used */
        double sum, min, max;
};

/*
 * Parses a payload. -EINVAL not NAME=NUMBER, -ENAMETOOLONG a NAME too long, -EDOM a NUMBER that
 * is not one, -ERANGE a NUMBER out of the finite doubles. ret_* written only on success.
 */
int aggregate_parse(const void *payload, size_t len, char ret_name[AGGREGATE_NAME_MAX + 1], double *ret_value);

/* Whether s is a valid NAME (the store checks the names it reads). */
bool aggregate_name_valid(const char *s);

/* Folds value into a (whose name is set). -ERANGE if the sum would stop being finite: a is
 * left unchanged. */
int aggregate_fold(struct aggregate *a, double value);

/* sum / count; 0 for an empty aggregate. */
double aggregate_mean(const struct aggregate *a);

/* The answer line of a (count >= 1) into buf (NUL-terminated); returns its length or -ENOBUFS. */
int aggregate_format(const struct aggregate *a, char *buf, size_t cap);

/* "error: WHY" for an error of aggregate_parse() or aggregate_fold() (or another -errno). */
int aggregate_format_error(int r, char *buf, size_t cap);
