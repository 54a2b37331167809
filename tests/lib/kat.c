/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kat.h"

char *kat_path(const char *name) {
        const char *top = getenv("top_srcdir");
        size_t len;
        char *p;

        if (!top || !*top)
                top = ".";
        len = strlen(top) + strlen("/tests/vectors/") + strlen(name) + 1;
        p = malloc(len);
        if (p)
                snprintf(p, len, "%s/tests/vectors/%s", top, name);
        return p;
}

static void case_free(struct kat_case *c) {
        for (size_t i = 0; i < c->n_fields; i++) {
                free(c->fields[i].key);
                free(c->fields[i].value);
        }
        free(c->fields);
        *c = (struct kat_case) { 0 };
}

void kat_free(struct kat_file *f) {
        for (size_t i = 0; i < f->n_cases; i++)
                case_free(&f->cases[i]);
        free(f->cases);
        *f = (struct kat_file) { 0 };
}

const char *kat_get(const struct kat_case *c, const char *key) {
        for (size_t i = 0; i < c->n_fields; i++)
                if (strcmp(c->fields[i].key, key) == 0)
                        return c->fields[i].value;
        return NULL;
}

static char *trim(char *s) {
        size_t len;

        s += strspn(s, " \t");
        len = strlen(s);
        while (len > 0 && strchr(" \t\r\n", s[len - 1]))
                s[--len] = '\0';
        return s;
}

/* Moves the case being read, if any, into the file. */
static int case_end(struct kat_file *f, struct kat_case *c) {
        struct kat_case *v;

        if (c->n_fields == 0)
                return 0;
        v = realloc(f->cases, (f->n_cases + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        f->cases = v;
        f->cases[f->n_cases++] = *c;
        *c = (struct kat_case) { 0 };
        return 0;
}

static int case_add(struct kat_case *c, const char *key, const char *value, unsigned line) {
        struct kat_field *v;
        char *k, *val;

        if (kat_get(c, key))
                return -EINVAL;
        v = realloc(c->fields, (c->n_fields + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        c->fields = v;
        k = strdup(key);
        val = strdup(value);
        if (!k || !val) {
                free(k);
                free(val);
                return -ENOMEM;
        }
        c->fields[c->n_fields++] = (struct kat_field) { k, val };
        if (!c->line)
                c->line = line;
        return 0;
}

int kat_load(const char *path, struct kat_file *ret) {
        struct kat_file f = { 0 };
        struct kat_case c = { 0 };
        char *line = NULL;
        size_t cap = 0;
        unsigned lineno = 0;
        FILE *in;
        int r = 0;

        in = fopen(path, "re");
        if (!in)
                return -errno;
        while (r >= 0 && getline(&line, &cap, in) >= 0) {
                char *key = trim(line), *eq;

                lineno++;
                if (*key == '#')
                        continue;
                if (*key == '\0') {
                        r = case_end(&f, &c);
                        continue;
                }
                eq = strchr(key, '=');
                if (!eq) {
                        fprintf(stderr, "%s:%u: expected 'key = value'\n", path, lineno);
                        r = -EINVAL;
                        break;
                }
                *eq = '\0';
                r = case_add(&c, trim(key), trim(eq + 1), lineno);
                if (r == -EINVAL)
                        fprintf(stderr, "%s:%u: duplicate field '%s'\n", path, lineno, trim(key));
        }
        if (r >= 0 && ferror(in))
                r = -EIO;
        if (r >= 0)
                r = case_end(&f, &c);
        fclose(in);
        free(line);
        case_free(&c);
        if (r < 0) {
                kat_free(&f);
                return r;
        }
        *ret = f;
        return 0;
}

int kat_each(const char *name, kat_case_fn fn, void *userdata) {
        struct kat_file f;
        char *path = kat_path(name);
        int r;

        if (!path)
                return -ENOMEM;
        r = kat_load(path, &f);
        free(path);
        if (r < 0)
                return r;
        for (size_t i = 0; i < f.n_cases && r == 0; i++)
                r = fn(&f.cases[i], userdata);
        if (r == 0)
                r = f.n_cases > (size_t) INT_MAX ? -E2BIG : (int) f.n_cases;
        kat_free(&f);
        return r;
}

static int nibble(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

static int hex_span(const char *s, size_t len, struct kat_bytes *ret) {
        uint8_t *out;

        if (len % 2 != 0)
                return -EINVAL;
        out = malloc(len / 2 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len / 2; i++) {
                int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                        free(out);
                        return -EINVAL;
                }
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret = (struct kat_bytes) { out, len / 2 };
        return 0;
}

int kat_hex(const char *s, struct kat_bytes *ret) {
        return hex_span(s, strlen(s), ret);
}

void kat_bytes_free_list(struct kat_bytes *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].data);
        free(v);
}

int kat_hex_list(const char *s, struct kat_bytes **ret, size_t *ret_n) {
        struct kat_bytes *v = NULL;
        size_t n = 0;

        while (*s) {
                size_t len = strcspn(s, ",");
                struct kat_bytes *w = realloc(v, (n + 1) * sizeof *w);
                int r;

                if (!w) {
                        kat_bytes_free_list(v, n);
                        return -ENOMEM;
                }
                v = w;
                r = hex_span(s, len, &v[n]);
                if (r < 0) {
                        kat_bytes_free_list(v, n);
                        return r;
                }
                n++;
                s += len;
                if (*s == ',')
                        s++;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
