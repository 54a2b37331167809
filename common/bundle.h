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

struct bundle {
        struct vault_params params;
        char server[BUNDLE_SERVER_MAX + 1];     /* empty if the bundle names none */
        uint8_t *vault;                         /* n·m bytes */
};

/*
 * Parses a whole bundle. On failure returns -EINVAL (or -ENOMEM) and, when ret_line is
 * given, the 1-based line that was rejected (0: the bundle as a whole, e.g. a missing field).
 */
int bundle_parse(const char *text, size_t len, struct bundle *ret, unsigned *ret_line);
/* Writes the bundle's text into a new NUL-terminated buffer; free it with bundle_text_free(). */
int bundle_format(const struct bundle *b, char **ret_text, size_t *ret_len);
void bundle_text_free(char *text, size_t len);
void bundle_free(struct bundle *b);

bool bundle_server_valid(const char *s);

/* Strict standard base64 with padding; decoding never branches on the secret bytes. */
size_t base64_encoded_len(size_t len);
void base64_encode(const uint8_t *in, size_t len, char *out);
int base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *ret_len);
