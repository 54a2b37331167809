/* SPDX-License-Identifier: MIT */
/*
 * HMAC-SHA256 and what the protocol builds on it (HKDF, SP 800-108 KBKDF), computed from
 * precomputed keyed states: the SHA-256 state after the key's 64-byte inner and outer pad
 * blocks (RFC 2104 §4, "precompute the intermediate results"). A key costs its two
 * compressions once; every MAC under it starts from a copy of the two states and costs only
 * the compressions of its own message. Through EVP_MAC or EVP_KDF, OpenSSL 3.0 re-keys (or
 * duplicates) a provider context per MAC, which made the KBKDF expansion of a vault
 * (one MAC per 32 bytes) cost three times the hash itself.
 *
 * The states are OpenSSL's low-level SHA256_CTX, deprecated in 3.0 (the EVP equivalent,
 * EVP_MD_CTX_copy_ex, allocates a provider context per copy and measured 30 % slower; see
 * docs/benchmarks.md). This file is the only user of that API, so the deprecation warnings
 * are suppressed here alone. Every keyed state and every intermediate block is wiped before
 * it goes out of scope, on every path.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "crypto.h"

#define HMAC_BLOCK      SHA256_CBLOCK           /* 64 */
#define HMAC_LEN        SHA256_DIGEST_LENGTH    /* 32 */
#define HKDF_BLOCKS_MAX 255                     /* RFC 5869: L <= 255 · HashLen */

struct hmac_key {
        SHA256_CTX inner;       /* after K ^ ipad */
        SHA256_CTX outer;       /* after K ^ opad */
};

static void hmac_key_wipe(struct hmac_key *k) {
        OPENSSL_cleanse(k, sizeof *k);
}

/* The two keyed states of `key` (any length: a key longer than a block is hashed first). */
static int hmac_key_init(struct hmac_key *k, const void *key, size_t key_len) {
        uint8_t pad[HMAC_BLOCK] = { 0 }, ipad[HMAC_BLOCK], opad[HMAC_BLOCK];
        SHA256_CTX t;
        int r = -EIO;

        if (key_len > HMAC_BLOCK) {
                if (SHA256_Init(&t) != 1 || SHA256_Update(&t, key, key_len) != 1 || SHA256_Final(pad, &t) != 1)
                        goto out;
        } else if (key_len > 0)
                memcpy(pad, key, key_len);
        for (size_t i = 0; i < HMAC_BLOCK; i++) {
                ipad[i] = pad[i] ^ 0x36;
                opad[i] = pad[i] ^ 0x5c;
        }
        if (SHA256_Init(&k->inner) != 1 || SHA256_Update(&k->inner, ipad, sizeof ipad) != 1 ||
            SHA256_Init(&k->outer) != 1 || SHA256_Update(&k->outer, opad, sizeof opad) != 1)
                goto out;
        r = 0;
out:
        OPENSSL_cleanse(pad, sizeof pad);
        OPENSSL_cleanse(ipad, sizeof ipad);
        OPENSSL_cleanse(opad, sizeof opad);
        OPENSSL_cleanse(&t, sizeof t);
        if (r < 0)
                hmac_key_wipe(k);
        return r;
}

/* HMAC(K, pieces[0] || ... ) into out (32 bytes, may alias a piece); k is left as it was. */
static int hmac_key_mac_v(const struct hmac_key *k, const void *const *pieces, const size_t *lens, size_t count,
                          uint8_t out[HMAC_LEN]) {
        uint8_t inner[HMAC_LEN];
        SHA256_CTX t = k->inner;
        int r = -EIO;

        for (size_t i = 0; i < count; i++)
                if (lens[i] > 0 && SHA256_Update(&t, pieces[i], lens[i]) != 1)
                        goto out;
        if (SHA256_Final(inner, &t) != 1)
                goto out;
        t = k->outer;
        if (SHA256_Update(&t, inner, sizeof inner) != 1 || SHA256_Final(out, &t) != 1)
                goto out;
        r = 0;
out:
        OPENSSL_cleanse(inner, sizeof inner);
        OPENSSL_cleanse(&t, sizeof t);
        return r;
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[32]) {
        const void *pieces[] = { msg };
        const size_t lens[] = { msg_len };
        struct hmac_key k;
        uint8_t mac[HMAC_LEN];
        int r;

        r = hmac_key_init(&k, key, key_len);
        if (r >= 0)
                r = hmac_key_mac_v(&k, pieces, lens, 1, mac);
        if (r >= 0)
                memcpy(out, mac, sizeof mac);
        hmac_key_wipe(&k);
        OPENSSL_cleanse(mac, sizeof mac);
        return r;
}

int crypto_hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, uint8_t prk[32]) {
        /* RFC 5869: no salt is HashLen zero bytes, which as an HMAC key pads to the same block
         * as the empty key. */
        return crypto_hmac_sha256(salt ? salt : "", salt ? salt_len : 0, ikm, ikm_len, prk);
}

