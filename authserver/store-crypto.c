/* SPDX-License-Identifier: MIT */

/*
 * Vault blobs at rest, and the master key file.
 *
 * Each blob is AES-256-GCM with a fresh random 12-byte IV, stored as iv || ciphertext || tag,
 * with associated data id || u64 epoch || "sv1 store vault": a blob copied to another device's
 * row or to another generation does not open. The pending blob of generation e+1 keeps that
 * AD when it becomes the committed one, so promotion moves ciphertext without re-sealing.
 *
 * The AES key is not the master key itself but HKDF-Expand(master, "sv1 store key" || id, 32),
 * one key per device id. Random 96-bit IVs allow about 2^32 encryptions per key (NIST SP
 * 800-38D §8.3); a busy server seals a vault on every handshake and would reach that under a
 * single key within its lifetime, whereas one device never will.
 *
 * The master key itself lives only in locked, non-dumpable pages (harden.c): the file is read
 * into them, and the key stays there for the store's life. Each derivation keys a fresh HMAC
 * state from it rather than keeping a keyed one, whose inner and outer hash states (as good
 * as the key) would sit in ordinary memory for the life of the process; a fresh one's states
 * exist for microseconds on the stack (common/hmac.c, no allocation) and are wiped there.
 */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cleanup.h"
#include "crypto.h"
#include "randpool.h"
#include "secmem.h"
#include "store-crypto.h"

#define AD_LABEL        "sv1 store vault"
#define KEY_LABEL       "sv1 store key"
#define AES_KEY_LEN     32

struct store_aead {
        EVP_CIPHER *aes;
        EVP_CIPHER_CTX *ctx;
        uint8_t *master;        /* STORE_MASTER_KEY_LEN bytes in a locked page */
};

DEFINE_POINTER_CLEANUP(struct store_aead *, store_aead_free)

int store_aead_new(const uint8_t master_key[STORE_MASTER_KEY_LEN], struct store_aead **ret) {
        _cleanup_(store_aead_freep) struct store_aead *a = NULL;
        int r;

        a = OPENSSL_zalloc(sizeof(*a));
        if (!a)
                return -ENOMEM;
        r = secmem_alloc(STORE_MASTER_KEY_LEN, (void **) &a->master);
        if (r < 0)
                return r;
        memcpy(a->master, master_key, STORE_MASTER_KEY_LEN);
        a->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        a->ctx = EVP_CIPHER_CTX_new();
        if (!a->aes || !a->ctx)
                return -EIO;
        *ret = TAKE_PTR(a);
        return 0;
}

void store_aead_free(struct store_aead *a) {
        if (!a)
                return;
        /* The cipher context cleanses the key schedule it holds. */
        secmem_free(a->master, STORE_MASTER_KEY_LEN);
        EVP_CIPHER_CTX_free(a->ctx);
        EVP_CIPHER_free(a->aes);
        OPENSSL_free(a);
}

/* Longest label || id of a derivation (the labels are this file's and store.c's constants). */
#define EXPAND_INFO_MAX (64 + STORE_ID_MAX)

/* HKDF-Expand(master, label || id, 32): a single HMAC block, HMAC(master, label || id || 0x01),
 * computed on the stack by common/hmac.c (no allocation; it wipes its keyed states). */
static int expand(struct store_aead *a, const char *label, const char *id, uint8_t key[AES_KEY_LEN]) {
        uint8_t info[EXPAND_INFO_MAX + 1];
        size_t ll = strlen(label), il = strlen(id);
        int r;

        if (ll > 64 || il > STORE_ID_MAX)
                return -EINVAL;
        memcpy(info, label, ll);
        memcpy(info + ll, id, il);
        info[ll + il] = 0x01;
        r = crypto_hmac_sha256(a->master, STORE_MASTER_KEY_LEN, info, ll + il + 1, key);
        if (r < 0)
                OPENSSL_cleanse(key, AES_KEY_LEN);
        OPENSSL_cleanse(info, sizeof info);
        return r < 0 ? -EIO : 0;
}

static int device_key(struct store_aead *a, const char *id, uint8_t key[AES_KEY_LEN]) {
        return expand(a, KEY_LABEL, id, key);
}

/* The labels differ within their first bytes, so no id makes this collide with a device key. */
int store_aead_keyed_hash(struct store_aead *a, const char *label, const char *id, uint8_t out[32]) {
        if (!a)
                return -ENOKEY;         /* a store opened with STORE_NO_KEY */
        if (strncmp(label, KEY_LABEL, strlen(KEY_LABEL)) == 0)
                return -EINVAL;
        return expand(a, label, id, out);
}

