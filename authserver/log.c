/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "authserver.h"

/* stderr with "<N>" prefixes: journald (and systemd's stderr forwarding) reads the priority. */
void log_line(int priority, const char *fmt, ...) {
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        fprintf(stderr, "<%d>%s\n", priority, line);
}
