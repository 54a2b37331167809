/* SPDX-License-Identifier: MIT */
/*
 * fuzz-response: M3 as the server reads it (hs_server_respond), from the snapshot of each
 * fixed handshake and of its decoy, and the M3 plaintext decoder on the raw input.
 * Only the genuine M3 may be accepted; a rejected step leaves the server unchanged.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "hs-fixture.h"

static bool respond_errno(int r) {
        return r == -EPROTONOSUPPORT || r == -EMSGSIZE || r == -EPROTO || r == -EBADMSG || r == -EACCES;
}

static void check_plaintext(const uint8_t *data, size_t size, uint16_t n, uint8_t p) {
        struct msg_response m;
        uint8_t out[SV_RESPONSE_PT_MAX];
        size_t out_len = 0;

        if (wire_decode_response_pt(data, size, n, p, &m) < 0)
                return;
        FUZZ_CHECK(size == wire_body_len(SV_MSG_RESPONSE, &(struct wire_params) { SV_PROFILE_HARDENED, SV_KEX_NONE, 0, p }) -
                           SV_TAG_LEN);
        FUZZ_CHECK(challenge_validate(&m.c2, n, p) == 0);
        FUZZ_CHECK(wire_encode_response_pt(&m, out, sizeof out, &out_len) == 0);
        FUZZ_CHECK(out_len == size && memcmp(out, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct hs_fixture *fx = hs_fixtures();

        for (unsigned i = 0; i < HS_FIXTURE_COUNT; i++) {
                const struct hs_fixture *f = &fx[i];
                struct hs_server srv;
                uint8_t out[SV_FRAME_MAX];
                size_t out_len = 0;
                int r;

                memcpy(&srv, &f->srv_m3, sizeof srv);
                r = hs_server_respond(&srv, data, size, f->scratch_vault, out, sizeof out, &out_len);
                if (r < 0) {
                        FUZZ_CHECK(respond_errno(r));
                        FUZZ_CHECK(memcmp(&srv, &f->srv_m3, sizeof srv) == 0);
                } else {
                        FUZZ_CHECK(size == f->m3_len && memcmp(data, f->m3, size) == 0);
                        FUZZ_CHECK(out_len == f->m4_len && memcmp(out, f->m4, out_len) == 0);
                        FUZZ_CHECK(memcmp(f->scratch_vault, f->next_vault, vault_size(&f->params)) == 0);
                        FUZZ_CHECK(srv.state == HS_SERVER_CONFIRM_SENT);
                        FUZZ_CHECK(!hs_server_session_key(&srv));
                        /* The same M3 twice is a protocol error, not a second M4. */
                        FUZZ_CHECK(hs_server_respond(&srv, data, size, f->scratch_vault, out, sizeof out,
                                                     &out_len) == -EINVAL);
                }
                hs_server_wipe(&srv);

                /* A decoy reads M3 the same way and always fails it. */
                memcpy(&srv, &f->decoy_m3, sizeof srv);
                r = hs_server_respond(&srv, data, size, f->scratch_vault, out, sizeof out, &out_len);
                FUZZ_CHECK(r < 0 && respond_errno(r));
                FUZZ_CHECK(memcmp(&srv, &f->decoy_m3, sizeof srv) == 0);

                /* A server that has not sent M2 yet reads nothing. */
                memcpy(&srv, &f->srv_m1, sizeof srv);
                FUZZ_CHECK(hs_server_respond(&srv, data, size, f->scratch_vault, out, sizeof out,
                                             &out_len) == -EINVAL);

                check_plaintext(data, size, f->params.n, f->params.p);
        }
        check_plaintext(data, size, SV_N_MIN, 1);
        check_plaintext(data, size, SV_N_MAX, SV_P_MAX);
        return 0;
}
