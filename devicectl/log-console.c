/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "log.h"

/*
 * devicectl logs to the console only (main.c: LOG_TARGET_CONSOLE). Defining the journal writer
 * here keeps the linker from taking common/log-journal.o out of libsvio.a, and with it
 * libsystemd and the six libraries it loads: about half of devicectl's start-up time
 * (docs/benchmarks.md, "Device side").
 */
int log_journal_write(const char *ident, int level, int error, const char *file, int line, const char *func,
                      const struct log_field *fields, size_t n_fields, const char *message) {
        (void) ident, (void) level, (void) error, (void) file, (void) line, (void) func;
        (void) fields, (void) n_fields, (void) message;
        return -ENOSYS;
}
