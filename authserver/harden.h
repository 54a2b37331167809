/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * Keeping the master key (which decrypts every vault) out of core files, swap and other
 * processes' reach, in every mode of authserver: serve and the admin verbs alike, whether
 * or not systemd's unit (LimitCORE=0, a ramfs credential) is there to help.
 */

/* The process becomes non-dumpable (no core file, and /proc/PID/mem, environ and ptrace are
 * closed to other processes of the same user) and its core size limit 0. Call first. */
int harden_process(void);

/* len bytes (rounded up to whole pages) of zeroed memory that is locked in RAM (never
 * swapped), left out of core dumps and wiped in a forked child. Fails closed: -errno if the
 * pages cannot be locked (RLIMIT_MEMLOCK). */
int harden_secret_alloc(size_t len, void **ret);
/* Wipes, unlocks and unmaps; NULL is fine. */
void harden_secret_free(void *p, size_t len);
