/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vault.h"

/*
 * The enrollment bundle of protocol §8: `key: value` lines carrying a device's initial
 * vault. It is as secret as the vault, so the parsed keys are wiped by bundle_free().
 */
#define BUNDLE_FORMAT           1
#define BUNDLE_SERVER_MAX       255     /* host:port, a DNS name at most 253 bytes */
#define BUNDLE_TEXT_MAX         (2 * SV_VAULT_MAX + 4096)       /* base64 of the largest vault + fields */

#define BUNDLE_CHECK_LEN        16      /* bytes of the `check` line (32 hex digits), revision 1.1 */

struct bundle {
        struct vault_params params;             /* params.kex == kex once parsed */
        uint8_t kex;                            /* SV_KEX_*: the `kex` line, none if absent */
        bool checked;                           /* parsed: it had a `check` line, which matched */
        char server[BUNDLE_SERVER_MAX + 1];     /* empty if the bundle names none */
        uint8_t *vault;                         /* n·m bytes */
};

/* bundle_parse() flags */
#define BUNDLE_ACCEPT_UNCHECKED 0x1u    /* take a bundle without `check` (written before 1.1) */

/*
 * Parses a whole bundle. On failure returns -errno and, when ret_line is given, the 1-based
 * line that was rejected (0: the bundle as a whole, e.g. a missing field):
 *   -EBADMSG  damaged: the bundle has a `check` line and either it does not match (line 0)
 *             or some line is invalid (that line). A writer of 1.1 emits only valid bundles
 *             with a check, so anything wrong in one is damage (or tampering).
 *   -EINVAL   invalid, and without a `check` line to say it was ever a valid bundle;
 *   -ENOMSG   valid but without `check`, and flags lack BUNDLE_ACCEPT_UNCHECKED;
 *   -ENOMEM.
 * The check covers every field of §8 but `format` and `server` (a damaged server name fails
 * to connect, or reaches a server that does not hold the vault).
 */
int bundle_parse(const char *text, size_t len, unsigned flags, struct bundle *ret, unsigned *ret_line);
/* What is wrong with a bundle bundle_parse() rejected at `line` (0: as a whole), naming the
 * key and never a value: "line 10: 'vault': not base64 ...", "'epoch' is missing". */
int bundle_explain(const char *text, size_t len, unsigned line, char *buf, size_t cap);
/* Writes the bundle's text, with its `check` line, into a new NUL-terminated buffer; free it
 * with bundle_text_free(). A `kex` line only for x25519 (absent means none). */
int bundle_format(const struct bundle *b, char **ret_text, size_t *ret_len);
/* The `check` of §8 over the parameters, kex and vault (n·m bytes); -EINVAL for a kex the
 * profile does not allow. */
int bundle_check(const struct vault_params *v, uint8_t kex, const uint8_t *vault, uint8_t ret[BUNDLE_CHECK_LEN]);
void bundle_text_free(char *text, size_t len);
void bundle_free(struct bundle *b);

bool bundle_server_valid(const char *s);

/* Strict standard base64 with padding; decoding never branches on the secret bytes. */
size_t base64_encoded_len(size_t len);
void base64_encode(const uint8_t *in, size_t len, char *out);
int base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *ret_len);
