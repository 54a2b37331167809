/* SPDX-License-Identifier: MIT */
/*
 * fuzz-vaultfile: vaultd's sealed vault file (docs/vault-file.md). The file on disk is an
 * input too: copied off a device, edited, or put back older. The input is the whole file
 * in a buffer of exactly its size.
 *
 * - vaultfile_decode() accepts only a well-formed header whose stated size is the file's,
 *   and leaves its output untouched otherwise.
 * - vaultfile_open() under a fixed KEK either authenticates the file or fails with
 *   -EBADMSG and wipes both outputs (GCM hands out plaintext before it checks the tag).
 * - Sealing the decoded header again gives a file with byte-identical header (the
 *   associated data) that decodes to the same header and opens to what was sealed. A
 *   version 1 file (no kek_auth byte) is sealed again as version 2: one byte longer, the
 *   same header otherwise, kek_auth "none". A version 3 file (kex byte) has a key share and
 *   is sealed again as version 3; version 2 is kex none.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "vaultfile.h"

#define POISON 0xa5

static const uint8_t kek[VAULTFILE_KEK_LEN] = "fuzz-vaultfile kek, 32 bytes...";
static const uint8_t auth[VAULTFILE_AUTH_LEN] = "fuzz-vaultfile auth, 32 bytes..";

static bool all_bytes(const void *p, size_t len, uint8_t v) {
        const uint8_t *b = p;

        for (size_t i = 0; i < len; i++)
                if (b[i] != v)
                        return false;
        return true;
}

static void check_same(const struct vaultfile_header *a, const struct vaultfile_header *b) {
        FUZZ_CHECK(strcmp(a->params.device_id, b->params.device_id) == 0);
        FUZZ_CHECK(a->params.id_len == b->params.id_len && a->params.profile == b->params.profile);
        FUZZ_CHECK(a->params.n == b->params.n && a->params.m == b->params.m && a->params.p == b->params.p);
        FUZZ_CHECK(a->params.epoch == b->params.epoch);
        FUZZ_CHECK(strcmp(a->server, b->server) == 0);
        FUZZ_CHECK(a->parent_name_len == b->parent_name_len &&
                   memcmp(a->parent_name, b->parent_name, a->parent_name_len) == 0);
        FUZZ_CHECK(a->sealed_pub_len == b->sealed_pub_len &&
                   memcmp(a->sealed_pub, b->sealed_pub, a->sealed_pub_len) == 0);
        FUZZ_CHECK(a->sealed_priv_len == b->sealed_priv_len &&
                   memcmp(a->sealed_priv, b->sealed_priv, a->sealed_priv_len) == 0);
        FUZZ_CHECK(a->pcr_mask == b->pcr_mask && a->nv_index == b->nv_index && a->counter == b->counter);
        FUZZ_CHECK(a->kek_auth == b->kek_auth && a->params.kex == b->params.kex);
        FUZZ_CHECK(memcmp(a->iv, b->iv, sizeof a->iv) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct vaultfile_header h, again;
        uint8_t got_auth[VAULTFILE_AUTH_LEN];
        uint8_t *vault = NULL, *sealed = NULL, *vault2 = NULL;
        size_t vlen, total, sealed_len = 0, hlen, sealed_hlen, flip;
        bool version_1;
        int r;

        memset(&h, POISON, sizeof h);
        r = vaultfile_decode(data, size, &h);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
                FUZZ_CHECK(all_bytes(&h, sizeof h, POISON));
                return 0;
        }
        /* The version, big-endian after the magic; decoding accepted 1 or 2. */
        version_1 = data[VAULTFILE_MAGIC_LEN] == 0 && data[VAULTFILE_MAGIC_LEN + 1] == VAULTFILE_VERSION_1;
        FUZZ_CHECK(!version_1 || h.kek_auth == VAULTFILE_KEK_AUTH_NONE);
        FUZZ_CHECK((data[VAULTFILE_MAGIC_LEN + 1] == VAULTFILE_VERSION_KEX) == (h.params.kex != SV_KEX_NONE));
        total = vaultfile_size(&h);
        FUZZ_CHECK(total == size + version_1 && size <= VAULTFILE_MAX);
        FUZZ_CHECK(vault_params_validate(&h.params) == 0);
        vlen = vault_size(&h.params);
        FUZZ_CHECK(size > VAULTFILE_CT_LEN(vlen));
        hlen = size - VAULTFILE_CT_LEN(vlen);
        sealed_hlen = total - VAULTFILE_CT_LEN(vlen);

        vault = malloc(vlen);
        vault2 = malloc(vlen);
        sealed = malloc(total);
        if (!vault || !vault2 || !sealed)
                goto out;

        /* The input itself: authentic under this KEK (never, unless sealed with it) or wiped. */
        memset(got_auth, POISON, sizeof got_auth);
        memset(vault, POISON, vlen);
        r = vaultfile_open(data, size, &h, kek, got_auth, vault);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0) {
                /* "on failure both outputs are wiped" (vaultfile.h), whatever the failure */
                FUZZ_CHECK(all_bytes(got_auth, sizeof got_auth, 0));
                FUZZ_CHECK(all_bytes(vault, vlen, 0));
        }

        /* Seal the decoded header again, over a vault derived from the input. */
        for (size_t i = 0; i < vlen; i++)
                vault[i] = data[i % size] ^ (uint8_t) i;
        FUZZ_CHECK(vaultfile_seal(&h, kek, auth, vault, sealed, total - 1, &sealed_len) == -ENOBUFS);
        FUZZ_CHECK(vaultfile_seal(&h, kek, auth, vault, sealed, total, &sealed_len) == 0);
        FUZZ_CHECK(sealed_len == total);
        if (!version_1)
                FUZZ_CHECK(memcmp(sealed, data, hlen) == 0);
        memset(&again, POISON, sizeof again);
        FUZZ_CHECK(vaultfile_decode(sealed, sealed_len, &again) == 0);
        check_same(&h, &again);
        FUZZ_CHECK(vaultfile_open(sealed, sealed_len, &again, kek, got_auth, vault2) == 0);
        FUZZ_CHECK(memcmp(got_auth, auth, sizeof auth) == 0 && memcmp(vault2, vault, vlen) == 0);

        /*
         * Any flipped bit of the header (the associated data) or of the tag is caught. The
         * input's last two bytes (its tag, which decoding never looks at) pick the header byte.
         */
        flip = (((size_t) data[size - 2] << 8) | data[size - 1]) % sealed_hlen;
        sealed[flip] ^= 0x01;
        memset(got_auth, POISON, sizeof got_auth);
        memset(vault2, POISON, vlen);
        r = vaultfile_open(sealed, sealed_len, &again, kek, got_auth, vault2);
        FUZZ_CHECK(r == -EBADMSG || r == -EINVAL || r == -EPROTONOSUPPORT);
        FUZZ_CHECK(all_bytes(got_auth, sizeof got_auth, 0) && all_bytes(vault2, vlen, 0));
        sealed[flip] ^= 0x01;
        sealed[sealed_len - 1] ^= 0x80;
        memset(vault2, POISON, vlen);
        FUZZ_CHECK(vaultfile_open(sealed, sealed_len, &again, kek, got_auth, vault2) == -EBADMSG);
        FUZZ_CHECK(all_bytes(got_auth, sizeof got_auth, 0) && all_bytes(vault2, vlen, 0));
out:
        free(vault);
        free(vault2);
        free(sealed);
        return 0;
}