static size_t build_ad(const char *id, uint64_t epoch, uint8_t ad[STORE_ID_MAX + 8 + sizeof(AD_LABEL)]) {
        size_t idl = strlen(id), k = 0;

        memcpy(ad, id, idl);
        k = idl;
        for (int i = 7; i >= 0; i--)
                ad[k++] = (uint8_t) (epoch >> (8 * i));
        memcpy(ad + k, AD_LABEL, strlen(AD_LABEL));
        return k + strlen(AD_LABEL);
}

/* One GCM pass; on decryption tag is the expected tag, on encryption it receives it. */
static int gcm(struct store_aead *a, int enc, const char *id, uint64_t epoch, const uint8_t *iv,
               const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[STORE_BLOB_TAG_LEN]) {
        uint8_t key[AES_KEY_LEN], ad[STORE_ID_MAX + 8 + sizeof(AD_LABEL)];
        size_t adl;
        int outl, r = -EIO;

        if (strlen(id) > STORE_ID_MAX || len > STORE_VAULT_MAX)
                return -EINVAL;
        if (device_key(a, id, key) < 0)
                return -EIO;
        adl = build_ad(id, epoch, ad);

        if (!EVP_CipherInit_ex2(a->ctx, a->aes, key, iv, enc, NULL) ||
            !EVP_CipherUpdate(a->ctx, NULL, &outl, ad, (int) adl) ||
            !EVP_CipherUpdate(a->ctx, out, &outl, in, (int) len) || (size_t) outl != len)
                goto out;
        if (!enc && !EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, STORE_BLOB_TAG_LEN, tag))
                goto out;
        if (!EVP_CipherFinal_ex(a->ctx, out + len, &outl)) {
                r = enc ? -EIO : -EBADMSG;
                goto out;
        }
        if (enc && !EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, STORE_BLOB_TAG_LEN, tag))
                goto out;
        r = 0;
out:
        OPENSSL_cleanse(key, sizeof(key));
        return r;
}

int store_aead_seal(struct store_aead *a, const char *id, uint64_t epoch,
                    const uint8_t *vault, size_t len, uint8_t *out) {
        int r;

        if (!a)
                return -ENOKEY;

        /* The IV from the thread's pool: one RAND_bytes (and getpid) per many seals. */
        if (randpool_bytes(out, STORE_BLOB_IV_LEN) < 0)
                return -EIO;
        r = gcm(a, 1, id, epoch, out, vault, len, out + STORE_BLOB_IV_LEN,
                out + STORE_BLOB_IV_LEN + len);
        if (r < 0)
                OPENSSL_cleanse(out, len + STORE_BLOB_OVERHEAD);
        return r;
}

int store_aead_open(struct store_aead *a, const char *id, uint64_t epoch,
                    const uint8_t *blob, size_t blob_len, uint8_t *out, size_t len) {
        uint8_t tag[STORE_BLOB_TAG_LEN];
        int r;

        if (!a)
                return -ENOKEY;

        if (!blob || len > STORE_VAULT_MAX || blob_len != len + STORE_BLOB_OVERHEAD)
                return -EBADMSG;
        memcpy(tag, blob + STORE_BLOB_IV_LEN + len, sizeof(tag));
        r = gcm(a, 0, id, epoch, blob, blob + STORE_BLOB_IV_LEN, len, out, tag);
        /* GCM decrypts before it checks the tag: never leave unauthenticated plaintext. */
        if (r < 0)
                OPENSSL_cleanse(out, len);
        return r;
}

/* Value of a hex digit, or a value >= 0x100 for any other byte, without branching on the
 * byte: decoding a key takes the same time whatever the key. */
static unsigned hex_value(uint8_t c) {
        unsigned d = (unsigned) c - '0';
        unsigned l = ((unsigned) c | 0x20) - 'a';
        unsigned dm = 0U - (unsigned) (d < 10), lm = 0U - (unsigned) (l < 6);

        return (d & dm) | ((l + 10) & lm) | (0x100 & ~(dm | lm));
}

/* The file's bytes and the decoded key, in one locked page. */
struct key_scratch {
        uint8_t buf[2 * STORE_MASTER_KEY_LEN + 2];
        uint8_t key[STORE_MASTER_KEY_LEN];
};

/* Records which step failed for the caller's message, and returns r. */
static int key_failed(struct store_key_failure *f, enum store_key_step step, int r) {
        f->step = step;
        return r;
}

/*
 * The master key decrypts every vault, so its file must be private to the server's user: a
 * file that group or others may access is refused rather than trusted, as ssh does with
 * private keys. fstat() on the open descriptor avoids a check-then-open race.
 */
