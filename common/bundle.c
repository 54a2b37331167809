/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bundle.h"
#include "crypto.h"

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
        FIELD_KEX,
        FIELD_CHECK,
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
        [FIELD_KEX] = "kex",
        [FIELD_CHECK] = "check",
};

#define BUNDLE_CHECK_LABEL      "sv1 bundle"

static bool field_optional(int f) {
        return f == FIELD_SERVER || f == FIELD_KEX || f == FIELD_CHECK;
}

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

/* The next line of text from *pos (which moves past it): its content without a '#' comment,
 * trimmed. */
static void next_line(const char *text, size_t len, size_t *pos, const char **ret_s, size_t *ret_len) {
        const char *start = text + *pos, *nl = memchr(start, '\n', len - *pos), *hash;
        size_t line_len = nl ? (size_t) (nl - start) : len - *pos;

        *pos += line_len + (nl ? 1 : 0);
        hash = memchr(start, '#', line_len);
        if (hash)
                line_len = (size_t) (hash - start);
        trim(&start, &line_len);
        *ret_s = start;
        *ret_len = line_len;
}

/* A line's content at its first ':': key and value, both trimmed; -EINVAL without a ':'. */
static int split_key_value(const char *s, size_t len, const char **ret_key, size_t *ret_key_len,
                           const char **ret_value, size_t *ret_value_len) {
        const char *colon = memchr(s, ':', len);

        if (!colon)
                return -EINVAL;
        *ret_key = s;
        *ret_key_len = (size_t) (colon - s);
        *ret_value = colon + 1;
        *ret_value_len = len - *ret_key_len - 1;
        trim(ret_key, ret_key_len);
        trim(ret_value, ret_value_len);
        return 0;
}

/* Splits the text into one value per known field; the values point into the text. */
static int bundle_split(const char *text, size_t len, struct field_value values[FIELD_COUNT], unsigned *ret_line) {
        unsigned line = 0;

        for (size_t pos = 0; pos < len;) {
                const char *start, *key, *value;
                size_t line_len, key_len, value_len;
                int f;

                next_line(text, len, &pos, &start, &line_len);
                line++;
                *ret_line = line;
                if (line_len == 0)
                        continue;
                if (split_key_value(start, line_len, &key, &key_len, &value, &value_len) < 0)
                        return -EINVAL;
                f = field_lookup(key, key_len);
                if (f < 0 || values[f].s || value_len == 0)
                        return -EINVAL;
                values[f] = (struct field_value) { value, value_len, line };
        }
        *ret_line = 0;
        return 0;
}

int bundle_check(const struct vault_params *v, uint8_t kex, const uint8_t *vault, uint8_t ret[BUNDLE_CHECK_LEN]) {
        uint8_t fixed[14], digest[32];
        const void *pieces[5];
        size_t lens[5];
        int r;

        if (vault_params_validate(v) < 0 || !vault || !profile_entry(v->profile, kex))
                return -EINVAL;
        /* u8 profile || u16 n || u8 m || u8 p || u64 epoch || u8 kex, after u8 id_len || id */
        fixed[0] = v->profile;
        fixed[1] = (uint8_t) (v->n >> 8);
        fixed[2] = (uint8_t) v->n;
        fixed[3] = v->m;
        fixed[4] = v->p;
        for (int i = 0; i < 8; i++)
                fixed[5 + i] = (uint8_t) (v->epoch >> (56 - 8 * i));
        fixed[13] = kex;
        pieces[0] = BUNDLE_CHECK_LABEL;
        lens[0] = strlen(BUNDLE_CHECK_LABEL);
        pieces[1] = &v->id_len;
        lens[1] = 1;
        pieces[2] = v->device_id;
        lens[2] = v->id_len;
        pieces[3] = fixed;
        lens[3] = sizeof fixed;
        pieces[4] = vault;
        lens[4] = vault_size(v);
        r = crypto_sha256_v(pieces, lens, 5, digest);
        if (r < 0)
                return r;
        memcpy(ret, digest, BUNDLE_CHECK_LEN);
        OPENSSL_cleanse(digest, sizeof digest);
        return 0;
}

/* Exactly 2·BUNDLE_CHECK_LEN lowercase hex digits. */
static int parse_check(const char *s, size_t len, uint8_t out[BUNDLE_CHECK_LEN]) {
        static const char digits[] = "0123456789abcdef";

        if (len != 2 * BUNDLE_CHECK_LEN)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 2) {
                const char *hi = s[i] ? memchr(digits, s[i], 16) : NULL, *lo = s[i + 1] ? memchr(digits, s[i + 1], 16) : NULL;

                if (!hi || !lo)
                        return -EINVAL;
                out[i / 2] = (uint8_t) ((hi - digits) << 4 | (lo - digits));
        }
        return 0;
}

