/* SPDX-License-Identifier: MIT */
#include "unit.h"
#include "unit-kat.h"

struct kat_bytes unit_kat_bytes(const struct kat_case *c, const char *key) {
        const char *v = kat_get(c, key);
        struct kat_bytes b = { 0 };

        unit_assert(v, "case at line %u lacks '%s'", c->line, key);
        unit_assert(kat_hex(v, &b) == 0, "'%s' of the case at line %u is not hex", key, c->line);
        return b;
}

void unit_kat_list(const struct kat_case *c, const char *key, struct kat_bytes **ret, size_t *ret_n) {
        const char *v = kat_get(c, key);

        unit_assert(v, "case at line %u lacks '%s'", c->line, key);
        unit_assert(kat_hex_list(v, ret, ret_n) == 0, "'%s' of the case at line %u is not hex", key, c->line);
}
