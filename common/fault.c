/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"

#ifdef SV_FAULT_INJECTION

/* Room for every point one program knows; SV_FAULT longer than that is refused. */
#define FAULT_SPEC_MAX 256

static char armed[FAULT_SPEC_MAX];      /* ",a,b," or empty */

static bool is_known(const char *name, size_t len, const char *const *known) {
        for (; known && *known; known++)
                if (strlen(*known) == len && memcmp(*known, name, len) == 0)
                        return true;
        return false;
}

int fault_setup(const char *const *known, const char **ret_bad) {
        const char *spec = getenv(FAULT_ENV);
        size_t o = 0;

        armed[0] = '\0';
        if (!spec || !*spec)
                return 0;
        if (strlen(spec) + 2 >= sizeof armed) {
                if (ret_bad)
                        *ret_bad = spec;
                return -EINVAL;
        }
        armed[o++] = ',';
        for (const char *p = spec; *p;) {
                size_t len = strcspn(p, ",");

                if (!is_known(p, len, known)) {
                        armed[0] = '\0';
                        if (ret_bad)
                                *ret_bad = spec;
                        return -EINVAL;
                }
                memcpy(armed + o, p, len);
                o += len;
                armed[o++] = ',';
                p += len;
                if (*p == ',')
                        p++;
        }
        armed[o] = '\0';
        return 0;
}

bool fault_armed(void) {
        return armed[0] != '\0';
}

bool fault_fail(const char *point) {
        size_t len = strlen(point);

        if (!armed[0] || len == 0 || strchr(point, ','))
                return false;
        for (const char *p = armed; (p = strstr(p, point)); p++)
                if (p[-1] == ',' && p[len] == ',')
                        return true;
        return false;
}

void fault_crash(const char *point) {
        if (fault_fail(point))
                _exit(FAULT_CRASH_EXIT);
}

#else

int fault_setup(const char *const *known, const char **ret_bad) {
        const char *spec = getenv(FAULT_ENV);

        (void) known;
        if (spec && *spec) {
                if (ret_bad)
                        *ret_bad = spec;
                return -EOPNOTSUPP;
        }
        return 0;
}

bool fault_armed(void) {
        return false;
}

bool fault_fail(const char *point) {
        (void) point;
        return false;
}

void fault_crash(const char *point) {
        (void) point;
}

#endif
