/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "randpool.h"

#define POOL_PAGE       4096

/* One page; zero after a fork (WIPEONFORK), which reads as "empty". */
struct pool {
        size_t left;                    /* the last `left` bytes of buf are unused */
        uint8_t buf[POOL_PAGE - sizeof(size_t)];
};
_Static_assert(sizeof(struct pool) == POOL_PAGE, "the pool is one page");

/* NULL: not mapped yet; NO_POOL: this kernel cannot wipe it at fork, or the page cannot be
 * locked in memory (RLIMIT_MEMLOCK), draw directly: pooled bytes never reach swap. */
#define NO_POOL ((struct pool *) (uintptr_t) 1)
static _Thread_local struct pool *pool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_key_ok;

static void pool_unmap(struct pool *p) {
        if (!p || p == NO_POOL)
                return;
        OPENSSL_cleanse(p, sizeof *p);
        (void) munmap(p, sizeof *p);
}

static void pool_key_destroy(void *p) {
        pool_unmap(p);
}

static void pool_key_create(void) {
        pool_key_ok = pthread_key_create(&pool_key, pool_key_destroy) == 0;
}

static struct pool *pool_get(void) {
        struct pool *p;

        if (pool)
                return pool;
        if (pthread_once(&pool_once, pool_key_create) != 0 || !pool_key_ok)
                return pool = NO_POOL;
        p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NO_POOL;         /* not remembered: a later draw may find memory */
        if (mlock(p, sizeof *p) < 0) {
                (void) munmap(p, sizeof *p);
                return pool = NO_POOL;
        }
        (void) madvise(p, sizeof *p, MADV_DONTDUMP);
        if (madvise(p, sizeof *p, MADV_WIPEONFORK) < 0 || pthread_setspecific(pool_key, p) != 0) {
                (void) munmap(p, sizeof *p);
                return pool = NO_POOL;
        }
        return pool = p;
}

int randpool_bytes(void *out, size_t len) {
        struct pool *p;

        if (len > INT32_MAX)
                return -EINVAL;
        p = len <= sizeof p->buf / 4 ? pool_get() : NO_POOL;
        if (p == NO_POOL) {
                if (RAND_bytes(out, (int) len) == 1)
                        return 0;
                OPENSSL_cleanse(out, len);
                return -EIO;
        }
        if (p->left < len) {
                if (RAND_bytes(p->buf, (int) sizeof p->buf) != 1) {
                        OPENSSL_cleanse(p, sizeof *p);
                        OPENSSL_cleanse(out, len);
                        return -EIO;
                }
                p->left = sizeof p->buf;
        }
        p->left -= len;
        memcpy(out, p->buf + p->left, len);
        OPENSSL_cleanse(p->buf + p->left, len);
        return 0;
}

void randpool_release(void) {
        if (pool && pool != NO_POOL) {
                (void) pthread_setspecific(pool_key, NULL);
                pool_unmap(pool);
        }
        pool = NULL;
}
