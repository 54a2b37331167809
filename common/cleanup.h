/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * GCC/Clang cleanup attributes in systemd's _cleanup_ style, for exits that would otherwise
 * need a label: the variable is released when it goes out of scope, on every path.
 *
 *   _cleanup_close_ int fd = -EBADF;   _cleanup_free_ char *s = NULL;
 *
 * TAKE_FD()/TAKE_PTR() hand ownership on (the variable is reset so nothing is released).
 * Secrets are not released this way: they need an explicit wipe of a known length.
 */

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0)
                (void) close(*fd);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p) ({ __typeof__(p) _taken = (p); (p) = NULL; _taken; })
#define TAKE_FD(fd) ({ int _taken = (fd); (fd) = -EBADF; _taken; })

/* Defines NAMEp() that calls NAME(*p) when *p is not NULL, e.g. for OpenSSL objects:
 * DEFINE_POINTER_CLEANUP(EVP_MAC_CTX *, EVP_MAC_CTX_free) gives EVP_MAC_CTX_freep. */
#define DEFINE_POINTER_CLEANUP(type, func)                      \
        static inline void func##p(type *p) {                   \
                if (*p)                                         \
                        func(*p);                               \
        }
