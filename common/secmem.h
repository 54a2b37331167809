/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Memory for secrets and the process settings that protect it (libsvio.a), for vaultd's vault
 * and KEK and authserver's master key alike.
 *
 * Secrets must not reach swap, core files, /proc/PID/mem of a same-uid attacker, or, where the
 * kernel allows, its direct map. memfd_secret(2) pages are removed from the direct map and are
 * unswappable; without them (ENOSYS before Linux 5.14, secretmem.enable=0, or not asked for),
 * anonymous pages are mlock()ed and excluded from dumps. Both fail closed: no lock, no secret.
 */

/*
 * The process becomes non-dumpable (no core file; /proc/PID/{mem,environ,maps} root-owned;
 * ptrace refused to processes of the same uid) and its core size limit 0. A setrlimit that is
 * refused (a seccomp filter denying @resources) is accepted when both limits are 0 already.
 */
int secmem_harden_process(void);

/* Chooses the mechanism: memfd_secret when `try_memfd_secret` and the kernel offers it, else
 * mlock, which is also what secmem_alloc() uses before any secmem_init(). Call once, before
 * the first secmem_alloc(). */
void secmem_init(bool try_memfd_secret);
/* "memfd_secret" or "mlock+MADV_DONTDUMP". */
const char *secmem_mechanism(void);

/* size bytes (rounded up to whole pages) of zeroed secret memory, wiped in a forked child. */
int secmem_alloc(size_t size, void **ret);
/* Wipes, unlocks and unmaps; NULL is fine. */
void secmem_free(void *p, size_t size);
