/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

bool text_is_printable(const void *p, size_t n, enum text_space space) {
        const uint8_t *b = p, lowest = space == TEXT_SPACE ? 0x20 : 0x21;

        for (size_t i = 0; i < n; i++)
                if (b[i] < lowest || b[i] > 0x7e)
                        return false;
        return true;
}

char *text_strip(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

int text_split_setting(char *line, char **ret_key, char **ret_value) {
        char *key = text_strip(line), *eq;

        if (*key == '\0' || *key == '#')
                return 0;
        eq = strchr(key, '=');
        if (!eq)
                return -EINVAL;
        *eq = '\0';
        *ret_key = text_strip(key);
        *ret_value = text_strip(eq + 1);
        return 1;
}

int text_parse_unsigned(const char *s, unsigned long min, unsigned long max, unsigned long *ret) {
        unsigned long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int text_time_unit(const char *unit, uint64_t *ret_seconds) {
        static const struct {
                const char *name;
                uint64_t seconds;
        } units[] = {
                { "s",   1 },
                { "min", 60 },
                { "h",   3600 },
                { "d",   86400 },
        };

        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
                if (strcmp(unit, units[i].name) == 0) {
                        *ret_seconds = units[i].seconds;
                        return 0;
                }
        return -EINVAL;
}

int text_parse_duration(const char *s, uint64_t default_unit, uint64_t max_seconds, uint64_t *ret_seconds) {
        size_t digits = strspn(s, "0123456789");
        uint64_t unit = default_unit;
        unsigned long long n;
        char number[21];

        if (digits == 0 || digits >= sizeof number)
                return -EINVAL;
        if (s[digits] != '\0' && text_time_unit(s + digits, &unit) < 0)
                return -EINVAL;
        memcpy(number, s, digits);
        number[digits] = '\0';
        errno = 0;
        n = strtoull(number, NULL, 10);
        if (errno || unit == 0 || n > max_seconds / unit)
                return -EINVAL;
        *ret_seconds = (uint64_t) n * unit;
        return 0;
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: shortest form, no surrogate,
 * at most U+10FFFF), or 0 if the bytes there are not one. */
static size_t utf8_sequence(const unsigned char *s) {
        unsigned char c = s[0];
        size_t len;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, cp = c & 0x07;
        else
                return 0;       /* a continuation byte, 0xc0/0xc1 (overlong) or above 0xf4 */
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;       /* includes the terminating NUL: a truncated sequence */
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

int text_json_escape(const char *s, char *out, size_t cap) {
        const unsigned char *p = (const unsigned char *) s;
        size_t o = 0;

        while (*p) {
                unsigned char c = *p;
                char esc[8];
                size_t n, take = 1;

                if (c == '"' || c == '\\')
                        n = (size_t) snprintf(esc, sizeof esc, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        n = (size_t) snprintf(esc, sizeof esc, "\\u%04x", c);
                else if (c < 0x80) {
                        esc[0] = (char) c;
                        n = 1;
                } else if ((take = utf8_sequence(p)) > 0) {
                        memcpy(esc, p, take);
                        n = take;
                } else {
                        /* Not UTF-8: the byte becomes U+FFFD, so that the line stays valid JSON
                         * and a peer's bytes cannot smuggle anything past a parser. */
                        n = (size_t) snprintf(esc, sizeof esc, "\\ufffd");
                        take = 1;
                }
                if (o + n >= cap)
                        return -ENOBUFS;
                memcpy(out + o, esc, n);
                o += n;
                p += take;
        }
        if (o >= cap)
                return -ENOBUFS;
        out[o] = '\0';
        return 0;
}

int text_split_host_port(const char *spec, char *host, size_t host_cap, const char **ret_port) {
        const char *colon = strrchr(spec, ':'), *start = spec;
        size_t len;

        if (!colon || colon == spec || colon[1] == '\0')
                return -EINVAL;
        len = (size_t) (colon - spec);
        if (spec[0] == '[') {
                if (len < 3 || spec[len - 1] != ']')
                        return -EINVAL;
                start++;
                len -= 2;
        }
        if (len >= host_cap)
                return -EINVAL;
        memcpy(host, start, len);
        host[len] = '\0';
        *ret_port = colon + 1;
        return 0;
}

char **text_argv_verb_first(int argc, char *const argv[], int v) {
        char **r;

        if (argc < 2 || v < 1 || v >= argc)
                return NULL;
        r = calloc((size_t) argc, sizeof *r);
        if (!r)
                return NULL;
        r[0] = argv[v];
        memcpy(r + 1, argv + 1, sizeof *argv * (size_t) (v - 1));
        memcpy(r + v, argv + v + 1, sizeof *argv * (size_t) (argc - v - 1));
        return r;
}

bool text_argv_has_json(int argc, char *const argv[]) {
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--json") == 0)
                        return true;
        return false;
}
