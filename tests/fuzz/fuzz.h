/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The entry point of every fuzz target. Built with --enable-fuzzing, libFuzzer's main
 * drives it; otherwise replay.c replays the committed corpus through it under make check.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which, then abort() so that libFuzzer saves the input. */
#define FUZZ_CHECK(cond) do {                                                   \
                if (!(cond)) {                                                  \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n",        \
                                __FILE__, __LINE__, #cond);                     \
                        abort();                                                \
                }                                                               \
        } while (0)
