/* SPDX-License-Identifier: MIT */
#include <string.h>

#include <openssl/crypto.h>

#include "authserver.h"
#include "crypto.h"

/*
 * Failures are counted per key (conn.c: the peer's network, the claimed id from that network,
 * and the claimed id from anywhere) in a fixed table keyed by a salted hash, so memory stays
 * bounded whatever an attacker sends, and an id is slowed down the same whether or not it
 * exists (decoys must not be told apart by timing).
 * A collision or an eviction only ever forgets failures early.
 */
void backoff_init(struct backoff *b) {
        memset(b, 0, sizeof *b);
        if (crypto_random(b->salt, sizeof b->salt) < 0)
                memset(b->salt, 0x5a, sizeof b->salt);
}

static uint64_t key_hash(const struct backoff *b, const char *key) {
        uint8_t digest[32];
        uint64_t h = 0;

        if (crypto_hmac_sha256(b->salt, sizeof b->salt, key, strlen(key), digest) < 0)
                return 1;
        for (int i = 0; i < 8; i++)
                h = h << 8 | digest[i];
        return h ? h : 1;
}

static struct backoff_entry *slot_for(struct backoff *b, uint64_t h) {
        return &b->slots[h % BACKOFF_SLOTS];
}

static int64_t delay_for(uint32_t failures) {
        int64_t d = BACKOFF_BASE_MS;

        if (failures == 0)
                return 0;
        for (uint32_t i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
                d *= 2;
        return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

int64_t backoff_wait(const struct backoff *b, const char *key, int64_t now_ms) {
        uint64_t h = key_hash(b, key);
        const struct backoff_entry *e = &b->slots[h % BACKOFF_SLOTS];

        if (e->hash != h || e->failures == 0)
                return 0;
        return e->next_ms > now_ms ? e->next_ms - now_ms : 0;
}

/*
 * An attempt under back-off takes the slot it waited for: the one after it waits one more
 * delay. Without this, N connections opened in parallel would all wait out the same delay
 * and then be tried together, N guesses for the price of one.
 */
void backoff_reserve(struct backoff *b, const char *key, int64_t start_ms, int64_t limit_ms) {
        uint64_t h = key_hash(b, key);
        struct backoff_entry *e = slot_for(b, h);
        int64_t next;

        if (e->hash != h || e->failures == 0)
                return;
        next = (e->next_ms > start_ms ? e->next_ms : start_ms) + delay_for(e->failures);
        if (next > limit_ms)
                next = limit_ms;
        if (next > e->next_ms)
                e->next_ms = next;
}

void backoff_failure(struct backoff *b, const char *key, int64_t now_ms) {
        uint64_t h = key_hash(b, key);
        struct backoff_entry *e = slot_for(b, h);
        int64_t next;

        if (e->hash != h)
                *e = (struct backoff_entry) { .hash = h };
        if (e->failures < UINT32_MAX)
                e->failures++;
        /* A slot already reserved by a parallel attempt stays reserved. */
        next = now_ms + delay_for(e->failures);
        if (next > e->next_ms)
                e->next_ms = next;
}

void backoff_success(struct backoff *b, const char *key) {
        uint64_t h = key_hash(b, key);
        struct backoff_entry *e = slot_for(b, h);

        if (e->hash == h)
                *e = (struct backoff_entry) { 0 };
}