int store_key_file_load(const char *path, uint8_t ret_key[STORE_MASTER_KEY_LEN],
                        struct store_key_failure *ret_failure) {
        _cleanup_close_ int fd = -EBADF;
        struct key_scratch *ks = NULL;
        uint8_t *buf;
        size_t len = 0;
        struct stat st;
        int r;

        /* O_NONBLOCK: a FIFO planted at the path must not hang us before the S_ISREG check. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return key_failed(ret_failure, STORE_KEY_OPEN, -errno);
        r = secmem_alloc(sizeof(*ks), (void **) &ks);
        if (r < 0)
                return key_failed(ret_failure, STORE_KEY_LOCK, r);
        buf = ks->buf;
        if (fstat(fd, &st) < 0) {
                r = key_failed(ret_failure, STORE_KEY_STAT, -errno);
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = key_failed(ret_failure, STORE_KEY_NOT_REGULAR, -EINVAL);
                goto out;
        }
        if (st.st_mode & 0077) {
                ret_failure->mode = (unsigned) (st.st_mode & 07777);
                r = key_failed(ret_failure, STORE_KEY_MODE, -EPERM);
                goto out;
        }
        while (len < sizeof(ks->buf)) {
                ssize_t k = read(fd, buf + len, sizeof(ks->buf) - len);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = key_failed(ret_failure, STORE_KEY_READ, -errno);
                        goto out;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }

        if (len == STORE_MASTER_KEY_LEN) {
                memcpy(ret_key, buf, STORE_MASTER_KEY_LEN);
                r = 0;
        } else if (len == 2 * STORE_MASTER_KEY_LEN ||
                   (len == 2 * STORE_MASTER_KEY_LEN + 1 && buf[len - 1] == '\n')) {
                uint8_t *key = ks->key;
                unsigned bad = 0;

                for (size_t i = 0; i < STORE_MASTER_KEY_LEN; i++) {
                        unsigned hi = hex_value(buf[2 * i]), lo = hex_value(buf[2 * i + 1]);

                        bad |= hi | lo;
                        key[i] = (uint8_t) ((hi << 4) | (lo & 0xf));
                }
                if (bad & 0x100)
                        r = key_failed(ret_failure, STORE_KEY_NOT_HEX, -EBADMSG);
                else {
                        memcpy(ret_key, key, STORE_MASTER_KEY_LEN);
                        r = 0;
                }
        } else
                r = key_failed(ret_failure, STORE_KEY_LENGTH, -EBADMSG);
out:
        secmem_free(ks, sizeof(*ks));   /* wipes the bytes read and the decoded key */
        return r;
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -EBADF;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* A new random key, drawn into key (a locked page), written to fd and synced. */
static int write_new_key(int fd, uint8_t key[STORE_MASTER_KEY_LEN], struct store_key_failure *f) {
        size_t done = 0;

        if (RAND_bytes(key, STORE_MASTER_KEY_LEN) != 1)
                return key_failed(f, STORE_KEY_RANDOM, -EIO);
        while (done < STORE_MASTER_KEY_LEN) {
                ssize_t k = write(fd, key + done, STORE_MASTER_KEY_LEN - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return key_failed(f, STORE_KEY_WRITE, k < 0 ? -errno : -EIO);
                done += (size_t) k;
        }
        if (fsync(fd) < 0)
                return key_failed(f, STORE_KEY_SYNC, -errno);
        return 0;
}

/* O_EXCL: never overwrite a key that may already protect a database. The file and its
 * directory entry are synced, since a key lost in a crash makes every vault unreadable; a
 * file that did not get a whole key is removed. */
int store_key_file_create(const char *path, struct store_key_failure *ret_failure) {
        _cleanup_close_ int fd = -EBADF;
        uint8_t *key = NULL;
        int r;

        r = secmem_alloc(STORE_MASTER_KEY_LEN, (void **) &key);
        if (r < 0)
                return key_failed(ret_failure, STORE_KEY_LOCK_NEW, r);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                r = key_failed(ret_failure, STORE_KEY_CREATE, -errno);
        else
                r = write_new_key(fd, key, ret_failure);
        secmem_free(key, STORE_MASTER_KEY_LEN);         /* wiped on every path */
        if (r < 0) {
                if (fd >= 0)
                        (void) unlink(path);
                return r;
        }
        r = fsync_parent(path);
        if (r < 0)
                return key_failed(ret_failure, STORE_KEY_SYNC_DIR, r);
        return 0;
}
