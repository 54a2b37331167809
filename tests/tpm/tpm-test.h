/* SPDX-License-Identifier: MIT */
#pragma once

/* Test-only TPM helpers for tests/tpm/check_tpm.c (tpm-test.c): not linked into vaultd. */

#include <stdint.h>

struct tpm_ctx;

/* Transient objects, and loaded plus saved sessions, in the TPM now. */
int tpm_test_count_loaded(struct tpm_ctx *t, unsigned *ret_objects, unsigned *ret_sessions);
/* Extends SHA-256 PCR pcr (< 24) with a fixed digest. */
int tpm_test_pcr_extend(struct tpm_ctx *t, unsigned pcr);
/* TPM2_PT_LOCKOUT_COUNTER: the dictionary-attack failures counted so far. */
int tpm_test_lockout_counter(struct tpm_ctx *t, uint32_t *ret);
