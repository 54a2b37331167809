/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/types.h>

/*
 * Connects to the Unix socket at path (type SOCK_STREAM or SOCK_SEQPACKET, close-on-exec),
 * with send and receive time-outs of timeout_s, and checks who listens there before a byte
 * is sent: the peer's uid (SO_PEERCRED) must be root, the caller's own, or that of the user
 * named owner (the daemon's account; ignored if no such user exists). A socket held by
 * anyone else is closed and -EPERM returned, with its uid in *ret_peer_uid: whoever can put
 * a socket at that path (a writable directory, a mistyped $VAULTD_SOCKET) must not receive
 * requests or answer them. The path itself is not trusted: the kernel's record of the peer
 * is, whatever symlink or bind mount leads to it.
 */
int unix_connect_trusted(const char *path, int type, int timeout_s, const char *owner, int *ret_fd,
                         uid_t *ret_peer_uid);
