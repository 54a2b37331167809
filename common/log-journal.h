/* SPDX-License-Identifier: MIT */
#pragma once

#include "log.h"

/*
 * The journal writer of common/log.h (libsvjournal.a, which needs libsystemd): vaultd and
 * authserver pass it to log_open(). sd_journal_sendv() of MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC (the caller's), ERRNO when error != 0 and the
 * caller's fields (values escaped as messages are); returns its result (< 0: nothing taken).
 */
int log_journal_sink(const char *ident, int level, int error, const char *file, int line, const char *func,
                     const struct log_field *fields, size_t n_fields, const char *message);
