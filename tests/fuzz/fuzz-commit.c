/* SPDX-License-Identifier: MIT */
/*
 * fuzz-commit: M5 as the server reads it (hs_server_commit), from the snapshot of each
 * fixed handshake. Only the genuine M5 may be accepted; a rejected M5 changes nothing.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "hs-fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct hs_fixture *fx = hs_fixtures();

        for (unsigned i = 0; i < HS_FIXTURE_COUNT; i++) {
                const struct hs_fixture *f = &fx[i];
                struct hs_server srv;
                int r;

                memcpy(&srv, &f->srv_m5, sizeof srv);
                r = hs_server_commit(&srv, data, size);
                if (r < 0) {
                        FUZZ_CHECK(r == -EPROTONOSUPPORT || r == -EMSGSIZE || r == -EPROTO ||
                                   r == -EBADMSG || r == -EACCES);
                        FUZZ_CHECK(memcmp(&srv, &f->srv_m5, sizeof srv) == 0);
                        FUZZ_CHECK(!hs_server_session_key(&srv));
                } else {
                        FUZZ_CHECK(size == f->m5_len && memcmp(data, f->m5, size) == 0);
                        FUZZ_CHECK(hs_server_session_key(&srv));
                        FUZZ_CHECK(memcmp(hs_server_session_key(&srv), f->session_key, SV_KEY_LEN) == 0);
                        FUZZ_CHECK(hs_server_commit(&srv, data, size) == -EINVAL);
                }
                hs_server_wipe(&srv);

                /* Before M4 went out there is nothing to commit. */
                memcpy(&srv, &f->srv_m3, sizeof srv);
                FUZZ_CHECK(hs_server_commit(&srv, data, size) == -EINVAL);
        }
        return 0;
}
