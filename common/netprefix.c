/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "netprefix.h"

int netprefix_from_sockaddr(const struct sockaddr *sa, size_t len, struct netprefix *ret) {
        static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
        struct netprefix p = { { 0 } };

        if (!sa || len < sizeof sa->sa_family)
                return -EINVAL;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

                if (len < sizeof *in)
                        return -EINVAL;
                p.key[0] = 4;
                memcpy(p.key + 1, &in->sin_addr, NETPREFIX_V4_BITS / 8);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                const uint8_t *a = in6->sin6_addr.s6_addr;

                if (len < sizeof *in6)
                        return -EINVAL;
                if (memcmp(a, v4mapped, sizeof v4mapped) == 0) {
                        p.key[0] = 4;
                        memcpy(p.key + 1, a + sizeof v4mapped, NETPREFIX_V4_BITS / 8);
                } else {
                        p.key[0] = 6;
                        memcpy(p.key + 1, a, NETPREFIX_V6_BITS / 8);
                }
        } else
                return -EAFNOSUPPORT;
        *ret = p;
        return 0;
}

int netprefix_format(const struct netprefix *p, char *buf, size_t cap) {
        char host[INET6_ADDRSTRLEN];
        uint8_t addr[16] = { 0 };
        int n;

        if (p->key[0] == 4) {
                memcpy(addr, p->key + 1, NETPREFIX_V4_BITS / 8);
                if (!inet_ntop(AF_INET, addr, host, sizeof host))
                        return -EINVAL;
                n = snprintf(buf, cap, "%s/%d", host, NETPREFIX_V4_BITS);
        } else if (p->key[0] == 6) {
                memcpy(addr, p->key + 1, NETPREFIX_V6_BITS / 8);
                if (!inet_ntop(AF_INET6, addr, host, sizeof host))
                        return -EINVAL;
                n = snprintf(buf, cap, "%s/%d", host, NETPREFIX_V6_BITS);
        } else
                return -EINVAL;
        return n < 0 || (size_t) n >= cap ? -ENOSPC : 0;
}
