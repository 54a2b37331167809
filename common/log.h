/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/*
 * The one logger of vaultd, authserver and devicectl (libsvio.a).
 *
 * Targets:
 *   LOG_TARGET_JOURNAL  the journal writer given to log_open() (vaultd and authserver:
 *                       log_journal_sink of common/log-journal.h, sd_journal_sendv with MESSAGE,
 *                       PRIORITY, ERRNO, CODE_* and the caller's fields); chosen by
 *                       log_open(LOG_TARGET_AUTO) when stderr is the journal ($JOURNAL_STREAM
 *                       names stderr's device and inode) and there is a writer.
 *   LOG_TARGET_KMSG     "<N>MESSAGE" lines on stderr, the daemons' default elsewhere: journald
 *                       reads the priority prefix when stderr reaches it some other way.
 *   LOG_TARGET_CONSOLE  "IDENT: MESSAGE" on stderr, for a command a person runs (devicectl).
 *   LOG_TARGET_TERMINAL "YYYY-MM-DDTHH:MM:SS.mmmZ IDENT[PID]: LEVEL: MESSAGE" on stderr (UTC):
 *                       chosen by log_open() instead of KMSG when stderr is a terminal, where a
 *                       person reads a daemon's lines and no journald reads the "<N>" prefix.
 *   LOG_TARGET_JSON     {"level":"err","message":"..."} lines on stderr: devicectl --json.
 *
 * Every message has its control characters escaped (\n, \t, \xNN), so that nothing a peer or
 * a file supplies can forge a second line. Never pass key material to any of these.
 */

enum log_target {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_KMSG,
        LOG_TARGET_CONSOLE,
        LOG_TARGET_TERMINAL,
        LOG_TARGET_JSON,
};

/* The longest message; longer ones are cut (and end in "..."). */
#define LOG_MESSAGE_MAX 1024

/* The most caller-supplied fields one message may carry (more are dropped). */
#define LOG_FIELDS_MAX  8

struct log_field {
        const char *name;       /* journal field name: upper case, digits, '_' */
        const char *value;
};

/*
 * A journal writer: returns < 0 when the journal took nothing, and log_internal() then writes
 * the line to stderr as LOG_TARGET_KMSG would. The only one is log_journal_sink
 * (common/log-journal.h, in libsvjournal.a with libsystemd); libsvio.a never refers to it, so
 * a program that passes none (devicectl) links no libsystemd.
 */
typedef int (*log_journal_fn)(const char *ident, int level, int error, const char *file, int line,
                              const char *func, const struct log_field *fields, size_t n_fields,
                              const char *message);

/* AUTO picks JOURNAL when stderr is the journal and `journal` is not NULL, else `fallback`.
 * JOURNAL without a writer (NULL) is KMSG; KMSG on a terminal is TERMINAL. */
void log_open(const char *ident, enum log_target target, enum log_target fallback, log_journal_fn journal);
enum log_target log_get_target(void);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "emerg".."debug" (also "error", "warn") or a number 0..7; -EINVAL otherwise. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/*
 * Writes one message when level <= the maximum level. With error != 0, "%m" in fmt expands to
 * strerror(|error|) and ERRNO= is attached. Returns -|error| (0 when error is 0), written or
 * not, so that `return log_error_errno(r, "...: %m");` works.
 */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const struct log_field *fields, size_t n_fields, const char *fmt, ...)
        __attribute__((format(printf, 8, 9)));

/* Escapes control characters of src into dst (always terminated); returns dst. */
char *log_escape(const char *src, char *dst, size_t cap);

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), __FILE__, __LINE__, __func__, NULL, 0, __VA_ARGS__)
#define log_struct_errno(level, error, fields, n_fields, ...) \
        log_internal((level), (error), __FILE__, __LINE__, __func__, (fields), (n_fields), __VA_ARGS__)

#define log_debug(...)   log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)    log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)  log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)   log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...)  log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, (e), __VA_ARGS__)
