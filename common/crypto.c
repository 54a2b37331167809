/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto.h"

/* Algorithms fetched once: a per-message EVP_*_fetch costs a provider lookup each time. */
static struct {
        EVP_MD *sha256;
        EVP_MAC *hmac;
        EVP_KDF *hkdf;
        EVP_CIPHER *aes128gcm;
        EVP_CIPHER *aes256gcm;
        int ok;
        int mac_rearm;          /* EVP_MAC_init(ctx, NULL, 0, NULL) restarts a keyed HMAC */
} algs;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static int kbkdf_hmac(const uint8_t *key, size_t key_len, const char *label, const void *context,
                      size_t context_len, void *out, size_t out_len, int rearm);
static void mac_rearm_probe(void);

static void algs_fetch(void) {
        algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        algs.hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        algs.aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
        algs.aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        algs.ok = algs.sha256 && algs.hmac && algs.hkdf && algs.aes128gcm && algs.aes256gcm;
        if (algs.ok)
                mac_rearm_probe();
}

static int algs_ready(void) {
        if (pthread_once(&algs_once, algs_fetch) != 0 || !algs.ok)
                return -EIO;
        return 0;
}

int crypto_random(void *out, size_t len) {
        if (len > INT32_MAX)
                return -EINVAL;
        return RAND_bytes(out, (int) len) == 1 ? 0 : -EIO;
}

int crypto_sha256_v(const void *const *pieces, const size_t *lens, size_t count, uint8_t out[32]) {
        EVP_MD_CTX *ctx;
        int r = -EIO;

        if (algs_ready() < 0)
                return -EIO;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex2(ctx, algs.sha256, NULL) != 1)
                goto out;
        for (size_t i = 0; i < count; i++)
                if (EVP_DigestUpdate(ctx, pieces[i], lens[i]) != 1)
                        goto out;
        if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
                goto out;
        r = 0;
out:
        EVP_MD_CTX_free(ctx);
        return r;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[32]) {
        const void *pieces[] = { data };
        const size_t lens[] = { len };

        return crypto_sha256_v(pieces, lens, 1, out);
}

static int hmac(const char *digest, const void *key, size_t key_len,
                const void *msg, size_t msg_len, uint8_t *out, size_t out_len) {
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) digest, 0),
                OSSL_PARAM_construct_end(),
        };
        EVP_MAC_CTX *ctx;
        size_t got = 0;
        int r = -EIO;

        if (algs_ready() < 0)
                return -EIO;
        ctx = EVP_MAC_CTX_new(algs.hmac);
        if (!ctx)
                return -ENOMEM;
        if (EVP_MAC_init(ctx, key, key_len, params) != 1 ||
            EVP_MAC_update(ctx, msg, msg_len) != 1 ||
            EVP_MAC_final(ctx, out, &got, out_len) != 1 ||
            got != out_len)
                goto out;
        r = 0;
out:
        EVP_MAC_CTX_free(ctx);
        return r;
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[32]) {
        return hmac("SHA256", key, key_len, msg, msg_len, out, 32);
}

int crypto_hmac_sha512(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[64]) {
        return hmac("SHA512", key, key_len, msg, msg_len, out, 64);
}

static int kdf_derive(EVP_KDF *kdf, const OSSL_PARAM *params, void *out, size_t out_len) {
        EVP_KDF_CTX *ctx;
        int r;

        ctx = EVP_KDF_CTX_new(kdf);
        if (!ctx)
                return -ENOMEM;
        r = EVP_KDF_derive(ctx, out, out_len, params) == 1 ? 0 : -EIO;
        EVP_KDF_CTX_free(ctx);
        if (r < 0)
                OPENSSL_cleanse(out, out_len);
        return r;
}

static int hkdf_mode(int mode, const void *salt, size_t salt_len, const void *key, size_t key_len,
                     const char *info, void *out, size_t out_len) {
        OSSL_PARAM params[6], *p = params;

        if (algs_ready() < 0)
                return -EIO;
        *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) key, key_len);
        if (salt)
                *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len);
        if (info)
                *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, strlen(info));
        *p = OSSL_PARAM_construct_end();
        return kdf_derive(algs.hkdf, params, out, out_len);
}

int crypto_hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, uint8_t prk[32]) {
        return hkdf_mode(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_len, ikm, ikm_len, NULL, prk, 32);
}

int crypto_hkdf_expand(const uint8_t prk[32], const char *info, void *out, size_t out_len) {
        return hkdf_mode(EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, 32, info, out, out_len);
}

int crypto_hkdf(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
                const char *info, void *out, size_t out_len) {
        return hkdf_mode(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, salt, salt_len, ikm, ikm_len,
                         info, out, out_len);
}

/*
 * SP 800-108 counter mode with HMAC-SHA256, exactly what OpenSSL's EVP_KDF "KBKDF" computes
 * (counter before the fixed data, label || 0x00 || context || u32(L*8); the unit tests hold
 * the two equal). With rearm it keys one HMAC context and restarts it per 32-byte block:
 * OpenSSL 3.0's KBKDF duplicates and frees a context per block, which made it most of the cost
 * of a vault update. Without, it passes the key on every block.
 */
