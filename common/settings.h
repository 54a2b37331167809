/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Longest line a settings file may have. */
#define SETTINGS_LINE_MAX       1024

/*
 * Called for every `key = value` line; `where` is "PATH:LINE" for messages. A negative
 * return stops the reading and is returned (the callback reports its own error).
 */
typedef int (*settings_set_fn)(const char *key, const char *value, const char *where, void *userdata);

/*
 * Reads the settings file of vaultd or authserver: `key = value` lines, `#` comment lines,
 * blank lines. A missing file is fine unless `required`. Structural errors (unreadable
 * file, a line too long or without '=') are described in err and return -EINVAL; err is
 * left empty otherwise. Nothing is logged here.
 */
int settings_read(const char *path, bool required, settings_set_fn set, void *userdata, char *err, size_t err_len);
