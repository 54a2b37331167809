/* SPDX-License-Identifier: MIT */
#pragma once

/* Constants of the secure-vault wire protocol, version 1 (docs/protocol.md). */

#define SV_PROTO_VERSION        1

#define SV_MSG_HELLO            1
#define SV_MSG_CHALLENGE        2
#define SV_MSG_RESPONSE         3
#define SV_MSG_CONFIRM          4
#define SV_MSG_COMMIT           5
#define SV_MSG_DATA             6       /* revision 1.1, §11: after M5, both ways */
#define SV_MSG_CLOSE            7
#define SV_MSG_ERROR            15

#define SV_ERR_PROTOCOL         1
#define SV_ERR_AUTH             2
#define SV_ERR_BUSY             3
#define SV_ERR_VERSION          4

#define SV_PROFILE_HARDENED     1
#define SV_PROFILE_PAPER        2

/* Frame header: version, type, u16 body length. */
#define SV_HEADER_LEN           4
/* Largest body a receiver accepts; checked before the body is read. */
#define SV_BODY_MAX             1024
#define SV_FRAME_MAX            (SV_HEADER_LEN + SV_BODY_MAX)

/* Protocol-wide bounds, for fixed buffers and the store's schema. What each profile and
 * key-exchange mode allows within them, and every exact message length, is the table of
 * common/profile.c. */
#define SV_ID_MIN               1
#define SV_ID_MAX               64
#define SV_N_MIN                8
#define SV_N_MAX                4096
#define SV_M_MIN                16      /* m is SV_M_MIN or SV_M_MAX, nothing between */
#define SV_M_MAX                32
#define SV_P_MIN                1
#define SV_P_MAX                64
#define SV_KEY_MAX              SV_M_MAX
#define SV_VAULT_MAX            (SV_N_MAX * SV_KEY_MAX)

#define SV_DEFAULT_N            256
#define SV_DEFAULT_M            16
#define SV_DEFAULT_P            16

#define SV_SESSION_ID_LEN       16
#define SV_NONCE_LEN            16      /* r1, r2 */
#define SV_T_LEN                32      /* t1, t2 */
#define SV_HASH_LEN             32      /* SHA-256: TH2..TH4 */
#define SV_KEY_LEN              32      /* K3..K5 (hardened), session key, U */
#define SV_TAG_LEN              16
#define SV_GCM_IV_LEN           12
#define SV_INDEX_LEN            2       /* one u16 index of a challenge */
#define SV_X25519_LEN           32      /* revision 1.1, §10: scalars, shares, Z */

/* The shape of each message body (§3): the fixed part, to which wire_body_len() adds the
 * device id (M1), p indices (M2, M3) and the key share (M1, M2). */
#define SV_HELLO_FIXED          (1 + 1 + SV_SESSION_ID_LEN + 8)
#define SV_CHALLENGE_FIXED      (SV_NONCE_LEN + 1)
#define SV_RESPONSE_PT_FIXED    (SV_NONCE_LEN + SV_T_LEN + SV_NONCE_LEN + 1)
#define SV_CONFIRM_PT_LEN       (SV_NONCE_LEN + SV_T_LEN)
#define SV_CONFIRM_BODY_LEN     (SV_CONFIRM_PT_LEN + SV_TAG_LEN)
#define SV_COMMIT_BODY_LEN      SV_TAG_LEN
#define SV_ERROR_BODY_LEN       1

/* Largest frames of each message, for fixed transcript storage (M1 and M2 with the 1.1 key
 * share). tests/unit/check_profile checks them against the table. */
#define SV_HELLO_FRAME_MAX      (SV_HEADER_LEN + SV_HELLO_FIXED + SV_ID_MAX + SV_X25519_LEN)
#define SV_CHALLENGE_FRAME_MAX  (SV_HEADER_LEN + SV_CHALLENGE_FIXED + SV_INDEX_LEN * SV_P_MAX + SV_X25519_LEN)
#define SV_RESPONSE_PT_MAX      (SV_RESPONSE_PT_FIXED + SV_INDEX_LEN * SV_P_MAX)
#define SV_RESPONSE_FRAME_MAX   (SV_HEADER_LEN + SV_RESPONSE_PT_MAX + SV_TAG_LEN)
#define SV_CONFIRM_FRAME_LEN    (SV_HEADER_LEN + SV_CONFIRM_BODY_LEN)
#define SV_COMMIT_FRAME_LEN     (SV_HEADER_LEN + SV_COMMIT_BODY_LEN)
#define SV_ERROR_FRAME_LEN      (SV_HEADER_LEN + SV_ERROR_BODY_LEN)
