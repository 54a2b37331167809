/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle-file.h"

/*
 * The test devices and servers play attackers too: their bundles are edited by the scripts
 * (another epoch, another id, another device's vault line), which no longer matches the
 * `check` line. So the check line is blanked out and the bundle parsed as unchecked: these
 * tools store nothing a device keeps, and vaultd's own reading is tested with the check.
 */
static void drop_check_line(char *text, size_t len) {
        for (size_t pos = 0; pos < len;) {
                char *start = text + pos, *nl = memchr(start, '\n', len - pos);
                size_t line_len = nl ? (size_t) (nl - start) : len - pos;

                if (line_len >= 6 && memcmp(start, "check:", 6) == 0)
                        memset(start, ' ', line_len);
                pos += line_len + (nl ? 1 : 0);
        }
}

int bundle_file_load(const char *path, struct bundle *ret, unsigned *ret_line) {
        struct stat st;
        char *text;
        size_t len;
        int fd, r;

        if (ret_line)
                *ret_line = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > BUNDLE_TEXT_MAX) {
                close(fd);
                return -EFBIG;
        }
        len = (size_t) st.st_size;
        text = malloc(len);
        r = text && read(fd, text, len) == (ssize_t) len ? 0 : -EIO;
        close(fd);
        if (r >= 0) {
                drop_check_line(text, len);
                r = bundle_parse(text, len, BUNDLE_ACCEPT_UNCHECKED, ret, ret_line);
        }
        if (text)
                bundle_text_free(text, len);
        return r;
}

int bundle_file_save(const char *path, const struct bundle *b) {
        char tmp[4200], *text;
        size_t len;
        int fd, r;

        r = bundle_format(b, &text, &len);
        if (r < 0)
                return r;
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                r = -errno;
        else {
                if (write(fd, text, len) != (ssize_t) len || fsync(fd) < 0)
                        r = -EIO;
                close(fd);
        }
        bundle_text_free(text, len);
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}
