/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "store-plain.h"

/* The blob is sealed for the generation the write stores: expect_epoch + 1, or + 2 for a
 * promotion, which store_seal_next() names by the generation before it. */
static int seal_and_write(struct store *s, bool promote, const char *id, uint64_t enrollment,
                          uint64_t expect_epoch, const uint8_t *next, size_t len) {
        /* An invalid len is refused by store_seal_next() before it writes: not allocated. */
        size_t cap = STORE_SEALED_LEN(len <= STORE_VAULT_MAX ? len : 0);
        /* A promotion names epoch + 1; at the last epoch store_seal_next() refuses UINT64_MAX
         * itself (-EOVERFLOW) instead of sealing for a wrapped 0. */
        uint64_t epoch = promote && expect_epoch < UINT64_MAX ? expect_epoch + 1 : expect_epoch;
        uint8_t *sealed;
        int r;

        sealed = malloc(cap);
        if (!sealed)
                return -ENOMEM;
        r = store_seal_next(s, id, epoch, next, len, sealed);
        if (r >= 0)
                r = promote ? store_promote_and_set_pending_sealed(s, id, enrollment, expect_epoch, sealed,
                                                                   STORE_SEALED_LEN(len))
                            : store_set_pending_sealed(s, id, enrollment, expect_epoch, sealed,
                                                       STORE_SEALED_LEN(len));
        OPENSSL_cleanse(sealed, cap);
        free(sealed);
        return r;
}

int plain_set_pending(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                      const uint8_t *next, size_t len) {
        return seal_and_write(s, false, id, enrollment, expect_epoch, next, len);
}

int plain_promote_and_set_pending(struct store *s, const char *id, uint64_t enrollment,
                                  uint64_t expect_epoch, const uint8_t *next, size_t len) {
        return seal_and_write(s, true, id, enrollment, expect_epoch, next, len);
}
