/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto.h"

/* Algorithms fetched once: a per-message EVP_*_fetch costs a provider lookup each time. */
static struct {
        EVP_MD *sha256;
        EVP_MAC *hmac;
        EVP_CIPHER *aes128gcm;
        EVP_CIPHER *aes256gcm;
        int ok;
} algs;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void) {
        algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        algs.aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
        algs.aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        algs.ok = algs.sha256 && algs.hmac && algs.aes128gcm && algs.aes256gcm;
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

int crypto_hmac_sha512(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[64]) {
        return hmac("SHA512", key, key_len, msg, msg_len, out, 64);
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
