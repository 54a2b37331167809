/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "record.h"

/*
 * The sink protocol (docs/sink.md) as pure code: what `authserver serve --sink PATH` and the
 * local application at PATH say to each other, one message per SOCK_SEQPACKET packet, one
 * connection per data channel. No I/O.
 *
 * Every packet: u8 version (SINK_VERSION) · u8 type · body, nothing after it.
 *   SESSION  server -> app, first and once: u8 kex · u8 flags · u64 epoch (big-endian) ·
 *            session_id[16] · u8 id_len · device_id[id_len] · [key[32] if flags & SINK_FLAG_KEY]
 *   DATA     both ways: u32 seq (big-endian) · the payload of one DATA record, 0..RECORD_PAYLOAD_MAX
 *            bytes. The server numbers its DATA 1, 2, ...; an answer carries the seq it answers
 *   CLOSE    server -> app: the device sent CLOSE; app -> server: send the device CLOSE. Empty.
 *   CUT      server -> app: the channel ended otherwise; body 1..SINK_REASON_MAX bytes of
 *            [a-z-], the reason (e.g. "idle", "record-limit", "bad-record", "cut", "stopping")
 */

#define SINK_VERSION            1
#define SINK_MSG_SESSION        1
#define SINK_MSG_DATA           2
#define SINK_MSG_CLOSE          3
#define SINK_MSG_CUT            4

#define SINK_FLAG_KEY           0x01
#define SINK_HEADER_LEN         2
#define SINK_REASON_MAX         32
#define SINK_SESSION_FIXED      (1 + 1 + 8 + SV_SESSION_ID_LEN + 1)
#define SINK_DATA_FIXED         4
/* The longest packet of either side (a DATA packet; a SESSION is shorter). */
#define SINK_PACKET_MAX         (SINK_HEADER_LEN + SINK_DATA_FIXED + RECORD_PAYLOAD_MAX)

struct sink_msg {
        uint8_t type;
        /* SESSION */
        uint8_t kex;
        bool has_key;
        uint64_t epoch;                         /* the epoch the device's M1 named */
        uint8_t session_id[SV_SESSION_ID_LEN];
        char device_id[SV_ID_MAX + 1];
        uint8_t key[SV_KEY_LEN];                /* the session key, with has_key only */
        /* DATA: payload points into the parsed packet */
        uint32_t seq;
        const uint8_t *payload;
        size_t payload_len;
        /* CUT */
        char reason[SINK_REASON_MAX + 1];
};

/* Each writes one packet into out (cap bytes) and returns its length, or -ENOBUFS, -EINVAL. */
int sink_encode_session(uint8_t kex, uint64_t epoch, const uint8_t session_id[SV_SESSION_ID_LEN],
                        const char *device_id, const uint8_t *key, uint8_t *out, size_t cap);
int sink_encode_data(uint32_t seq, const void *payload, size_t len, uint8_t *out, size_t cap);
int sink_encode_close(uint8_t *out, size_t cap);
int sink_encode_cut(const char *reason, uint8_t *out, size_t cap);

/*
 * Parses one packet, checked to the byte: -EPROTONOSUPPORT another version, -EBADMSG an
 * unknown type or a body of the wrong length or content. ret written only on success (a
 * SESSION's key included: the caller wipes it).
 */
int sink_parse(const uint8_t *pkt, size_t len, struct sink_msg *ret);
