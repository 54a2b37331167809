/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "settings.h"
#include "text.h"

int settings_read(const char *path, bool required, settings_set_fn set, void *userdata, char *err, size_t err_len) {
        char line[SETTINGS_LINE_MAX + 2], where[4200];
        unsigned lineno = 0;
        FILE *f;
        int r = 0;

        if (err_len > 0)
                err[0] = '\0';
        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT && !required)
                        return 0;
                snprintf(err, err_len, "cannot read settings file '%s': %s", path, strerror(errno));
                return -EINVAL;
        }
        errno = 0;
        while (r >= 0 && fgets(line, sizeof line, f)) {
                char *key, *value;

                snprintf(where, sizeof where, "%s:%u", path, ++lineno);
                if (strlen(line) > SETTINGS_LINE_MAX) {
                        snprintf(err, err_len, "%s: line too long", where);
                        r = -EINVAL;
                        break;
                }
                r = text_split_setting(line, &key, &value);
                if (r < 0)
                        snprintf(err, err_len, "%s: expected 'key = value', got '%s'", where, text_strip(line));
                else if (r > 0)
                        r = set(key, value, where, userdata);
        }
        if (r >= 0 && ferror(f)) {
                /* e.g. EISDIR: fopen() of a directory succeeds, reading it does not. */
                snprintf(err, err_len, "cannot read settings file '%s': %s", path,
                         strerror(errno ? errno : EIO));
                r = -EINVAL;
        }
        fclose(f);
        return r < 0 ? r : 0;
}
