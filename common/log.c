/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

static const char *log_ident = "secure-vault";
static enum log_target log_target = LOG_TARGET_KMSG;
static int log_max_level = LOG_INFO;
static log_journal_fn log_journal;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* $JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; it is ours only if
 * stderr is still that stream (a child may have inherited the variable, not the stream). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        uintmax_t dev, ino;
        struct stat st;
        char tail;

        if (!e || sscanf(e, "%ju:%ju%c", &dev, &ino, &tail) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (uintmax_t) st.st_dev == dev && (uintmax_t) st.st_ino == ino;
}

void log_open(const char *ident, enum log_target target, enum log_target fallback, log_journal_fn journal) {
        if (ident)
                log_ident = ident;
        if (target == LOG_TARGET_AUTO)
                target = journal && stderr_is_journal() ? LOG_TARGET_JOURNAL : fallback;
        if (target == LOG_TARGET_AUTO || (target == LOG_TARGET_JOURNAL && !journal))
                target = LOG_TARGET_KMSG;
        if (target == LOG_TARGET_KMSG && isatty(STDERR_FILENO))
                target = LOG_TARGET_TERMINAL;
        log_target = target;
        log_journal = journal;
}

enum log_target log_get_target(void) {
        return log_target;
}

void log_set_max_level(int level) {
        if (level >= LOG_EMERG && level <= LOG_DEBUG)
                log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        if (!s || !*s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        for (int i = LOG_EMERG; i <= LOG_DEBUG; i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < LOG_EMERG || level > LOG_DEBUG)
                return NULL;
        return level_names[level];
}

/* One line for a person at a terminal: the time (UTC, milliseconds), who, how grave, what. */
static void write_terminal(int level, const char *message) {
        struct timespec ts;
        struct tm tm;
        char when[32] = "";

        if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &tm) &&
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm) > 0)
                snprintf(when + strlen(when), sizeof when - strlen(when), ".%03ldZ ", ts.tv_nsec / 1000000);
        fprintf(stderr, "%s%s[%d]: %s: %s\n", when, log_ident, (int) getpid(),
                log_level_to_string(level) ?: "?", message);
}

/* One JSON object per line; the message (at most LOG_MESSAGE_MAX - 1 bytes, so its escaped
 * form always fits) is escaped by text_json_escape() of libsvcommon.a. */
static void write_json(int level, const char *message) {
        char json[6 * LOG_MESSAGE_MAX + 8];       /* \u00XX for each control character */

        if (text_json_escape(message, json, sizeof json) < 0)
                json[0] = '\0';
        fprintf(stderr, "{\"level\":\"%s\",\"message\":\"%s\"}\n", log_level_to_string(level) ?: "?", json);
}

char *log_escape(const char *src, char *dst, size_t cap) {
        size_t o = 0;

        if (cap == 0)
                return dst;
        for (; *src; src++) {
                unsigned char c = (unsigned char) *src;
                char esc[5];
                size_t n;

                if (c == '\n')
                        n = (size_t) snprintf(esc, sizeof esc, "\\n");
                else if (c == '\t')
                        n = (size_t) snprintf(esc, sizeof esc, "\\t");
                else if (c < 0x20 || c == 0x7f)
                        n = (size_t) snprintf(esc, sizeof esc, "\\x%02x", c);
                else {
                        esc[0] = (char) c;
                        n = 1;
                }
                if (o + n >= cap)
                        break;
                memcpy(dst + o, esc, n);
                o += n;
        }
        dst[o] = '\0';
        return dst;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const struct log_field *fields, size_t n_fields, const char *fmt, ...) {
        char raw[LOG_MESSAGE_MAX], message[LOG_MESSAGE_MAX];
        int saved_errno = errno;
        va_list ap;
        int n;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                goto out;

        errno = error;          /* for %m */
        va_start(ap, fmt);
        n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        if (n >= (int) sizeof raw)
                memcpy(raw + sizeof raw - 4, "...", 4);
        log_escape(raw, message, sizeof message);

        switch (log_target) {
        case LOG_TARGET_JOURNAL:
                if (log_journal(log_ident, level, error, file, line, func, fields, n_fields, message) < 0)
                        fprintf(stderr, "<%d>%s\n", level, message);
                break;
        case LOG_TARGET_CONSOLE:
                fprintf(stderr, "%s: %s\n", log_ident, message);
                break;
        case LOG_TARGET_TERMINAL:
                write_terminal(level, message);
                break;
        case LOG_TARGET_JSON:
                write_json(level, raw);
                break;
        default:
                fprintf(stderr, "<%d>%s\n", level, message);
                break;
        }
out:
        errno = saved_errno;
        return error != 0 ? -error : 0;
}
