/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The little of vaultd/tpm.c's insides that the test-only TPM helpers (tests/tpm/tpm-test.c)
 * need to send commands of their own on a context. Not for vaultd proper, which sees only
 * tpm.h; like tpm.c, whoever includes this includes tss2 headers.
 */

#include <tss2/tss2_esys.h>

#include "tpm.h"

/* PCRs that may be bound: the 24 PCRs every PC-client TPM has. */
#define TPM_PCR_COUNT 24

/* The context's ESAPI context. Count every command sent through it with tpm_count_command(),
 * so that tpm_command_count() stays exact. */
ESYS_CONTEXT *tpm_esys(struct tpm_ctx *t);
void tpm_count_command(struct tpm_ctx *t);
/* Record a failure for tpm_last_error(t) and return r. */
int tpm_fail(struct tpm_ctx *t, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Map a tss2 failure to -errno and record "<what>: <reason> (<tss2 decoding>)". */
int tpm_fail_rc(struct tpm_ctx *t, const char *what, TSS2_RC rc);
