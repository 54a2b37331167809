/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The store's two pending-vault writes with a plaintext next vault, for tests and benchmarks:
 * store_seal_next() then the _sealed form, as authserver does (conn.c seals, the writer
 * writes). The store itself has that one write path. Same arguments, returns and errors as
 * store_set_pending_sealed() and store_promote_and_set_pending_sealed() (store.h), with next
 * (len bytes) the plaintext of the generation the write stores.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

int plain_set_pending(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                      const uint8_t *next, size_t len);
int plain_promote_and_set_pending(struct store *s, const char *id, uint64_t enrollment,
                                  uint64_t expect_epoch, const uint8_t *next, size_t len);
