/* SPDX-License-Identifier: MIT */
#pragma once

/* The fields of a known-answer case (tests/lib/kat.h) for the Check suites: a missing field
 * or bad hex fails the test, naming the case's line and the field. */
#include "kat.h"

/* One hex field; free() ret.data. */
struct kat_bytes unit_kat_bytes(const struct kat_case *c, const char *key);
/* One comma-separated list of hex fields; kat_bytes_free_list() it. */
void unit_kat_list(const struct kat_case *c, const char *key, struct kat_bytes **ret, size_t *ret_n);
