/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "proto.h"
#include "record.h"

/*
 * The request/reply format between devicectl and vaultd (docs/ipc.md): one
 * SOCK_SEQPACKET packet per request and per reply.
 *
 *   request:  u8 version (2) || u8 op || u16 flags || body
 *   reply:    u8 version (2) || u8 op || u8 status || u8 detail || body
 *
 * On success (status 0) the body is the operation's result. On failure the body is a
 * short human-readable message (never secret) and `detail` carries the server's
 * ERROR code where status is IPC_SERVER_ERROR.
 */
/* Version 2 (protocol 1.1): the status record ends in the vault's kex, the confirm record
 * carries the two data-channel secrets. Only the one version is spoken: devicectl and vaultd
 * are installed together, and a packet of version 1 is not answered. */
#define IPC_VERSION             2
#define IPC_HEADER_LEN          4
#define IPC_MESSAGE_MAX         200     /* error text */
#define IPC_PACKET_MAX          (IPC_HEADER_LEN + SV_FRAME_MAX + 64)

enum ipc_op {
        IPC_OP_STATUS = 1,
        IPC_OP_HELLO = 2,       /* -> M1 */
        IPC_OP_RESPOND = 3,     /* M2 -> M3 */
        IPC_OP_CONFIRM = 4,     /* M4 -> M5, session key, new epoch */
        IPC_OP_PROVISION = 5,   /* bundle (as a passed file descriptor) */
        IPC_OP_ABORT = 6,       /* drop the handshake in progress */
};

#define IPC_FLAG_FORCE          0x0001u /* provision over an existing vault */
#define IPC_FLAG_ACCEPT_UNCHECKED 0x0002u /* provision from a bundle without `check` (before 1.1) */
#define IPC_FLAGS_KNOWN         (IPC_FLAG_FORCE | IPC_FLAG_ACCEPT_UNCHECKED)

/* `detail` of an IPC_BAD_BUNDLE reply: why the bundle was refused. */
enum ipc_bundle_detail {
        IPC_BUNDLE_INVALID = 0,         /* unreadable or malformed */
        IPC_BUNDLE_DAMAGED = 1,         /* its check does not match, or a line of a checked bundle is invalid */
        IPC_BUNDLE_UNCHECKED = 2,       /* no check, and IPC_FLAG_ACCEPT_UNCHECKED not given */
        IPC_BUNDLE_UNSUPPORTED = 3,     /* valid, but asks for what vaultd cannot do (none since kex x25519 works) */
};

enum ipc_status {
        IPC_OK = 0,
        IPC_BAD_REQUEST = 1,
        IPC_DENIED = 2,
        IPC_BUSY = 3,
        IPC_NOT_PROVISIONED = 4,
        IPC_EXISTS = 5,
        IPC_PROTOCOL = 6,       /* the server's message is malformed */
        IPC_AUTH_FAILED = 7,    /* the server failed to prove it holds the vault */
        IPC_SERVER_ERROR = 8,   /* the server answered ERROR (code in detail) */
        IPC_STATE = 9,          /* operation out of order */
        IPC_INTERNAL = 10,
        IPC_TPM = 11,
        IPC_EXHAUSTED = 12,     /* epoch cannot advance: enroll again */
        IPC_BAD_BUNDLE = 13,
        IPC_FORBIDDEN = 14,     /* allowed to use vaultd, not to do this (provision) */
        IPC_RATE_LIMITED = 15,  /* too many authentications: the message says when to retry */
        _IPC_STATUS_MAX,
};

struct ipc_request {
        uint8_t op;
        uint16_t flags;
        const uint8_t *body;
        size_t body_len;
};

struct ipc_reply {
        uint8_t op;
        uint8_t status;
        uint8_t detail;
        const uint8_t *body;
        size_t body_len;
};

/* What vaultd reports: no secrets. */
struct ipc_status_info {
        bool provisioned;
        bool busy;
        struct vault_params params;
        char server[BUNDLE_SERVER_MAX + 1];
        uint32_t nv_index;
        uint64_t counter;
        uint64_t tpm_commands;
};

/* CONFIRM's result: M5 to send, then the session's secrets (wipe them). */
struct ipc_confirm_result {
        uint8_t m5[SV_COMMIT_FRAME_LEN];
        size_t m5_len;
        uint8_t session_key[SV_KEY_LEN];
        uint8_t c2s[RECORD_SECRET_LEN];         /* A_0 device -> server (§11): the device seals with it */
        uint8_t s2c[RECORD_SECRET_LEN];         /* A_0 server -> device: the device opens with it */
        uint64_t epoch;
};

int ipc_encode_request(const struct ipc_request *req, uint8_t *out, size_t cap, size_t *ret_len);
int ipc_decode_request(const uint8_t *pkt, size_t len, struct ipc_request *ret);
int ipc_encode_reply(const struct ipc_reply *rep, uint8_t *out, size_t cap, size_t *ret_len);
int ipc_decode_reply(const uint8_t *pkt, size_t len, struct ipc_reply *ret);

int ipc_encode_status(const struct ipc_status_info *s, uint8_t *out, size_t cap, size_t *ret_len);
int ipc_decode_status(const uint8_t *body, size_t len, struct ipc_status_info *ret);
int ipc_encode_confirm(const struct ipc_confirm_result *c, uint8_t *out, size_t cap, size_t *ret_len);
int ipc_decode_confirm(const uint8_t *body, size_t len, struct ipc_confirm_result *ret);

const char *ipc_status_to_string(uint8_t status);
