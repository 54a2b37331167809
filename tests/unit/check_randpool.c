/* SPDX-License-Identifier: MIT */
/* authserver/randpool.c: pooled random bytes are never handed out twice, across a fork or threads. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "randpool.h"
#include "unit.h"

/* Two draws of the same bytes would show as equal 32-byte strings (a 2^-256 chance otherwise). */
START_TEST(test_draws_differ) {
        uint8_t prev[32], cur[32], zero[32] = { 0 };

        ck_assert_int_eq(randpool_bytes(prev, sizeof prev), 0);
        /* Past several refills of the 4 KiB pool. */
        for (unsigned i = 0; i < 1000; i++) {
                ck_assert_int_eq(randpool_bytes(cur, sizeof cur), 0);
                ck_assert_mem_ne(cur, prev, sizeof cur);
                ck_assert_mem_ne(cur, zero, sizeof cur);
                memcpy(prev, cur, sizeof cur);
        }
        /* Larger than a quarter of the pool: straight from RAND. */
        uint8_t big[3000];
        memset(big, 0, sizeof big);
        ck_assert_int_eq(randpool_bytes(big, sizeof big), 0);
        ck_assert_mem_ne(big + sizeof big - 32, zero, 32);
        randpool_release();
        ck_assert_int_eq(randpool_bytes(cur, sizeof cur), 0);
        ck_assert_mem_ne(cur, prev, sizeof cur);
}
END_TEST

/* A child of fork() must not draw the bytes its parent draws next from the same pool. */
START_TEST(test_fork_does_not_share) {
        uint8_t first[8], parent[32], child[32];
        int fd[2], status;
        pid_t pid;

        ck_assert_int_eq(randpool_bytes(first, sizeof first), 0);       /* the pool is filled */
        ck_assert_int_eq(pipe(fd), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(fd[0]);
                if (randpool_bytes(child, sizeof child) < 0 || write(fd[1], child, sizeof child) != sizeof child)
                        _exit(1);
                _exit(0);
        }
        close(fd[1]);
        ck_assert_int_eq(randpool_bytes(parent, sizeof parent), 0);
        ck_assert_int_eq(read(fd[0], child, sizeof child), (ssize_t) sizeof child);
        close(fd[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_mem_ne(parent, child, sizeof parent);
}
END_TEST

/* The locked memory of this process, in kB (VmLck of /proc/self/status). */
static long vm_locked_kb(void) {
        char line[256];
        long kb = -1;
        FILE *f = fopen("/proc/self/status", "re");

        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        ck_assert_int_ge(kb, 0);
        return kb;
}

/* The pool page is locked in memory (never swapped out with unused random bytes in it), and
 * unlocked with its release. */
START_TEST(test_pool_locked) {
        uint8_t x[32];
        long before;

        randpool_release();
        before = vm_locked_kb();
        ck_assert_int_eq(randpool_bytes(x, sizeof x), 0);
#ifdef __SANITIZE_ADDRESS__
        /* ASan's mlock() interceptor does nothing and returns 0 ("AddressSanitizer ignores
         * mlock"): VmLck cannot move in that build. The plain build asserts it. */
        (void) before;
#else
        ck_assert_int_ge(vm_locked_kb(), before + 4);
        randpool_release();
        ck_assert_int_eq(vm_locked_kb(), before);
#endif
}
END_TEST

static void *draw_thread(void *out) {
        return randpool_bytes(out, 32) < 0 ? out : NULL;
}

START_TEST(test_threads_do_not_share) {
        uint8_t a[32], b[32];
        pthread_t ta, tb;
        void *ra, *rb;

        ck_assert_int_eq(pthread_create(&ta, NULL, draw_thread, a), 0);
        ck_assert_int_eq(pthread_create(&tb, NULL, draw_thread, b), 0);
        ck_assert_int_eq(pthread_join(ta, &ra), 0);
        ck_assert_int_eq(pthread_join(tb, &rb), 0);
        ck_assert_ptr_null(ra);
        ck_assert_ptr_null(rb);
        ck_assert_mem_ne(a, b, sizeof a);
}
END_TEST

static Suite *randpool_suite(void) {
        Suite *s = suite_create("randpool");
        TCase *tc = tcase_create("randpool");

        tcase_add_test(tc, test_draws_differ);
        tcase_add_test(tc, test_fork_does_not_share);
        tcase_add_test(tc, test_threads_do_not_share);
        tcase_add_test(tc, test_pool_locked);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(randpool_suite());
}
