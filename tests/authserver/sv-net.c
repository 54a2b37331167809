/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "sv-net.h"
#include "text.h"

static int parse_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len) {
        struct sockaddr_in *in = (struct sockaddr_in *) ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;

        memset(ss, 0, sizeof *ss);
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                *len = sizeof *in;
                return 0;
        }
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                *len = sizeof *in6;
                return 0;
        }
        return -EINVAL;
}

int sv_connect_from(const char *server, const char *source, int *ret_fd) {
        struct sockaddr_storage to, from;
        socklen_t to_len, from_len;
        char host[64];
        const char *port;
        unsigned long p;
        int fd;

        if (text_split_host_port(server, host, sizeof host, &port) < 0 || text_parse_unsigned(port, 1, 65535, &p) < 0 ||
            parse_addr(host, (unsigned) p, &to, &to_len) < 0 || parse_addr(source, 0, &from, &from_len) < 0 ||
            to.ss_family != from.ss_family)
                return -EINVAL;
        fd = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &from, from_len) < 0 || connect(fd, (struct sockaddr *) &to, to_len) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}
