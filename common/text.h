/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Small text helpers shared by the programs' settings files and output. */

/* Whether the space counts as printable for text_is_printable(). */
enum text_space {
        TEXT_NO_SPACE,          /* 0x21..0x7e only, like isgraph(): one token, e.g. a log field */
        TEXT_SPACE,             /* 0x20..0x7e, like isprint(): a sentence */
};
/* Every one of the n bytes printable ASCII, whatever the locale (and no NUL); true for n = 0. */
bool text_is_printable(const void *p, size_t n, enum text_space space);

/* Trims spaces, tabs and line ends on both sides, in place. */
char *text_strip(char *s);
/* Splits one `key = value` settings line in place: 0 for a blank or `#` comment line, 1 with
 * *ret_key and *ret_value set, -EINVAL for a line without '='. */
int text_split_setting(char *line, char **ret_key, char **ret_value);
/* Decimal without sign, spaces or trailing garbage, within min..max. */
int text_parse_unsigned(const char *s, unsigned long min, unsigned long max, unsigned long *ret);
/* The length of a time unit "s", "min", "h" or "d" in seconds; -EINVAL for anything else. */
int text_time_unit(const char *unit, uint64_t *ret_seconds);
/* A duration "N" (in default_unit seconds) or "N" directly followed by a unit of
 * text_time_unit(), at most max_seconds; in seconds. */
int text_parse_duration(const char *s, uint64_t default_unit, uint64_t max_seconds, uint64_t *ret_seconds);
/* The body of a JSON string for s (quotes not included), NUL-terminated; -ENOBUFS if cap is
 * short. Well-formed UTF-8 passes through; '"', '\\', control characters and DEL are escaped,
 * and every byte that is not part of well-formed UTF-8 becomes \ufffd. At most 6 bytes out
 * per byte in. */
int text_json_escape(const char *s, char *out, size_t cap);
/* Splits "host:port" or "[v6]:port" (brackets dropped); the port is not checked here. */
int text_split_host_port(const char *spec, char *host, size_t host_cap, const char **ret_port);
/* For a command line with options on both sides of its verb argv[v]: a new argv of argc - 1
 * entries and a NULL, argv[v] then argv[1..v-1] then argv[v+1..] (the strings are argv's; free()
 * the array). NULL when out of memory or v is not 1..argc-1. */
char **text_argv_verb_first(int argc, char *const argv[], int v);
/* Whether "--json" is among argv[1..] before a "--": so that a command can print as JSON
 * even the errors it meets before its option parser reaches --json. */
bool text_argv_has_json(int argc, char *const argv[]);
