/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vaultd.h"

#if !defined(__NR_memfd_secret) && defined(__x86_64__)
#  define __NR_memfd_secret 447
#endif

static enum {
        SECMEM_UNSET,
        SECMEM_MEMFD_SECRET,
        SECMEM_MLOCK,
} mechanism;

static int memfd_secret_fd(void) {
#ifdef __NR_memfd_secret
        long fd = syscall(__NR_memfd_secret, (unsigned) O_CLOEXEC);

        return fd < 0 ? -errno : (int) fd;
#else
        return -ENOSYS;
#endif
}

/*
 * Secrets must not reach swap, core files, /proc/PID/mem of a same-uid attacker, or the kernel's
 * direct map where possible. memfd_secret(2) pages are removed from the direct map and are
 * unswappable; without it (ENOSYS on kernels before 5.14, or when disabled with
 * secretmem.enable=0), anonymous pages are mlock()ed and excluded from dumps. The process is
 * made non-dumpable either way, which also closes /proc/PID/mem and ptrace to other processes of
 * the same uid, and core files are disabled outright.
 */
int secmem_init(void) {
        const struct rlimit no_core = { 0, 0 };
        int fd;

        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        if (setrlimit(RLIMIT_CORE, &no_core) < 0)
                return -errno;
        fd = memfd_secret_fd();
        if (fd >= 0) {
                close(fd);
                mechanism = SECMEM_MEMFD_SECRET;
        } else
                mechanism = SECMEM_MLOCK;
        return 0;
}

const char *secmem_mechanism(void) {
        switch (mechanism) {
        case SECMEM_MEMFD_SECRET:
                return "memfd_secret";
        case SECMEM_MLOCK:
                return "mlock+MADV_DONTDUMP";
        default:
                return "none";
        }
}

static size_t page_round(size_t size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        return (size + page - 1) / page * page;
}

int secmem_alloc(size_t size, void **ret) {
        void *p;
        int r;

        if (mechanism == SECMEM_UNSET || size == 0)
                return -EINVAL;
        size = page_round(size);
        if (mechanism == SECMEM_MEMFD_SECRET) {
                int fd = memfd_secret_fd();

                if (fd < 0)
                        return fd;
                if (ftruncate(fd, (off_t) size) < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
                p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                r = -errno;
                close(fd);      /* the mapping keeps the memory */
                if (p == MAP_FAILED)
                        return r;
        } else {
                p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        return -errno;
                /* Failing closed: a secret that might be swapped out is not acceptable. */
                if (mlock(p, size) < 0 || madvise(p, size, MADV_DONTDUMP) < 0) {
                        r = -errno;
                        munmap(p, size);
                        return r;
                }
#ifdef MADV_WIPEONFORK
                (void) madvise(p, size, MADV_WIPEONFORK);
#endif
        }
        memset(p, 0, size);
        *ret = p;
        return 0;
}

void secmem_free(void *p, size_t size) {
        if (!p)
                return;
        size = page_round(size);
        explicit_bzero(p, size);
        if (mechanism == SECMEM_MLOCK)
                (void) munlock(p, size);
        (void) munmap(p, size);
}
