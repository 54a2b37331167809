/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vaultd.h"

/* Log line length; longer lines are cut. */
#define LOG_LINE_MAX 512

/*
 * One line per message on stderr, prefixed with "<N>" (syslog priority), which journald turns
 * into the entry's priority when stderr is connected to the journal (SyslogLevelPrefix=yes is
 * the default). Control characters are replaced, so nothing a peer sends can forge a line.
 * No caller passes secret material here; the log is not the place for any key, ever.
 */
void log_msg(int prio, const char *fmt, ...) {
        char line[LOG_LINE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        for (char *p = line; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        fprintf(stderr, "<%d>%s\n", prio, line);
}
