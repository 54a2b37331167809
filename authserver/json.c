/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "authserver.h"
#include "text.h"

void json_string(const char *s) {
        char buf[4 * 256 + 8];

        printf("\"%s\"", text_json_escape(s, buf, sizeof buf) < 0 ? "" : buf);
}
