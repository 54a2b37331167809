/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

/*
 * The ephemeral X25519 exchange of protocol §10 (RFC 7748), one per handshake and side.
 * The scalar comes from the caller, drawn through its hs_random, exactly as drawn: X25519
 * clamps it (OpenSSL's raw X25519 keys do), and the vectors list it before clamping.
 *
 * Who wipes what:
 *   - kex_start() takes the caller's scalar over: it copies it into the kex and wipes the
 *     caller's buffer on every path. From then on the scalar lives only in the kex.
 *   - kex_finish() uses the scalar once and wipes the whole kex (share too: copy it out
 *     first if still needed) on every path, success or failure
 *     (§10: "both scalars are wiped as soon as Z is computed"); a second call is -EINVAL.
 *   - kex_wipe() wipes whatever is left, for a handshake that ends before kex_finish().
 *   - Z belongs to the caller once kex_finish() returns it; the caller wipes it as soon as
 *     S is derived. On failure nothing is written to ret_z and no copy of Z remains.
 *
 * struct kex holds bytes only, so a state machine that embeds it can be copied and
 * compared (the fuzz targets snapshot hs_device/hs_server that way).
 */
struct kex {
        bool armed;                             /* a scalar is held: kex_finish() may run */
        uint8_t e[SV_X25519_LEN];               /* the scalar as drawn */
        uint8_t share[SV_X25519_LEN];           /* X25519(e, 9), public */
};

/*
 * Takes the scalar `e` over and computes the share. `e` (which must not point into k) is
 * wiped on every path; on failure the kex is wiped too. -EIO if OpenSSL fails.
 */
int kex_start(struct kex *k, uint8_t e[SV_X25519_LEN]);

/*
 * Z = X25519(e, peer_share) into ret_z, then the scalar is wiped (on every path).
 *   -EKEYREJECTED  Z would be all zeros: peer_share is a small-order point (or a
 *                  non-canonical encoding of one); the handshake MUST fail (§10)
 *   -EINVAL        kex_start() did not succeed, or kex_finish() already ran
 *   -EIO           OpenSSL failed
 */
int kex_finish(struct kex *k, const uint8_t peer_share[SV_X25519_LEN], uint8_t ret_z[SV_X25519_LEN]);

void kex_wipe(struct kex *k);

/*
 * Whether X25519 of any clamped scalar with this u-coordinate is all zeros, i.e. u is one
 * of the 7 small-order u-coordinates of RFC 7748 curve25519 or its twist (0, 1, the two of
 * order 8, p-1, and the non-canonical p and p+1), with or without bit 255 set (ignored by
 * X25519). Public input, so not constant time.
 */
bool kex_share_is_small_order(const uint8_t share[SV_X25519_LEN]);