/* "check:", blanks, then 32 lowercase hex digits, anywhere: also a check line that a damaged
 * line break has glued to the line before it. */
static bool has_check_value(const char *text, size_t len) {
        for (size_t start = 0; start + 6 <= len; start++) {
                size_t pos = start + 6, digits = 0;

                if (memcmp(text + start, "check:", 6) != 0)
                        continue;

                while (pos < len && (text[pos] == ' ' || text[pos] == '\t'))
                        pos++;
                while (pos < len && digits < 2 * BUNDLE_CHECK_LEN &&
                       ((text[pos] >= '0' && text[pos] <= '9') || (text[pos] >= 'a' && text[pos] <= 'f')))
                        pos++, digits++;
                if (digits == 2 * BUNDLE_CHECK_LEN)
                        return true;
        }
        return false;
}

/*
 * Whether the bundle has a `check`, however broken the rest: a line with that key, or a check
 * value anywhere. Such a bundle came from a writer of revision 1.1, which writes only valid
 * bundles, so whatever is wrong with it is damage, not a mistake of its author.
 */
static bool has_check_line(const char *text, size_t len) {
        if (has_check_value(text, len))
                return true;
        for (size_t pos = 0; pos < len;) {
                const char *start = text + pos, *nl = memchr(start, '\n', len - pos), *hash, *colon;
                size_t line_len = nl ? (size_t) (nl - start) : len - pos, key_len;

                pos += line_len + (nl ? 1 : 0);
                hash = memchr(start, '#', line_len);
                if (hash)
                        line_len = (size_t) (hash - start);
                colon = memchr(start, ':', line_len);
                if (!colon)
                        continue;
                key_len = (size_t) (colon - start);
                trim(&start, &key_len);
                if (key_len == 5 && memcmp(start, "check", 5) == 0)
                        return true;
        }
        return false;
}

int bundle_parse(const char *text, size_t len, unsigned flags, struct bundle *ret, unsigned *ret_line) {
        struct field_value values[FIELD_COUNT] = { 0 };
        struct bundle b = { 0 };
        char scratch[SV_ID_MAX + 1];
        const struct profile_info *pi;
        uint64_t format, n, m, p;
        uint8_t want[BUNDLE_CHECK_LEN], got_check[BUNDLE_CHECK_LEN];
        unsigned line = 0;
        size_t got = 0;
        int r, profile;

        if (len > BUNDLE_TEXT_MAX) {
                r = -EINVAL;
                goto fail;
        }
        if (memchr(text, '\0', len)) {
                r = -EINVAL;
                goto fail;
        }
        r = bundle_split(text, len, values, &line);
        if (r < 0)
                goto fail;
        for (int f = 0; f < FIELD_COUNT; f++)
                if (!values[f].s && !field_optional(f)) {
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
        /* Revision 1.1 §10: `kex` is optional, absent means none, x25519 needs hardened. */
        b.kex = SV_KEX_NONE;
        if (values[FIELD_KEX].s) {
                int kex;

                if (values[FIELD_KEX].len >= sizeof scratch)
                        FIELD_FAIL(FIELD_KEX);
                memcpy(scratch, values[FIELD_KEX].s, values[FIELD_KEX].len);
                scratch[values[FIELD_KEX].len] = '\0';
                kex = profile_kex_from_name(scratch);
                if (kex < 0 || !profile_entry(b.params.profile, (uint64_t) kex))
                        FIELD_FAIL(FIELD_KEX);
                b.kex = (uint8_t) kex;
        }
        b.params.kex = b.kex;           /* the handshake reads it from the params */
        pi = profile_entry(b.params.profile, b.kex);
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
        if (values[FIELD_CHECK].s && parse_check(values[FIELD_CHECK].s, values[FIELD_CHECK].len, got_check) < 0)
                FIELD_FAIL(FIELD_CHECK);
#undef FIELD_FAIL

        if (vault_params_validate(&b.params) < 0) {
                r = -EINVAL;
                goto fail;
        }
        /* §8: refused before anything is stored or destroyed. */
        if (values[FIELD_CHECK].s) {
                r = bundle_check(&b.params, b.kex, b.vault, want);
                if (r < 0)
                        goto fail;
                if (CRYPTO_memcmp(want, got_check, BUNDLE_CHECK_LEN) != 0) {
                        r = -EBADMSG;
                        goto fail;
                }
                b.checked = true;
        } else if (!(flags & BUNDLE_ACCEPT_UNCHECKED)) {
                r = -ENOMSG;
                goto fail;
        }
        *ret = b;
        return 0;
fail:
        bundle_free(&b);
        if (r == -EINVAL && len <= BUNDLE_TEXT_MAX && has_check_line(text, len))
                r = -EBADMSG;
        if (ret_line)
                *ret_line = line;
        return r;
}

int bundle_format(const struct bundle *b, char **ret_text, size_t *ret_len) {
        uint8_t check[BUNDLE_CHECK_LEN];
        size_t b64_len, cap, len;
        char *text;
        int n;

        if (vault_params_validate(&b->params) < 0 || !b->vault ||
            (b->server[0] && !bundle_server_valid(b->server)) ||
            bundle_check(&b->params, b->kex, b->vault, check) < 0)
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
                     "%s"
                     "%s%s%s"
                     "vault: ",
                     BUNDLE_FORMAT, b->params.device_id, vault_profile_to_string(b->params.profile),
                     b->params.n, b->params.m, b->params.p, b->params.epoch,
                     b->kex == SV_KEX_X25519 ? "kex: x25519\n" : "",
                     b->server[0] ? "server: " : "", b->server, b->server[0] ? "\n" : "");
        if (n < 0 || (size_t) n + b64_len + 1 + sizeof "check: " + 2 * BUNDLE_CHECK_LEN + 1 > cap) {
                bundle_text_free(text, cap);
                return -EINVAL;
        }
        len = (size_t) n;
        base64_encode(b->vault, vault_size(&b->params), text + len);
        len += b64_len;
        len += (size_t) snprintf(text + len, cap - len, "\ncheck: ");
        for (size_t i = 0; i < BUNDLE_CHECK_LEN; i++)
                len += (size_t) snprintf(text + len, cap - len, "%02x", check[i]);
        text[len++] = '\n';
        text[len] = '\0';
        *ret_text = text;
        *ret_len = len;
        return 0;
}

