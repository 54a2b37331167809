/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "devicectl.h"
#include "log.h"
#include "text.h"
#include "unix-connect.h"
#include "wire.h"

/* vaultd answers every request promptly except those that reach the TPM; a minute bounds them. */
#define VAULTD_REPLY_TIMEOUT_S  60
/* A vaultd that stalls without reading (full backlog, full socket buffer) must not hang us either. */
#define VAULTD_SEND_TIMEOUT_S   60

/*
 * Both directions are bounded (SO_SNDTIMEO also bounds connect() on a Unix socket whose
 * listener's backlog is full). Nothing is sent before the socket's owner is checked: root,
 * the account vaultd runs as, or ourselves; anyone else could have put a socket at the path
 * to collect M2..M4 and hand back a session key of its choosing, or to receive the bundle
 * that provision passes.
 */
int vaultd_connect(struct vaultd_conn *c, const char *path) {
        uid_t peer = (uid_t) -1;
        int fd, r;

        /* One time-out for both: the longer, the TPM's (a stalled send fails no sooner). */
        r = unix_connect_trusted(path, SOCK_SEQPACKET, VAULTD_REPLY_TIMEOUT_S > VAULTD_SEND_TIMEOUT_S ?
                                 VAULTD_REPLY_TIMEOUT_S : VAULTD_SEND_TIMEOUT_S, VAULTD_USER, &fd, &peer);
        c->peer_uid = peer;
        if (r < 0)
                return r;
        *c = (struct vaultd_conn) { .fd = fd, .path = path, .peer_uid = peer };
        return 0;
}

void vaultd_connect_failed(const struct vaultd_conn *c, int r, const char *path) {
        if (r == -EPERM)
                log_error("refusing vaultd at '%s': the socket belongs to uid %u, not to root or '%s' "
                          "(check --socket / $VAULTD_SOCKET)", path, (unsigned) c->peer_uid, VAULTD_USER);
        else
                log_error_errno(r, "cannot reach vaultd at '%s': %m", path);
}

void vaultd_disconnect(struct vaultd_conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

int vaultd_call(struct vaultd_conn *c, uint8_t op, uint16_t flags, const void *body, size_t body_len,
                int fd_to_pass, uint8_t *buf, size_t cap, struct ipc_reply *ret) {
        struct ipc_request req = { .op = op, .flags = flags, .body = body, .body_len = body_len };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = { 0 };
        struct iovec iov;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        size_t len;
        ssize_t n;
        int r;

        r = ipc_encode_request(&req, buf, cap, &len);
        if (r < 0)
                return r;
        iov = (struct iovec) { .iov_base = buf, .iov_len = len };
        if (fd_to_pass >= 0) {
                struct cmsghdr *cm;

                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof control.buf;
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd_to_pass, sizeof(int));
        }
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0)
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if ((size_t) n != len)
                return -EIO;

        n = recv(c->fd, buf, cap, MSG_TRUNC);
        if (n < 0)
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0)
                return -ECONNRESET;
        if ((size_t) n > cap)
                return -EMSGSIZE;
        r = ipc_decode_reply(buf, (size_t) n, ret);
        if (r < 0)
                return r;
        if (ret->op != op)
                return -EBADMSG;
        return 0;
}

/*
 * The server's ERROR carries one code and, by design, not which check failed (PROTOCOL.md
 * §5): an unknown device, a revoked one and a vault out of step all get "authentication
 * failed" (the server answers them with a decoy). So the message says what the device can
 * know, the next step for each case, and that the server's log tells which it was.
 */
static void server_refused(const char *what, uint8_t code) {
        switch (code) {
        case SV_ERR_AUTH:
                log_error("%s: the server refused: this device is unknown to it, revoked, or its vault is out of "
                          "step; if it was re-enrolled or revoked, ask the operator (the server's log names the "
                          "reason); otherwise try again later", what);
                break;
        case SV_ERR_BUSY:
                log_error("%s: the server refused: it is busy (at capacity or backing off this device); "
                          "try again later", what);
                break;
        case SV_ERR_VERSION:
                log_error("%s: the server refused: it does not speak this protocol version; "
                          "update devicectl or the server", what);
                break;
        case SV_ERR_PROTOCOL:
                log_error("%s: the server refused: it found a protocol error in what this device sent; "
                          "try again, and if it persists check that both sides run the same release", what);
                break;
        default:
                log_error("%s: the server refused with unknown error code %u", what, (unsigned) code);
                break;
        }
}

/*
 * vaultd's message is printed after the status text unless it adds nothing: for several
 * statuses vaultd's message is the status text itself, which would read twice.
 */
int vaultd_reply_error(const char *what, const struct ipc_reply *rep) {
        int len = (int) (rep->body_len > IPC_MESSAGE_MAX ? IPC_MESSAGE_MAX : rep->body_len);
        const char *text = ipc_status_to_string(rep->status);
        bool printable = text_is_printable(rep->body, (size_t) len, TEXT_SPACE);

        if (printable && strlen(text) == (size_t) len && strncasecmp(text, (const char *) rep->body, (size_t) len) == 0)
                len = 0;
        if (rep->status == IPC_SERVER_ERROR)
                server_refused(what, rep->detail);
        else if (len > 0 && printable)
                log_error("%s: %s: %.*s", what, text, len, (const char *) rep->body);
        else
                log_error("%s: %s", what, text);

        switch (rep->status) {
        case IPC_BUSY: return EXIT_VAULT_BUSY;
        case IPC_NOT_PROVISIONED: return EXIT_NOT_PROVISIONED;
        case IPC_AUTH_FAILED: return EXIT_SERVER_NOT_PROVEN;
        case IPC_SERVER_ERROR: return EXIT_SERVER_REFUSED;
        case IPC_PROTOCOL: return EXIT_PROTOCOL;
        case IPC_DENIED: return EXIT_VAULTD_UNAVAILABLE;
        case IPC_FORBIDDEN: return EXIT_NOT_PERMITTED;
        case IPC_RATE_LIMITED: return EXIT_RATE_LIMITED;
        default: return EXIT_FAILURE_OTHER;
        }
}
