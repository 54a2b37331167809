/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kex.h"

/*
 * The u-coordinates of the points of small order on curve25519 and its twist, little
 * endian as X25519 reads them (RFC 7748 §5, the list of libsodium's blocklist and of
 * https://cr.yp.to/ecdh.html#validate). Bit 255 is masked off before comparing, as X25519
 * itself ignores it, which covers the 7 further encodings with that bit set.
 */
static const uint8_t small_order[][SV_X25519_LEN] = {
        /* 0 */
        { 0 },
        /* 1 */
        { 1 },
        /* 325606250916557431795983626356110631294008115727848805560023387167927233504 (order 8) */
        { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
          0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
        /* 39382357235489614581723060781553021112529911719440698176882885853963445705823 (order 8) */
        { 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
          0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
        /* p - 1 */
        { 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
        /* p, non-canonical 0 */
        { 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
        /* p + 1, non-canonical 1 */
        { 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};

bool kex_share_is_small_order(const uint8_t share[SV_X25519_LEN]) {
        uint8_t u[SV_X25519_LEN];

        memcpy(u, share, sizeof u);
        u[31] &= 0x7f;
        for (size_t i = 0; i < sizeof small_order / sizeof small_order[0]; i++)
                if (memcmp(u, small_order[i], sizeof u) == 0)
                        return true;
        return false;
}

void kex_wipe(struct kex *k) {
        OPENSSL_cleanse(k, sizeof *k);
}

/* An X25519 private key from the raw scalar; OpenSSL clamps it and keeps its own copy,
 * which EVP_PKEY_free() cleanses. */
static EVP_PKEY *private_key(const uint8_t e[SV_X25519_LEN]) {
        return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, e, SV_X25519_LEN);
}

/*
 * The key pair again at kex_finish(), from the scalar and the share computed at kex_start():
 * with both given, OpenSSL does not derive the public key a second time (a scalar
 * multiplication, a third of the cost of a side's exchange).
 */
static EVP_PKEY *key_pair(const struct kex *k) {
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, (void *) k->e, sizeof k->e),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *) k->share, sizeof k->share),
                OSSL_PARAM_construct_end(),
        };
        EVP_PKEY_CTX *ctx;
        EVP_PKEY *key = NULL;

        ctx = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
                key = NULL;
        EVP_PKEY_CTX_free(ctx);
        return key;
}

int kex_start(struct kex *k, uint8_t e[SV_X25519_LEN]) {
        EVP_PKEY *key;
        size_t len = SV_X25519_LEN;
        int r = -EIO;

        kex_wipe(k);
        memcpy(k->e, e, sizeof k->e);
        OPENSSL_cleanse(e, SV_X25519_LEN);
        key = private_key(k->e);
        if (key && EVP_PKEY_get_raw_public_key(key, k->share, &len) == 1 && len == SV_X25519_LEN)
                r = 0;
        EVP_PKEY_free(key);
        if (r < 0)
                kex_wipe(k);
        else
                k->armed = true;
        return r;
}

static bool all_zero(const uint8_t *p, size_t len) {
        uint8_t acc = 0;

        for (size_t i = 0; i < len; i++)
                acc |= p[i];
        return acc == 0;
}

/*
 * OpenSSL refuses an all-zero result itself (EVP_PKEY_derive fails), which is then told
 * apart from an internal failure by the share; a provider that returned the zeros instead
 * is refused by the check after the derivation. Either way the caller sees -EKEYREJECTED
 * for exactly the shares of kex_share_is_small_order().
 */
int kex_finish(struct kex *k, const uint8_t peer_share[SV_X25519_LEN], uint8_t ret_z[SV_X25519_LEN]) {
        EVP_PKEY *key = NULL, *peer = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        uint8_t z[SV_X25519_LEN];
        size_t len = sizeof z;
        int r = -EIO;

        if (!k->armed) {
                kex_wipe(k);
                return -EINVAL;
        }
        key = key_pair(k);
        kex_wipe(k);                    /* the scalar is used once: gone on every path from here */
        peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_share, SV_X25519_LEN);
        if (!key || !peer)
                goto out;
        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1)
                goto out;
        ERR_set_mark();
        if (EVP_PKEY_derive(ctx, z, &len) != 1) {
                if (kex_share_is_small_order(peer_share)) {
                        /* An outcome, not an OpenSSL failure: leave no error in the thread's queue. */
                        ERR_pop_to_mark();
                        r = -EKEYREJECTED;
                } else
                        ERR_clear_last_mark();
                goto out;
        }
        ERR_clear_last_mark();
        if (len != sizeof z)
                goto out;
        if (all_zero(z, sizeof z)) {
                r = -EKEYREJECTED;
                goto out;
        }
        memcpy(ret_z, z, sizeof z);
        r = 0;
out:
        OPENSSL_cleanse(z, sizeof z);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(peer);
        EVP_PKEY_free(key);
        return r;
}