static int kbkdf_hmac(const uint8_t *key, size_t key_len, const char *label, const void *context,
                      size_t context_len, void *out, size_t out_len, int rearm) {
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        uint8_t block[32], l_bits[4], zero = 0, *o = out;
        size_t label_len = strlen(label), done = 0;
        EVP_MAC_CTX *ctx;
        int r = -EIO;

        if (out_len == 0 || out_len > UINT32_MAX / 8)
                return -EINVAL;
        l_bits[0] = (uint8_t) (out_len * 8 >> 24);
        l_bits[1] = (uint8_t) (out_len * 8 >> 16);
        l_bits[2] = (uint8_t) (out_len * 8 >> 8);
        l_bits[3] = (uint8_t) (out_len * 8);
        ctx = EVP_MAC_CTX_new(algs.hmac);
        if (!ctx)
                return -ENOMEM;
        for (uint32_t i = 1; done < out_len; i++) {
                uint8_t counter[4] = { (uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i };
                size_t got = 0, take = out_len - done < sizeof block ? out_len - done : sizeof block;
                int armed = i == 1 || !rearm ? EVP_MAC_init(ctx, key, key_len, params)
                                             : EVP_MAC_init(ctx, NULL, 0, NULL);

                if (armed != 1 ||
                    EVP_MAC_update(ctx, counter, sizeof counter) != 1 ||
                    EVP_MAC_update(ctx, (const uint8_t *) label, label_len) != 1 ||
                    EVP_MAC_update(ctx, &zero, 1) != 1 ||
                    EVP_MAC_update(ctx, context, context_len) != 1 ||
                    EVP_MAC_update(ctx, l_bits, sizeof l_bits) != 1 ||
                    EVP_MAC_final(ctx, block, &got, sizeof block) != 1 || got != sizeof block)
                        goto out;
                memcpy(o + done, block, take);
                done += take;
        }
        r = 0;
out:
        EVP_MAC_CTX_free(ctx);
        OPENSSL_cleanse(block, sizeof block);
        if (r < 0)
                OPENSSL_cleanse(out, out_len);
        return r;
}

/* OpenSSL 3.0.0-3.0.2 take a keyless EVP_MAC_init() as a no-op instead of a restart
 * (openssl#17811): every block after the first would then be wrong. Use the restart only
 * where it gives what re-keying gives. */
static void mac_rearm_probe(void) {
        static const uint8_t key[32] = { 1 };
        uint8_t a[96], b[96];

        algs.mac_rearm = kbkdf_hmac(key, sizeof key, "probe", "", 0, a, sizeof a, 1) == 0 &&
                         kbkdf_hmac(key, sizeof key, "probe", "", 0, b, sizeof b, 0) == 0 &&
                         memcmp(a, b, sizeof a) == 0;
}

int crypto_kbkdf(const uint8_t *key, size_t key_len, const char *label,
                 const void *context, size_t context_len, void *out, size_t out_len) {
        if (algs_ready() < 0)
                return -EIO;
        return kbkdf_hmac(key, key_len, label, context, context_len, out, out_len, algs.mac_rearm);
}

static const EVP_CIPHER *gcm_for(size_t key_len) {
        if (algs_ready() < 0)
                return NULL;
        switch (key_len) {
        case 16: return algs.aes128gcm;
        case 32: return algs.aes256gcm;
        default: return NULL;
        }
}

int crypto_aead_seal(const uint8_t *key, size_t key_len, const uint8_t iv[12],
                     const void *aad, size_t aad_len, const void *pt, size_t pt_len, uint8_t *out) {
        const EVP_CIPHER *cipher = gcm_for(key_len);
        EVP_CIPHER_CTX *ctx;
        int len, r = -EIO;

        if (!cipher || pt_len > INT32_MAX || aad_len > INT32_MAX)
                return -EINVAL;
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_EncryptInit_ex2(ctx, cipher, key, iv, NULL) != 1)
                goto out;
        if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int) aad_len) != 1)
                goto out;
        if (pt_len > 0 && EVP_EncryptUpdate(ctx, out, &len, pt, (int) pt_len) != 1)
                goto out;
        if (EVP_EncryptFinal_ex(ctx, out + pt_len, &len) != 1)
                goto out;
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out + pt_len) != 1)
                goto out;
        r = 0;
out:
        EVP_CIPHER_CTX_free(ctx);
        if (r < 0)
                OPENSSL_cleanse(out, pt_len + 16);
        return r;
}

int crypto_aead_open(const uint8_t *key, size_t key_len, const uint8_t iv[12],
                     const void *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *pt) {
        const EVP_CIPHER *cipher = gcm_for(key_len);
        EVP_CIPHER_CTX *ctx;
        uint8_t scratch[16];
        size_t pt_len;
        int len, r = -EIO;

        if (!cipher || in_len > INT32_MAX || aad_len > INT32_MAX)
                return -EINVAL;
        if (in_len < 16)
                return -EBADMSG;
        pt_len = in_len - 16;
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DecryptInit_ex2(ctx, cipher, key, iv, NULL) != 1)
                goto out;
        if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int) aad_len) != 1)
                goto out;
        if (pt_len > 0 && EVP_DecryptUpdate(ctx, pt, &len, in, (int) pt_len) != 1)
                goto out;
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *) (in + pt_len)) != 1)
                goto out;
        /* GCM writes nothing at Final; the scratch buffer spares a NULL + 0 for tag-only input. */
        r = EVP_DecryptFinal_ex(ctx, pt ? pt + pt_len : scratch, &len) == 1 ? 0 : -EBADMSG;
out:
        EVP_CIPHER_CTX_free(ctx);
        if (r < 0 && pt_len > 0)
                OPENSSL_cleanse(pt, pt_len);
        return r;
}
