/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "buf.h"
#include "crypto.h"
#include "vaultfile.h"

/*
 * Layout (docs/vault-file.md), all integers big-endian:
 *
 *   magic[8] || u16 version || u8 id_len || id || u8 profile || u16 n || u8 m || u8 p ||
 *   u64 epoch || u8 server_len || server || u16 name_len || parent_name || u16 pub_len || pub ||
 *   u16 priv_len || priv || u32 pcr_mask || u8 kek_auth || u32 nv_index || u64 counter || iv[12] ||
 *   u32 ct_len
 *   -- end of header = associated data --
 *   ciphertext(32 + n·m) || tag[16]
 *
 * ct_len is redundant with n and m; it is there so that a reader sees the file's shape in the
 * header and so that truncation is caught before any decryption.
 *
 * Version 1 is the same without kek_auth (read as VAULTFILE_KEK_AUTH_NONE). Version 3 adds
 * u8 kex after kek_auth (protocol 1.1 §10: SV_KEX_X25519; never 0, which is version 2's).
 * A vault of kex none is written as version 2, so a file an older vaultd could use stays one
 * it can read; a vault with a key share is written as version 3, which an older vaultd
 * refuses ("unsupported format version") rather than run the handshake without the share.
 * A version 1 file becomes version 2 at its next generation.
 */

static uint16_t header_version(const struct vaultfile_header *h) {
        return h->params.kex == SV_KEX_NONE ? VAULTFILE_VERSION : VAULTFILE_VERSION_KEX;
}

static bool header_valid(const struct vaultfile_header *h) {
        size_t server_len = strnlen(h->server, sizeof h->server);

        if (vault_params_validate(&h->params) < 0)
                return false;
        if (server_len > BUNDLE_SERVER_MAX || (server_len > 0 && !bundle_server_valid(h->server)))
                return false;
        if (h->parent_name_len < 2 || h->parent_name_len > VAULTFILE_NAME_MAX)
                return false;
        if (h->sealed_pub_len == 0 || h->sealed_pub_len > VAULTFILE_BLOB_MAX ||
            h->sealed_priv_len == 0 || h->sealed_priv_len > VAULTFILE_BLOB_MAX)
                return false;
        if (h->kek_auth != VAULTFILE_KEK_AUTH_NONE && h->kek_auth != VAULTFILE_KEK_AUTH_KEY_FILE)
                return false;
        return true;
}

static size_t header_size(const struct vaultfile_header *h) {
        return VAULTFILE_MAGIC_LEN + 2 + 1 + h->params.id_len + 1 + 2 + 1 + 1 + 8 +
               1 + strlen(h->server) + 2 + h->parent_name_len + 2 + h->sealed_pub_len +
               2 + h->sealed_priv_len + 4 + 1 + (header_version(h) == VAULTFILE_VERSION_KEX) +
               4 + 8 + SV_GCM_IV_LEN + 4;
}

size_t vaultfile_size(const struct vaultfile_header *h) {
        if (!header_valid(h))
                return 0;
        return header_size(h) + VAULTFILE_CT_LEN(vault_size(&h->params));
}

static int put_blob16(struct buf *b, const uint8_t *p, size_t len) {
        int r = buf_put_u16(b, (uint16_t) len);

        return r < 0 ? r : buf_put_bytes(b, p, len);
}

static int header_encode(const struct vaultfile_header *h, struct buf *b) {
        size_t server_len = strlen(h->server);
        int r;

        r = buf_put_bytes(b, VAULTFILE_MAGIC, VAULTFILE_MAGIC_LEN);
        if (r >= 0)
                r = buf_put_u16(b, header_version(h));
        if (r >= 0)
                r = buf_put_u8(b, h->params.id_len);
        if (r >= 0)
                r = buf_put_bytes(b, h->params.device_id, h->params.id_len);
        if (r >= 0)
                r = buf_put_u8(b, h->params.profile);
        if (r >= 0)
                r = buf_put_u16(b, h->params.n);
        if (r >= 0)
                r = buf_put_u8(b, h->params.m);
        if (r >= 0)
                r = buf_put_u8(b, h->params.p);
        if (r >= 0)
                r = buf_put_u64(b, h->params.epoch);
        if (r >= 0)
                r = buf_put_u8(b, (uint8_t) server_len);
        if (r >= 0)
                r = buf_put_bytes(b, h->server, server_len);
        if (r >= 0)
                r = put_blob16(b, h->parent_name, h->parent_name_len);
        if (r >= 0)
                r = put_blob16(b, h->sealed_pub, h->sealed_pub_len);
        if (r >= 0)
                r = put_blob16(b, h->sealed_priv, h->sealed_priv_len);
        if (r >= 0)
                r = buf_put_u32(b, h->pcr_mask);
        if (r >= 0)
                r = buf_put_u8(b, h->kek_auth);
        if (r >= 0 && header_version(h) == VAULTFILE_VERSION_KEX)
                r = buf_put_u8(b, h->params.kex);
        if (r >= 0)
                r = buf_put_u32(b, h->nv_index);
        if (r >= 0)
                r = buf_put_u64(b, h->counter);
        if (r >= 0)
                r = buf_put_bytes(b, h->iv, sizeof h->iv);
        if (r >= 0)
                r = buf_put_u32(b, (uint32_t) VAULTFILE_CT_LEN(vault_size(&h->params)));
        return r;
}

