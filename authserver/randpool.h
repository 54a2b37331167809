/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * Random bytes for the hot path, drawn from OpenSSL's RAND in bulk (issue #13): every
 * RAND_bytes() call asks getpid() for OpenSSL's fork check, and a handshake needs five small
 * draws (R1, C1, T2, the X25519 scalar, the sealed vault's IV). Each thread keeps its own
 * pool in a page of its own that the kernel wipes in a child at fork (MADV_WIPEONFORK), so
 * no pooled byte is ever handed out twice, in two threads or on both sides of a fork; a byte
 * is wiped from the pool as it is taken. Where the kernel lacks MADV_WIPEONFORK (before
 * Linux 4.14) every draw goes to RAND_bytes(). Draws larger than a quarter of the pool go
 * there too.
 *
 * Returns 0 or -EIO (RAND failed; out is wiped then).
 */
int randpool_bytes(void *out, size_t len);

/* The calling thread's pool is wiped and unmapped (threads' pools also go at thread exit). */
void randpool_release(void);
