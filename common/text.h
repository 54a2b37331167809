/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Small text helpers shared by the programs' settings files and output. */

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
/* The body of a JSON string for s (quotes not included), NUL-terminated; -ENOBUFS if cap is short. */
int text_json_escape(const char *s, char *out, size_t cap);
/* Splits "host:port" or "[v6]:port" (brackets dropped); the port is not checked here. */
int text_split_host_port(const char *spec, char *host, size_t host_cap, const char **ret_port);