int vaultfile_key(const uint8_t kek[VAULTFILE_KEK_LEN], uint64_t counter, uint8_t out[32]) {
        uint8_t salt[8];

        be64_put(salt, counter);
        return crypto_hkdf(salt, sizeof salt, kek, VAULTFILE_KEK_LEN, VAULTFILE_KEY_INFO, out, 32);
}

/*
 * AES-256-GCM over two plaintext pieces (counter auth, vault) without ever concatenating them:
 * the vault lives in secret memory and must not be copied into an ordinary buffer.
 */
static int gcm_crypt(bool encrypt, const uint8_t key[32], const uint8_t iv[SV_GCM_IV_LEN],
                     const uint8_t *aad, size_t aad_len,
                     const uint8_t *in1, uint8_t *out1, size_t len1,
                     const uint8_t *in2, uint8_t *out2, size_t len2, uint8_t tag[SV_TAG_LEN]) {
        EVP_CIPHER *cipher;
        EVP_CIPHER_CTX *ctx = NULL;
        int n, r = -EIO;

        if (aad_len > INT32_MAX || len1 > INT32_MAX || len2 > INT32_MAX)
                return -EINVAL;
        cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        if (!cipher)
                return -EIO;
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_CipherInit_ex2(ctx, cipher, key, iv, encrypt ? 1 : 0, NULL) != 1 ||
            EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1 ||
            EVP_CipherUpdate(ctx, out1, &n, in1, (int) len1) != 1 || (size_t) n != len1 ||
            EVP_CipherUpdate(ctx, out2, &n, in2, (int) len2) != 1 || (size_t) n != len2)
                goto out;
        if (encrypt) {
                if (EVP_CipherFinal_ex(ctx, out2 + len2, &n) != 1 ||
                    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SV_TAG_LEN, tag) != 1)
                        goto out;
        } else {
                uint8_t scratch[16];

                if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SV_TAG_LEN, tag) != 1)
                        goto out;
                if (EVP_CipherFinal_ex(ctx, scratch, &n) != 1) {
                        r = -EBADMSG;
                        goto out;
                }
        }
        r = 0;
out:
        EVP_CIPHER_CTX_free(ctx);
        EVP_CIPHER_free(cipher);
        return r;
}

int vaultfile_seal(const struct vaultfile_header *h, const uint8_t kek[VAULTFILE_KEK_LEN],
                   const uint8_t counter_auth[VAULTFILE_AUTH_LEN], const uint8_t *vault,
                   uint8_t *out, size_t cap, size_t *ret_len) {
        size_t total, hlen, vlen;
        uint8_t key[32];
        struct buf b;
        int r;

        total = vaultfile_size(h);
        if (total == 0)
                return -EINVAL;
        if (total > cap)
                return -ENOBUFS;
        buf_init(&b, out, cap);
        r = header_encode(h, &b);
        if (r < 0)
                return r;
        hlen = b.len;
        vlen = vault_size(&h->params);

        r = vaultfile_key(kek, h->counter, key);
        if (r >= 0)
                r = gcm_crypt(true, key, h->iv, out, hlen,
                              counter_auth, out + hlen, VAULTFILE_AUTH_LEN,
                              vault, out + hlen + VAULTFILE_AUTH_LEN, vlen,
                              out + hlen + VAULTFILE_AUTH_LEN + vlen);
        OPENSSL_cleanse(key, sizeof key);
        if (r < 0) {
                OPENSSL_cleanse(out, total);
                return r;
        }
        *ret_len = total;
        return 0;
}

static int get_blob16(struct buf *b, uint8_t *out, size_t max, size_t *ret_len) {
        uint16_t len;

        if (buf_get_u16(b, &len) < 0 || len > max || buf_get_bytes(b, out, len) < 0)
                return -EBADMSG;
        *ret_len = len;
        return 0;
}

