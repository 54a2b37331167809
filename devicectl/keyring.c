/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <keyutils.h>

#include "devicectl.h"

static int keyring_from_name(const char *name, key_serial_t *ret) {
        if (strcmp(name, "@u") == 0)
                *ret = KEY_SPEC_USER_KEYRING;
        else if (strcmp(name, "@s") == 0)
                *ret = KEY_SPEC_SESSION_KEYRING;
        else if (strcmp(name, "@p") == 0)
                *ret = KEY_SPEC_PROCESS_KEYRING;
        else
                return -EINVAL;
        return 0;
}

/*
 * The session key goes to the kernel as a "user" key named after the device, so that
 * applications read it with keyctl(1)/libkeyutils and it expires on its own. Adding a
 * key of the same name replaces the previous session's.
 */
int keyring_add_session_key(const char *keyring, const char *device_id, const uint8_t key[SV_KEY_LEN],
                            unsigned lifetime_s, int32_t *ret_serial) {
        char desc[sizeof "secure-vault:" + SV_ID_MAX];
        key_serial_t ring, serial;
        int r;

        r = keyring_from_name(keyring, &ring);
        if (r < 0)
                return r;
        snprintf(desc, sizeof desc, "secure-vault:%s", device_id);
        serial = add_key("user", desc, key, SV_KEY_LEN, ring);
        if (serial < 0)
                return -errno;
        if (keyctl_set_timeout(serial, lifetime_s) < 0) {
                r = -errno;
                (void) keyctl_invalidate(serial);
                return r;
        }
        *ret_serial = serial;
        return 0;
}
