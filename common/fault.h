/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/*
 * The one fault-injection hook (libsvio.a), for the crash and failure tests only.
 *
 * SV_FAULT=POINT[,POINT...] in the environment names the faults to inject; each program
 * declares the points it knows and refuses to start on any other name, so a typo in a test
 * cannot pass as "survived the crash". A crash point is one the program passes to
 * fault_crash(), a failure point one it asks fault_fail() about.
 * Building with ./configure --disable-fault-injection compiles every hook to nothing; such a
 * binary refuses to start when SV_FAULT is set.
 *
 * docs/testing.md lists the points of each program.
 */

#define FAULT_ENV               "SV_FAULT"
/* The exit status of a fault_crash(); tests tell it from any real failure. */
#define FAULT_CRASH_EXIT        99

/* Reads SV_FAULT and checks every name against `known` (NULL-terminated). 0, or -EINVAL
 * with the offending name in *ret_bad, or -EOPNOTSUPP when compiled out and SV_FAULT set. */
int fault_setup(const char *const *known, const char **ret_bad);
/* Whether any fault is armed (for one warning at start). */
bool fault_armed(void);
/* Whether `point` is armed. */
bool fault_fail(const char *point);
/* Exits at once with FAULT_CRASH_EXIT, without cleanup, if `point` is armed: the process
 * dies there as it would at a power cut or SIGKILL. */
void fault_crash(const char *point);