/* Decodes the header; on success *ret_hlen is its length (the associated data). */
static int header_decode(const uint8_t *file, size_t len, struct vaultfile_header *ret, size_t *ret_hlen) {
        struct vaultfile_header h = { 0 };
        uint8_t magic[VAULTFILE_MAGIC_LEN], server_len;
        uint16_t version;
        uint32_t ct_len;
        struct buf b;

        buf_reader(&b, file, len);
        if (buf_get_bytes(&b, magic, sizeof magic) < 0 || memcmp(magic, VAULTFILE_MAGIC, sizeof magic) != 0)
                return -EBADMSG;
        if (buf_get_u16(&b, &version) < 0)
                return -EBADMSG;
        if (version != VAULTFILE_VERSION && version != VAULTFILE_VERSION_1 && version != VAULTFILE_VERSION_KEX)
                return -EPROTONOSUPPORT;
        if (buf_get_u8(&b, &h.params.id_len) < 0 || h.params.id_len < SV_ID_MIN || h.params.id_len > SV_ID_MAX ||
            buf_get_bytes(&b, h.params.device_id, h.params.id_len) < 0 ||
            buf_get_u8(&b, &h.params.profile) < 0 ||
            buf_get_u16(&b, &h.params.n) < 0 ||
            buf_get_u8(&b, &h.params.m) < 0 ||
            buf_get_u8(&b, &h.params.p) < 0 ||
            buf_get_u64(&b, &h.params.epoch) < 0)
                return -EBADMSG;
        h.params.device_id[h.params.id_len] = '\0';
        if (buf_get_u8(&b, &server_len) < 0 || buf_get_bytes(&b, h.server, server_len) < 0)
                return -EBADMSG;
        h.server[server_len] = '\0';
        if (memchr(h.server, '\0', server_len))
                return -EBADMSG;
        if (get_blob16(&b, h.parent_name, sizeof h.parent_name, &h.parent_name_len) < 0 ||
            get_blob16(&b, h.sealed_pub, sizeof h.sealed_pub, &h.sealed_pub_len) < 0 ||
            get_blob16(&b, h.sealed_priv, sizeof h.sealed_priv, &h.sealed_priv_len) < 0 ||
            buf_get_u32(&b, &h.pcr_mask) < 0 ||
            (version != VAULTFILE_VERSION_1 && buf_get_u8(&b, &h.kek_auth) < 0) ||
            (version == VAULTFILE_VERSION_KEX && (buf_get_u8(&b, &h.params.kex) < 0 || h.params.kex == SV_KEX_NONE)) ||
            buf_get_u32(&b, &h.nv_index) < 0 ||
            buf_get_u64(&b, &h.counter) < 0 ||
            buf_get_bytes(&b, h.iv, sizeof h.iv) < 0 ||
            buf_get_u32(&b, &ct_len) < 0)
                return -EBADMSG;
        /* Semantic checks: a device id with a NUL or bad characters, parameters out of range. */
        if (!header_valid(&h))
                return -EBADMSG;
        if (ct_len != VAULTFILE_CT_LEN(vault_size(&h.params)) || buf_remaining(&b) != ct_len)
                return -EBADMSG;
        *ret_hlen = b.pos;
        *ret = h;
        return 0;
}

int vaultfile_decode(const uint8_t *file, size_t len, struct vaultfile_header *ret) {
        size_t hlen;

        if (len > VAULTFILE_MAX)
                return -EBADMSG;
        return header_decode(file, len, ret, &hlen);
}

int vaultfile_open(const uint8_t *file, size_t len, const struct vaultfile_header *h,
                   const uint8_t kek[VAULTFILE_KEK_LEN], uint8_t counter_auth[VAULTFILE_AUTH_LEN],
                   uint8_t *vault) {
        struct vaultfile_header again;
        uint8_t key[32], tag[SV_TAG_LEN];
        size_t hlen, vlen = vault_size(&h->params);
        int r;

        /* Decode again rather than trust the caller's header to describe these very bytes. */
        r = len > VAULTFILE_MAX ? -EBADMSG : header_decode(file, len, &again, &hlen);
        if (r < 0)
                goto out;
        if (again.params.n != h->params.n || again.params.m != h->params.m) {
                r = -EINVAL;
                goto out;
        }
        memcpy(tag, file + hlen + VAULTFILE_AUTH_LEN + vlen, sizeof tag);

        r = vaultfile_key(kek, again.counter, key);
        if (r >= 0)
                r = gcm_crypt(false, key, again.iv, file, hlen,
                              file + hlen, counter_auth, VAULTFILE_AUTH_LEN,
                              file + hlen + VAULTFILE_AUTH_LEN, vault, vlen, tag);
        OPENSSL_cleanse(key, sizeof key);
out:
        if (r < 0) {
                /*
                 * GCM hands out plaintext before it checks the tag: none of it may survive. The
                 * outputs are wiped on every failure, as vaultfile.h promises, so that a caller
                 * never finds a previous vault in them after an altered file was refused.
                 */
                OPENSSL_cleanse(counter_auth, VAULTFILE_AUTH_LEN);
                OPENSSL_cleanse(vault, vlen);
        }
        return r;
}
