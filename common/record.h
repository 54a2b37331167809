/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/*
 * The data channel of protocol §11 as pure code: one struct record_chain per direction
 * and side. The device seals with its c2s chain and opens with its s2c chain; the server
 * the other way round. Record i (DATA and CLOSE alike, counted per direction) is
 *
 *   u8 1 || u8 type || u16 (len + 16) || AES-256-GCM(KR_i, 0x00000000 || u64 i, AD = header, payload)
 *
 * with KR_i = HKDF-Expand(A_i, "sv1 record", 32) and A_{i+1} = HKDF-Expand(A_i, "sv1 next", 32):
 * A_i and KR_i are wiped as soon as record i is sealed or opened, so a chain that leaks
 * reveals no earlier record.
 *
 * Errors (negative errno):
 *   -EPROTONOSUPPORT  version other than 1
 *   -EPROTO           type other than DATA or CLOSE
 *   -EMSGSIZE         declared length over SV_BODY_MAX
 *   -EBADMSG          declared length under 16, a CLOSE with a payload, a frame whose size
 *                     is not what its header says, or a record that fails to authenticate
 *                     (forged, replayed, reordered, dropped before it, reflected, damaged)
 *   -ESHUTDOWN        a record after CLOSE in this direction (open or seal)
 *   -EPIPE            open on a chain whose earlier open failed: it stays failed for good
 *   -EOVERFLOW        the 2^64 records of a direction are used up
 *   -ENOBUFS          the output buffer is too small
 *   -EINVAL           a chain never set up, a bad type or payload size to seal
 *   -EIO, -ENOMEM     OpenSSL failed
 *
 * record_open() poisons its chain on every failure (§11: the connection ends at once and
 * nothing more is read from it). record_seal() leaves its chain as it was on failure: a
 * sealed record that was not produced was not sent.
 */

/* Payload of one DATA record: the largest body less the tag. */
#define RECORD_PAYLOAD_MAX      (SV_BODY_MAX - SV_TAG_LEN)
/* Smallest body: the tag of an empty payload (every CLOSE, an empty DATA). */
#define RECORD_BODY_MIN         SV_TAG_LEN
#define RECORD_FRAME_MAX        (SV_HEADER_LEN + SV_BODY_MAX)
#define RECORD_FRAME_LEN(len)   (SV_HEADER_LEN + (size_t) (len) + SV_TAG_LEN)
#define RECORD_SECRET_LEN       32

enum record_dir {
        RECORD_C2S,             /* device -> server, "sv1 c2s" */
        RECORD_S2C,             /* server -> device, "sv1 s2c" */
};

enum record_state {
        RECORD_UNSET = 0,       /* a zeroed chain is not usable */
        RECORD_READY,
        RECORD_CLOSED,          /* CLOSE sealed or opened: the direction has ended */
        RECORD_FAILED,          /* an open failed: nothing more is accepted */
};

struct record_chain {
        enum record_state state;
        uint64_t seq;                           /* i, the number of the next record */
        uint8_t a[RECORD_SECRET_LEN];           /* A_i; zero unless READY */
};

/* A_0 of one direction from the handshake's S (§11). Output wiped on failure. */
int record_secret(const uint8_t s[SV_KEY_LEN], enum record_dir dir, uint8_t ret_secret[RECORD_SECRET_LEN]);

/* Starts a chain at record 0 from A_0, which it takes over: `secret` is wiped. */
void record_init(struct record_chain *c, uint8_t secret[RECORD_SECRET_LEN]);
void record_wipe(struct record_chain *c);

/*
 * The header check a reader runs on the first SV_HEADER_LEN bytes, before it reads or
 * allocates the body: returns the type (SV_MSG_DATA or SV_MSG_CLOSE) and the whole frame's
 * size in *ret_frame_len, or one of the header errors above. len >= SV_HEADER_LEN.
 */
int record_header_check(const uint8_t *frame, size_t len, size_t *ret_frame_len);

/*
 * Seals record i: type SV_MSG_DATA with 0..RECORD_PAYLOAD_MAX bytes, or SV_MSG_CLOSE with
 * none (payload may be NULL when len is 0). Writes RECORD_FRAME_LEN(len) bytes to out,
 * which must not overlap payload. After a CLOSE the chain is CLOSED and wiped.
 */
int record_seal(struct record_chain *c, uint8_t type, const void *payload, size_t len,
                uint8_t *out, size_t cap, size_t *ret_len);

/*
 * Opens one whole framed record (exactly RECORD_FRAME_LEN of its payload). Returns its type
 * and writes the payload (cap >= frame length - 20 bytes; payload may be NULL for a CLOSE)
 * and its length. After a CLOSE the chain is CLOSED and wiped. On failure the chain is
 * FAILED, nothing is written to *ret_len and the payload buffer is wiped.
 */
int record_open(struct record_chain *c, const uint8_t *frame, size_t len,
                uint8_t *payload, size_t cap, size_t *ret_len);
