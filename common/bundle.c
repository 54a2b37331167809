/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bundle.h"

enum bundle_field {
        FIELD_FORMAT,
        FIELD_DEVICE_ID,
        FIELD_PROFILE,
        FIELD_N,
        FIELD_M,
        FIELD_P,
        FIELD_EPOCH,
        FIELD_SERVER,
        FIELD_VAULT,
        FIELD_COUNT,
};

static const char *const field_names[FIELD_COUNT] = {
        [FIELD_FORMAT] = "format",
        [FIELD_DEVICE_ID] = "device_id",
        [FIELD_PROFILE] = "profile",
        [FIELD_N] = "n",
        [FIELD_M] = "m",
        [FIELD_P] = "p",
        [FIELD_EPOCH] = "epoch",
        [FIELD_SERVER] = "server",
        [FIELD_VAULT] = "vault",
};

void bundle_free(struct bundle *b) {
        if (!b)
                return;
        if (b->vault) {
                OPENSSL_cleanse(b->vault, vault_size(&b->params));
                free(b->vault);
        }
        OPENSSL_cleanse(b, sizeof *b);
}

void bundle_text_free(char *text, size_t len) {
        if (!text)
                return;
        OPENSSL_cleanse(text, len);
        free(text);
}

bool bundle_server_valid(const char *s) {
        const char *colon = strrchr(s, ':');
        size_t host_len;
        unsigned long port = 0;

        if (!colon || strlen(s) > BUNDLE_SERVER_MAX)
                return false;
        host_len = (size_t) (colon - s);
        if (host_len == 0)
                return false;
        if (s[0] == '[') {
                /* [IPv6]:port */
                if (host_len < 3 || s[host_len - 1] != ']')
                        return false;
                for (size_t i = 1; i < host_len - 1; i++)
                        if (!strchr("0123456789abcdefABCDEF:.", s[i]))
                                return false;
        } else {
                for (size_t i = 0; i < host_len; i++)
                        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", s[i]))
                                return false;
        }
        if (colon[1] == '\0' || strlen(colon + 1) > 5)
                return false;
        for (const char *c = colon + 1; *c; c++) {
                if (*c < '0' || *c > '9')
                        return false;
                port = port * 10 + (unsigned long) (*c - '0');
        }
        return port >= 1 && port <= 65535 && colon[1] != '0';
}

