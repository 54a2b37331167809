/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "harden.h"

/*
 * Non-dumpable first: it also makes /proc/PID/{mem,environ,maps} root-owned and refuses
 * ptrace to processes of our own uid, so a compromised neighbour under the same user cannot
 * read the key out of memory. RLIMIT_CORE 0 covers the rest (a core_pattern pipe ignores the
 * dumpable flag for some handlers). Under authserver.service the seccomp filter denies
 * setrlimit (@resources), but LimitCORE=0 has set both limits already: that is accepted.
 */
int harden_process(void) {
        const struct rlimit no_core = { 0, 0 };
        struct rlimit rl;

        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        if (setrlimit(RLIMIT_CORE, &no_core) < 0) {
                int r = -errno;

                if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
                        return r;
        }
        return 0;
}

static size_t page_round(size_t len) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        return (len + page - 1) / page * page;
}

int harden_secret_alloc(size_t len, void **ret) {
        void *p;
        int r;

        if (len == 0)
                return -EINVAL;
        len = page_round(len);
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -errno;
        /* A key that might reach swap is not acceptable: no lock, no key. */
        if (mlock(p, len) < 0 || madvise(p, len, MADV_DONTDUMP) < 0) {
                r = -errno;
                munmap(p, len);
                return r;
        }
#ifdef MADV_WIPEONFORK
        (void) madvise(p, len, MADV_WIPEONFORK);
#endif
        memset(p, 0, len);
        *ret = p;
        return 0;
}

void harden_secret_free(void *p, size_t len) {
        if (!p)
                return;
        len = page_round(len);
        OPENSSL_cleanse(p, len);
        (void) munlock(p, len);
        (void) munmap(p, len);
}