/* What a valid value of each field looks like, for bundle_explain(). */
static const char *const field_expected[FIELD_COUNT] = {
        [FIELD_FORMAT] = "expected 1",
        [FIELD_DEVICE_ID] = "expected 1..64 of A-Z a-z 0-9 . _ : -",
        [FIELD_PROFILE] = "expected hardened or paper, with n, m, p and kex it allows",
        [FIELD_N] = "not a number of keys the profile allows",
        [FIELD_M] = "not a key size the profile allows",
        [FIELD_P] = "not a challenge size the profile allows with this n",
        [FIELD_EPOCH] = "expected a decimal number",
        [FIELD_SERVER] = "expected HOST:PORT or [IPv6]:PORT",
        [FIELD_VAULT] = "not base64 of n x m bytes: cut or edited?",
        [FIELD_KEX] = "expected none or x25519 (x25519 needs profile hardened)",
        [FIELD_CHECK] = "expected 32 lowercase hex digits",
};

int bundle_explain(const char *text, size_t len, unsigned line, char *buf, size_t cap) {
        bool seen[FIELD_COUNT] = { false };
        unsigned n = 0;

        if (!text || !buf || cap == 0)
                return -EINVAL;
        if (len > BUNDLE_TEXT_MAX)
                return snprintf(buf, cap, "larger than %d bytes", BUNDLE_TEXT_MAX) < 0 ? -EINVAL : 0;
        if (memchr(text, '\0', len))
                return snprintf(buf, cap, "contains a NUL byte: not a text file") < 0 ? -EINVAL : 0;
        /* Only keys are named, never a value: a value may be (part of) the vault. */
        for (size_t pos = 0; pos < len;) {
                const char *start, *key = NULL, *value;
                size_t line_len, key_len = 0, value_len = 0;
                int f, kv;

                next_line(text, len, &pos, &start, &line_len);
                n++;
                if (line_len == 0)
                        continue;
                kv = split_key_value(start, line_len, &key, &key_len, &value, &value_len);
                f = kv < 0 ? -EINVAL : field_lookup(key, key_len);
                if (n == line) {
                        if (kv < 0)
                                snprintf(buf, cap, "line %u is not 'key: value'", n);
                        else if (f < 0)
                                snprintf(buf, cap, "line %u has an unknown key", n);
                        else if (seen[f])
                                snprintf(buf, cap, "line %u: '%s' given twice", n, field_names[f]);
                        else if (value_len == 0)
                                snprintf(buf, cap, "line %u: '%s' has no value", n, field_names[f]);
                        else
                                snprintf(buf, cap, "line %u: '%s': %s", n, field_names[f], field_expected[f]);
                        return 0;
                }
                if (f >= 0)
                        seen[f] = true;
        }
        for (int f = 0; f < FIELD_COUNT; f++)
                if (!seen[f] && !field_optional(f))
                        return snprintf(buf, cap, "'%s' is missing", field_names[f]) < 0 ? -EINVAL : 0;
        snprintf(buf, cap, "its parameters do not make a valid vault (profile, n, m, p)");
        return 0;
}