/* Decimal without sign, spaces or leading zeros, at most max. */
static int parse_uint(const char *s, size_t len, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        if (v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

static void trim(const char **s, size_t *len) {
        while (*len > 0 && is_space(**s))
                (*s)++, (*len)--;
        while (*len > 0 && is_space((*s)[*len - 1]))
                (*len)--;
}

static int field_lookup(const char *key, size_t len) {
        for (int f = 0; f < FIELD_COUNT; f++)
                if (strlen(field_names[f]) == len && memcmp(field_names[f], key, len) == 0)
                        return f;
        return -EINVAL;
}

struct field_value {
        const char *s;
        size_t len;
        unsigned line;
};

/* Splits the text into one value per known field; the values point into the text. */
static int bundle_split(const char *text, size_t len, struct field_value values[FIELD_COUNT], unsigned *ret_line) {
        unsigned line = 0;

        for (size_t pos = 0; pos < len;) {
                const char *start = text + pos, *nl = memchr(start, '\n', len - pos);
                size_t line_len = nl ? (size_t) (nl - start) : len - pos;
                const char *hash, *colon, *key, *value;
                size_t key_len, value_len;
                int f;

                pos += line_len + (nl ? 1 : 0);
                line++;
                *ret_line = line;
                hash = memchr(start, '#', line_len);
                if (hash)
                        line_len = (size_t) (hash - start);
                trim(&start, &line_len);
                if (line_len == 0)
                        continue;
                colon = memchr(start, ':', line_len);
                if (!colon)
                        return -EINVAL;
                key = start;
                key_len = (size_t) (colon - start);
                value = colon + 1;
                value_len = line_len - key_len - 1;
                trim(&key, &key_len);
                trim(&value, &value_len);
                f = field_lookup(key, key_len);
                if (f < 0 || values[f].s || value_len == 0)
                        return -EINVAL;
                values[f] = (struct field_value) { value, value_len, line };
        }
        *ret_line = 0;
        return 0;
}

int bundle_parse(const char *text, size_t len, struct bundle *ret, unsigned *ret_line) {
        struct field_value values[FIELD_COUNT] = { 0 };
        struct bundle b = { 0 };
        char scratch[SV_ID_MAX + 1];
        const struct profile_info *pi;
        uint64_t format, n, m, p;
        unsigned line = 0;
        size_t got = 0;
        int r, profile;

        if (len > BUNDLE_TEXT_MAX || memchr(text, '\0', len)) {
                r = -EINVAL;
                goto fail;
        }
        r = bundle_split(text, len, values, &line);
        if (r < 0)
                goto fail;
        for (int f = 0; f < FIELD_COUNT; f++)
                if (!values[f].s && f != FIELD_SERVER) {
                        r = -EINVAL;
                        goto fail;
                }

#define FIELD_FAIL(f) do { line = values[f].line; r = -EINVAL; goto fail; } while (0)
        if (parse_uint(values[FIELD_FORMAT].s, values[FIELD_FORMAT].len, UINT64_MAX, &format) < 0 ||
            format != BUNDLE_FORMAT)
                FIELD_FAIL(FIELD_FORMAT);
        if (values[FIELD_DEVICE_ID].len > SV_ID_MAX ||
            !vault_device_id_valid(values[FIELD_DEVICE_ID].s, values[FIELD_DEVICE_ID].len))
                FIELD_FAIL(FIELD_DEVICE_ID);
        memcpy(b.params.device_id, values[FIELD_DEVICE_ID].s, values[FIELD_DEVICE_ID].len);
        b.params.id_len = (uint8_t) values[FIELD_DEVICE_ID].len;

        if (values[FIELD_PROFILE].len >= sizeof scratch)
                FIELD_FAIL(FIELD_PROFILE);
        memcpy(scratch, values[FIELD_PROFILE].s, values[FIELD_PROFILE].len);
        scratch[values[FIELD_PROFILE].len] = '\0';
        profile = vault_profile_from_string(scratch);
        if (profile < 0)
                FIELD_FAIL(FIELD_PROFILE);
        b.params.profile = (uint8_t) profile;
        /* Bundles carry no key share mode yet (revision 1.1 §10 adds `kex:`). */
        pi = profile_find(b.params.profile, vault_wire_params(&b.params).kex);
        if (!pi)
                FIELD_FAIL(FIELD_PROFILE);

        if (parse_uint(values[FIELD_N].s, values[FIELD_N].len, UINT64_MAX, &n) < 0 || !profile_n_valid(pi, n))
                FIELD_FAIL(FIELD_N);
        if (parse_uint(values[FIELD_M].s, values[FIELD_M].len, UINT64_MAX, &m) < 0 || !profile_m_valid(pi, m))
                FIELD_FAIL(FIELD_M);
        if (parse_uint(values[FIELD_P].s, values[FIELD_P].len, UINT64_MAX, &p) < 0 || !profile_p_valid(pi, n, p))
                FIELD_FAIL(FIELD_P);
        if (parse_uint(values[FIELD_EPOCH].s, values[FIELD_EPOCH].len, UINT64_MAX, &b.params.epoch) < 0)
                FIELD_FAIL(FIELD_EPOCH);
        b.params.n = (uint16_t) n;
        b.params.m = (uint8_t) m;
        b.params.p = (uint8_t) p;

        if (values[FIELD_SERVER].s) {
                if (values[FIELD_SERVER].len > BUNDLE_SERVER_MAX)
                        FIELD_FAIL(FIELD_SERVER);
                memcpy(b.server, values[FIELD_SERVER].s, values[FIELD_SERVER].len);
                b.server[values[FIELD_SERVER].len] = '\0';
                if (!bundle_server_valid(b.server))
                        FIELD_FAIL(FIELD_SERVER);
        }

        b.vault = malloc(vault_size(&b.params));
        if (!b.vault) {
                r = -ENOMEM;
                goto fail;
        }
        if (base64_decode(values[FIELD_VAULT].s, values[FIELD_VAULT].len, b.vault, vault_size(&b.params), &got) < 0 ||
            got != vault_size(&b.params))
                FIELD_FAIL(FIELD_VAULT);
#undef FIELD_FAIL

        if (vault_params_validate(&b.params) < 0) {
                r = -EINVAL;
                goto fail;
        }
        *ret = b;
        return 0;
fail:
        bundle_free(&b);
        if (ret_line)
                *ret_line = line;
        return r;
}

int bundle_format(const struct bundle *b, char **ret_text, size_t *ret_len) {
        size_t b64_len, cap, len;
        char *text;
        int n;

        if (vault_params_validate(&b->params) < 0 || !b->vault ||
            (b->server[0] && !bundle_server_valid(b->server)))
                return -EINVAL;
        b64_len = base64_encoded_len(vault_size(&b->params));
        cap = 1024 + BUNDLE_SERVER_MAX + b64_len;
        text = malloc(cap);
        if (!text)
                return -ENOMEM;
        n = snprintf(text, cap,
                     "# secure-vault enrollment bundle: as secret as the vault; read once, then destroy\n"
                     "format: %d\n"
                     "device_id: %s\n"
                     "profile: %s\n"
                     "n: %u\n"
                     "m: %u\n"
                     "p: %u\n"
                     "epoch: %" PRIu64 "\n"
                     "%s%s%s"
                     "vault: ",
                     BUNDLE_FORMAT, b->params.device_id, vault_profile_to_string(b->params.profile),
                     b->params.n, b->params.m, b->params.p, b->params.epoch,
                     b->server[0] ? "server: " : "", b->server, b->server[0] ? "\n" : "");
        if (n < 0 || (size_t) n + b64_len + 2 > cap) {
                bundle_text_free(text, cap);
                return -EINVAL;
        }
        len = (size_t) n;
        base64_encode(b->vault, vault_size(&b->params), text + len);
        len += b64_len;
        text[len++] = '\n';
        text[len] = '\0';
        *ret_text = text;
        *ret_len = len;
        return 0;
}
