/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A reader for the known-answer files of protocol §9 (tests/vectors/NAME.txt): cases of
 * `key = value` lines, one blank line between cases, `#` comments. It knows no field
 * names, so every suite asks for the fields it checks. Test code only: aborts nothing,
 * returns -errno.
 */
#include <stddef.h>
#include <stdint.h>

struct kat_field {
        char *key;
        char *value;
};

struct kat_case {
        struct kat_field *fields;
        size_t n_fields;
        unsigned line;                  /* of its first field */
};

struct kat_file {
        struct kat_case *cases;
        size_t n_cases;
};

struct kat_bytes {
        uint8_t *data;
        size_t len;
};

/* $top_srcdir/tests/vectors/NAME (top_srcdir from the environment, "." without); free() it. */
char *kat_path(const char *name);

/* -EINVAL for a line that is not `key = value` or a key twice in one case. */
int kat_load(const char *path, struct kat_file *ret);
void kat_free(struct kat_file *f);

/* Loads tests/vectors/NAME (kat_path()) and hands each case, in the file's order, to fn; a
 * non-zero return of fn stops the walk and is returned. Else the number of cases walked, or
 * -errno if the file cannot be found or read. */
typedef int (*kat_case_fn)(const struct kat_case *c, void *userdata);
int kat_each(const char *name, kat_case_fn fn, void *userdata);

/* The value of `key` in the case, NULL if it has none. */
const char *kat_get(const struct kat_case *c, const char *key);

/* Lowercase or uppercase hex, even length; "" is zero bytes. free() ret->data. */
int kat_hex(const char *s, struct kat_bytes *ret);
/* Comma-separated hex strings; "" is an empty list. kat_bytes_free_list() the result. */
int kat_hex_list(const char *s, struct kat_bytes **ret, size_t *ret_n);
void kat_bytes_free_list(struct kat_bytes *v, size_t n);
