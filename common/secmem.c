/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "secmem.h"

#if !defined(__NR_memfd_secret) && defined(__x86_64__)
#  define __NR_memfd_secret 447
#endif

static enum {
        SECMEM_MLOCK,
        SECMEM_MEMFD_SECRET,
} mechanism = SECMEM_MLOCK;

static int memfd_secret_fd(void) {
#ifdef __NR_memfd_secret
        long fd = syscall(__NR_memfd_secret, (unsigned) O_CLOEXEC);

        return fd < 0 ? -errno : (int) fd;
#else
        return -ENOSYS;
#endif
}

int secmem_harden_process(void) {
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

void secmem_init(bool try_memfd_secret) {
        int fd = try_memfd_secret ? memfd_secret_fd() : -ENOSYS;

        if (fd >= 0) {
                close(fd);
                mechanism = SECMEM_MEMFD_SECRET;
        } else
                mechanism = SECMEM_MLOCK;
}

const char *secmem_mechanism(void) {
        switch (mechanism) {
        case SECMEM_MEMFD_SECRET:
                return "memfd_secret";
        default:
                return "mlock+MADV_DONTDUMP";
        }
}

static size_t page_round(size_t size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        return (size + page - 1) / page * page;
}

static int map_secret_fd(size_t size, void **ret) {
        int fd = memfd_secret_fd(), r;
        void *p;

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
        *ret = p;
        return 0;
}

static int map_locked(size_t size, void **ret) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r;

        if (p == MAP_FAILED)
                return -errno;
        if (mlock(p, size) < 0 || madvise(p, size, MADV_DONTDUMP) < 0) {
                r = -errno;
                munmap(p, size);
                return r;
        }
#ifdef MADV_WIPEONFORK
        (void) madvise(p, size, MADV_WIPEONFORK);
#endif
        *ret = p;
        return 0;
}

int secmem_alloc(size_t size, void **ret) {
        void *p = NULL;
        int r;

        if (size == 0)
                return -EINVAL;
        size = page_round(size);
        r = mechanism == SECMEM_MEMFD_SECRET ? map_secret_fd(size, &p) : map_locked(size, &p);
        if (r < 0)
                return r;
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
