/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * The network a peer address belongs to, for limits that must not be dodged by moving to
 * the next address: an IPv4 /24 or an IPv6 /48. One host commonly owns a whole IPv6 /64 and
 * a site a /48, and an attacker who rents a few IPv4 addresses usually gets them from one
 * /24, so counting per address (or per /64) lets one party rotate past any per-peer limit.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 network. Pure: no I/O.
 */
#define NETPREFIX_V4_BITS       24
#define NETPREFIX_V6_BITS       48
/* family byte, then the prefix bytes (3 for IPv4, 6 for IPv6), zero-padded */
#define NETPREFIX_KEY_LEN       7
/* "ffff:ffff:ffff::/48" at most, with its NUL; IPv4 "255.255.255.0/24" is shorter */
#define NETPREFIX_TEXT_MAX      48

struct netprefix {
        uint8_t key[NETPREFIX_KEY_LEN];         /* key[0]: 4, 6, or 0 for another family */
};

/* The prefix of a peer address; -EAFNOSUPPORT (and nothing written) for a family other than
 * AF_INET and AF_INET6, -EINVAL if len is too short for its family. */
int netprefix_from_sockaddr(const struct sockaddr *sa, size_t len, struct netprefix *ret);
/* "192.0.2.0/24", "2001:db8:1::/48"; -ENOSPC if cap is too small, -EINVAL for a bad key. */
int netprefix_format(const struct netprefix *p, char *buf, size_t cap);
