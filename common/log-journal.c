/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

/* Our CODE_FILE/LINE/FUNC are the caller's, not log.c's. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log-journal.h"

/*
 * In an archive of its own (libsvjournal.a), which only the programs that log to the journal
 * link: devicectl passes no journal writer to log_open() and so loads no libsystemd, whose
 * dynamic loading (libsystemd, libgcrypt, liblzma, libzstd, liblz4, libcap, libgpg-error) was
 * the largest part of its start-up (docs/benchmarks.md, "Device side").
 */
int log_journal_sink(const char *ident, int level, int error, const char *file, int line, const char *func,
                     const struct log_field *fields, size_t n_fields, const char *message) {
        /* MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, CODE_FUNC, ERRNO + fields */
        char buf[7 + LOG_FIELDS_MAX][LOG_MESSAGE_MAX + 64];
        struct iovec iov[7 + LOG_FIELDS_MAX];
        size_t n = 0;

        snprintf(buf[n++], sizeof buf[0], "MESSAGE=%s", message);
        snprintf(buf[n++], sizeof buf[0], "PRIORITY=%d", level);
        snprintf(buf[n++], sizeof buf[0], "SYSLOG_IDENTIFIER=%s", ident);
        snprintf(buf[n++], sizeof buf[0], "CODE_FILE=%s", file);
        snprintf(buf[n++], sizeof buf[0], "CODE_LINE=%d", line);
        snprintf(buf[n++], sizeof buf[0], "CODE_FUNC=%s", func);
        if (error != 0)
                snprintf(buf[n++], sizeof buf[0], "ERRNO=%d", error);
        for (size_t i = 0; i < n_fields && i < LOG_FIELDS_MAX; i++) {
                char value[LOG_MESSAGE_MAX];

                if (!fields[i].name || !fields[i].value)
                        continue;
                snprintf(buf[n++], sizeof buf[0], "%s=%s", fields[i].name,
                         log_escape(fields[i].value, value, sizeof value));
        }
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { .iov_base = buf[i], .iov_len = strlen(buf[i]) };
        return sd_journal_sendv(iov, (int) n);
}
