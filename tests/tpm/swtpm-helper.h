/* SPDX-License-Identifier: MIT */
#pragma once

/* A private swtpm per test: its own temporary state directory, a unix socket (no ports, so tests
 * run in parallel), stopped and removed again at the end. */

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* A unix socket path must fit sockaddr_un.sun_path (108 bytes with the NUL). */
#define SWTPM_DIR_MAX 96

struct swtpm {
        char dir[SWTPM_DIR_MAX];        /* absolute, "" when not started */
        char tcti[SWTPM_DIR_MAX + 32];  /* "swtpm:path=DIR/sock" */
        pid_t pid;                      /* the daemon, 0 when not running */
};

/* The swtpm binary: $SWTPM if set and non-empty, else "swtpm" in $PATH. -ENOENT if neither
 * names an executable file. */
int swtpm_find(char *buf, size_t size);

/* Start a fresh swtpm (TPM 2.0, already started with TPM2_Startup(CLEAR)) and wait until its
 * socket accepts connections. On failure nothing is left behind and ret->pid is 0. */
int swtpm_start(struct swtpm *ret);

/* Stop the daemon and remove its directory. Safe to call twice and on a never-started struct. */
void swtpm_stop(struct swtpm *s);