/* HKDF-Expand from the keyed PRK: T(i) = HMAC(PRK, T(i-1) || info || u8 i). */
static int hkdf_expand_key(const struct hmac_key *k, const char *info, uint8_t *out, size_t out_len) {
        uint8_t block[HMAC_LEN];
        size_t info_len = info ? strlen(info) : 0, done = 0;
        int r = 0;

        if (out_len == 0 || out_len > HKDF_BLOCKS_MAX * HMAC_LEN)
                return -EINVAL;
        for (unsigned i = 1; done < out_len && r >= 0; i++) {
                uint8_t counter = (uint8_t) i;
                const void *pieces[] = { block, info, &counter };
                const size_t lens[] = { i == 1 ? 0 : sizeof block, info_len, 1 };
                size_t take = out_len - done < sizeof block ? out_len - done : sizeof block;

                r = hmac_key_mac_v(k, pieces, lens, 3, block);
                if (r >= 0) {
                        memcpy(out + done, block, take);
                        done += take;
                }
        }
        OPENSSL_cleanse(block, sizeof block);
        if (r < 0)
                OPENSSL_cleanse(out, out_len);
        return r;
}

int crypto_hkdf_expand(const uint8_t prk[32], const char *info, void *out, size_t out_len) {
        struct hmac_key k;
        int r;

        r = hmac_key_init(&k, prk, 32);
        if (r >= 0)
                r = hkdf_expand_key(&k, info, out, out_len);
        else
                OPENSSL_cleanse(out, out_len);
        hmac_key_wipe(&k);
        return r;
}

int crypto_hkdf_expand32_v(const uint8_t prk[32], const char *const *infos, uint8_t *const *outs, size_t count) {
        struct hmac_key k;
        int r;

        r = hmac_key_init(&k, prk, 32);
        for (size_t i = 0; i < count && r >= 0; i++)
                r = hkdf_expand_key(&k, infos[i], outs[i], 32);
        if (r < 0)
                for (size_t i = 0; i < count; i++)
                        OPENSSL_cleanse(outs[i], 32);
        hmac_key_wipe(&k);
        return r;
}

int crypto_hkdf(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
                const char *info, void *out, size_t out_len) {
        uint8_t prk[HMAC_LEN];
        int r;

        r = crypto_hkdf_extract(salt, salt_len, ikm, ikm_len, prk);
        if (r >= 0)
                r = crypto_hkdf_expand(prk, info, out, out_len);
        else
                OPENSSL_cleanse(out, out_len);
        OPENSSL_cleanse(prk, sizeof prk);
        return r;
}

/*
 * SP 800-108 counter mode with HMAC-SHA256, as OpenSSL's EVP_KDF "KBKDF" computes it
 * (tests/unit/check_hmac holds the two equal): block i = HMAC(K, u32 i || label || 0x00 ||
 * context || u32 L·8). The message is built once; per block only the counter changes, and
 * each block costs the compressions of its message and one of the outer hash, nothing else.
 */
int crypto_kbkdf(const uint8_t *key, size_t key_len, const char *label,
                 const void *context, size_t context_len, void *out, size_t out_len) {
        uint8_t msg[CRYPTO_KBKDF_INPUT_MAX], inner[HMAC_LEN], last[HMAC_LEN], *o = out;
        size_t label_len = strlen(label), msg_len, done = 0;
        uint64_t bits = (uint64_t) out_len * 8;
        struct hmac_key k;
        SHA256_CTX t;
        int r = -EIO;

        if (out_len == 0 || bits > UINT32_MAX || label_len > CRYPTO_KBKDF_INPUT_MAX - 9 ||
            context_len > CRYPTO_KBKDF_INPUT_MAX - 9 - label_len || (context_len > 0 && !context))
                return -EINVAL;
        msg_len = 4;
        memcpy(msg + msg_len, label, label_len);
        msg_len += label_len;
        msg[msg_len++] = 0x00;
        if (context_len > 0)
                memcpy(msg + msg_len, context, context_len);
        msg_len += context_len;
        msg[msg_len++] = (uint8_t) (bits >> 24);
        msg[msg_len++] = (uint8_t) (bits >> 16);
        msg[msg_len++] = (uint8_t) (bits >> 8);
        msg[msg_len++] = (uint8_t) bits;

        if (hmac_key_init(&k, key, key_len) < 0)
                goto out;
        for (uint32_t i = 1; done < out_len; i++) {
                size_t take = out_len - done < HMAC_LEN ? out_len - done : HMAC_LEN;
                /* Whole blocks go straight to the output; the short last one through `last`. */
                uint8_t *dst = take == HMAC_LEN ? o + done : last;

                msg[0] = (uint8_t) (i >> 24);
                msg[1] = (uint8_t) (i >> 16);
                msg[2] = (uint8_t) (i >> 8);
                msg[3] = (uint8_t) i;
                t = k.inner;
                if (SHA256_Update(&t, msg, msg_len) != 1 || SHA256_Final(inner, &t) != 1)
                        goto out;
                t = k.outer;
                if (SHA256_Update(&t, inner, sizeof inner) != 1 || SHA256_Final(dst, &t) != 1)
                        goto out;
                if (dst == last)
                        memcpy(o + done, last, take);
                done += take;
        }
        r = 0;
out:
        hmac_key_wipe(&k);
        OPENSSL_cleanse(&t, sizeof t);
        OPENSSL_cleanse(inner, sizeof inner);
        OPENSSL_cleanse(last, sizeof last);
        OPENSSL_cleanse(msg, sizeof msg);
        if (r < 0)
                OPENSSL_cleanse(out, out_len);
        return r;
}
