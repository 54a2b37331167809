/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "authserver.h"

/*
 * The shapes decoys take (protocol §6). A decoy M2 shows p and indices below n: were they
 * always the default shape, any id answered with another shape would be an enrolled one. So
 * a decoy takes a shape of the enrolled devices of M1's profile, picked by a keyed hash of
 * the id with probability proportional to how many devices have it: an unknown id always
 * gets the same shape, and the shapes of unknown ids are distributed like the fleet's. Pure:
 * the caller brings the counts (from the store) and the hash (keyed with the master key).
 */
void decoy_table_init(struct decoy_table *t) {
        *t = (struct decoy_table) { 0 };
}

void decoy_table_free(struct decoy_table *t) {
        for (size_t i = 0; i < t->n_shapes; i++)
                free(t->shapes[i].sealed);
        free(t->shapes);
        decoy_table_init(t);
}

int decoy_table_add(struct decoy_table *t, const struct decoy_shape *s) {
        struct vault_params v = { .device_id = "x", .id_len = 1 };

        v.profile = s->profile;
        v.n = s->n;
        v.m = s->m;
        v.p = s->p;
        if (s->count == 0 || vault_params_validate(&v) < 0)
                return -EINVAL;
        if (t->n_shapes == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 8;
                struct decoy_shape *n = realloc(t->shapes, cap * sizeof *n);

                if (!n)
                        return -ENOMEM;
                t->shapes = n;
                t->cap = cap;
        }
        t->shapes[t->n_shapes] = *s;
        t->shapes[t->n_shapes].sealed = NULL;
        t->n_shapes++;
        return 0;
}

const struct decoy_shape *decoy_shape_find(const struct decoy_table *t, uint8_t profile, uint16_t n,
                                           uint8_t m, uint8_t p) {
        for (size_t i = 0; i < t->n_shapes; i++)
                if (t->shapes[i].profile == profile && t->shapes[i].n == n && t->shapes[i].m == m &&
                    t->shapes[i].p == p)
                        return &t->shapes[i];
        return NULL;
}

/* h modulo the profile's device count, walked along the table's fixed order: the bias of a
 * 64-bit hash reduced modulo a fleet's size is negligible. */
const struct decoy_shape *decoy_shape_pick(const struct decoy_table *t, uint8_t profile, uint64_t h,
                                           const struct decoy_shape *fallback) {
        uint64_t total = 0, x;

        for (size_t i = 0; i < t->n_shapes; i++)
                if (t->shapes[i].profile == profile)
                        total += t->shapes[i].count;
        if (total == 0)
                return fallback;
        x = h % total;
        for (size_t i = 0; i < t->n_shapes; i++) {
                if (t->shapes[i].profile != profile)
                        continue;
                if (x < t->shapes[i].count)
                        return &t->shapes[i];
                x -= t->shapes[i].count;
        }
        return fallback;        /* not reached */
}
