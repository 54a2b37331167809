/* SPDX-License-Identifier: MIT */
/*
 * fuzz-bundle: the enrollment bundle of protocol §8. The input is the text, not
 * NUL-terminated, in a buffer of exactly its size. It is parsed with and without
 * BUNDLE_ACCEPT_UNCHECKED: the two agree except that the strict parse refuses exactly the
 * bundles without a check. Whatever parses must format (now with its check) and parse
 * again, strictly, to the same parameters, kex, server and vault, and format to the same text.
 */
#include <errno.h>
#include <string.h>

#include "bundle.h"
#include "fuzz.h"

static void check_same(const struct bundle *a, const struct bundle *b) {
        FUZZ_CHECK(strcmp(a->params.device_id, b->params.device_id) == 0);
        FUZZ_CHECK(a->params.id_len == b->params.id_len);
        FUZZ_CHECK(a->params.profile == b->params.profile);
        FUZZ_CHECK(a->params.n == b->params.n);
        FUZZ_CHECK(a->params.m == b->params.m);
        FUZZ_CHECK(a->params.p == b->params.p);
        FUZZ_CHECK(a->params.epoch == b->params.epoch);
        FUZZ_CHECK(a->kex == b->kex);
        FUZZ_CHECK(strcmp(a->server, b->server) == 0);
        FUZZ_CHECK(a->vault && b->vault);
        FUZZ_CHECK(memcmp(a->vault, b->vault, vault_size(&a->params)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct bundle b = { 0 }, again = { 0 }, strict = { 0 };
        char *text, *text2 = NULL, *text3 = NULL;
        size_t len2 = 0, len3 = 0;
        unsigned line = 12345;
        int r, r_strict;

        text = malloc(size);
        if (!text && size > 0)
                return 0;
        if (size > 0)
                memcpy(text, data, size);

        r = bundle_parse(text ? text : "", size, BUNDLE_ACCEPT_UNCHECKED, &b, &line);
        r_strict = bundle_parse(text ? text : "", size, 0, &strict, NULL);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(r_strict == r || r == -ENOMEM || r_strict == -ENOMEM);
                /* Never past the last line of the text. */
                FUZZ_CHECK(line <= size + 1);
                goto out;
        }
        FUZZ_CHECK(r_strict == (b.checked ? 0 : -ENOMSG) || r_strict == -ENOMEM);
        FUZZ_CHECK(vault_params_validate(&b.params) == 0);
        FUZZ_CHECK(b.kex == SV_KEX_NONE || (b.kex == SV_KEX_X25519 && b.params.profile == SV_PROFILE_HARDENED));
        FUZZ_CHECK(b.vault);
        FUZZ_CHECK(!b.server[0] || bundle_server_valid(b.server));

        FUZZ_CHECK(bundle_format(&b, &text2, &len2) == 0);
        FUZZ_CHECK(strlen(text2) == len2);
        FUZZ_CHECK(bundle_parse(text2, len2, 0, &again, &line) == 0 && again.checked);
        check_same(&b, &again);
        FUZZ_CHECK(bundle_format(&again, &text3, &len3) == 0);
        FUZZ_CHECK(len3 == len2 && memcmp(text3, text2, len2) == 0);
out:
        bundle_free(&b);
        bundle_free(&again);
        bundle_free(&strict);
        bundle_text_free(text2, len2);
        bundle_text_free(text3, len3);
        free(text);
        return 0;
}
