/* SPDX-License-Identifier: MIT */
#pragma once

#include "bundle.h"

/* Enrollment bundles as files, for the test devices and servers (never for the product). */

/* Reads and parses PATH, ignoring its `check` line (see bundle-file.c); -errno, or
 * bundle_parse()'s error with *ret_line set. */
int bundle_file_load(const char *path, struct bundle *ret, unsigned *ret_line);
/* Writes B to PATH (mode 0600) atomically and durably: temp file, fsync, rename. */
int bundle_file_save(const char *path, const struct bundle *b);
