/* SPDX-License-Identifier: MIT */
/*
 * fuzz-confirm: M4 as the device reads it (hs_device_confirm), from the snapshot of each
 * fixed handshake, and the M4 plaintext decoder on the raw input. Only the genuine M4 may
 * be accepted; a rejected step leaves the device unchanged but for the ERROR code it read.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "hs-fixture.h"

static bool confirm_errno(int r) {
        return r == -EPROTONOSUPPORT || r == -EMSGSIZE || r == -EPROTO || r == -EBADMSG ||
                r == -EACCES || r == -ECONNREFUSED;
}

static void check_plaintext(const uint8_t *data, size_t size) {
        struct msg_confirm m;
        uint8_t out[SV_CONFIRM_PT_LEN];
        size_t out_len = 0;

        if (wire_decode_confirm_pt(data, size, &m) < 0)
                return;
        FUZZ_CHECK(size == SV_CONFIRM_PT_LEN);
        FUZZ_CHECK(wire_encode_confirm_pt(&m, out, sizeof out, &out_len) == 0);
        FUZZ_CHECK(out_len == size && memcmp(out, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct hs_fixture *fx = hs_fixtures();

        for (unsigned i = 0; i < HS_FIXTURE_COUNT; i++) {
                const struct hs_fixture *f = &fx[i];
                struct hs_device dev;
                struct hs_server srv;
                uint8_t out[SV_FRAME_MAX];
                size_t out_len = 0;
                int r;

                memcpy(&dev, &f->dev_m4, sizeof dev);
                r = hs_device_confirm(&dev, data, size, f->scratch_vault, out, sizeof out, &out_len);
                if (r < 0) {
                        FUZZ_CHECK(confirm_errno(r));
                        if (r == -ECONNREFUSED) {
                                uint8_t code = 0;

                                FUZZ_CHECK(wire_decode_error(data, size, &code) == 0);
                                FUZZ_CHECK(dev.peer_error == code);
                                dev.peer_error = f->dev_m4.peer_error;
                        }
                        FUZZ_CHECK(memcmp(&dev, &f->dev_m4, sizeof dev) == 0);
                        FUZZ_CHECK(!hs_device_session_key(&dev));
                } else {
                        FUZZ_CHECK(size == f->m4_len && memcmp(data, f->m4, size) == 0);
                        FUZZ_CHECK(out_len == f->m5_len && memcmp(out, f->m5, out_len) == 0);
                        FUZZ_CHECK(memcmp(f->scratch_vault, f->next_vault, vault_size(&f->params)) == 0);
                        FUZZ_CHECK(hs_device_session_key(&dev));
                        FUZZ_CHECK(memcmp(hs_device_session_key(&dev), f->session_key, SV_KEY_LEN) == 0);
                        /* And the server accepts the M5 this produced. */
                        memcpy(&srv, &f->srv_m5, sizeof srv);
                        FUZZ_CHECK(hs_server_commit(&srv, out, out_len) == 0);
                        hs_server_wipe(&srv);
                }
                hs_device_wipe(&dev);

                /* A device that has not sent M3 reads no M4. */
                memcpy(&dev, &f->dev_m2, sizeof dev);
                FUZZ_CHECK(hs_device_confirm(&dev, data, size, f->scratch_vault, out, sizeof out,
                                             &out_len) == -EINVAL);
        }
        check_plaintext(data, size);
        return 0;
}
