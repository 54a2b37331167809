/* SPDX-License-Identifier: MIT */
#pragma once

/* A blocking TCP connection to "HOST:PORT" or "[V6]:PORT" (numeric) from the local address
 * `source` (IPv4 or IPv6, e.g. 127.1.0.2 or 2001:db8:1::2), as an attacker elsewhere would
 * connect. 0 or -errno. */
int sv_connect_from(const char *server, const char *source, int *ret_fd);
