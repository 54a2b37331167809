/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Store calls for tests and benchmarks only (tests/store/check_store, tests/bench/svgen):
 * authserver itself never uses them, so they are not part of store.h's API.
 */

#include "store.h"

/* Rolls back the open batch (store_batch_begin()): none of its writes is kept. -EINVAL if no
 * batch is open. store_close() rolls back a batch left open as well. */
int store_batch_rollback(struct store *s);
