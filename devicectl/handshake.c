/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "devicectl.h"
#include "log.h"
#include "text.h"
#include "wire.h"

/*
 * The handshake of devicectl (authenticate, send): each message that needs the vault comes
 * from vaultd, each answer from the server; the connection stays open after M5 for the data
 * channel. Failures are logged here and returned as devicectl's exit codes.
 */

/* M5 comes from vaultd's confirm record, of fixed size, and is sent from s->frame. */
_Static_assert(SV_COMMIT_FRAME_LEN <= SV_FRAME_MAX, "M5 must fit a frame buffer");

struct auth_session {
        struct vaultd_conn vaultd;
        int tcp;
        const char *server;
        unsigned timeout_s;
        int64_t deadline;
        uint8_t frame[SV_FRAME_MAX];
        size_t frame_len;
        uint8_t packet[IPC_PACKET_MAX];
};

/* One step through vaultd: the server's frame in, our next frame out (into s->frame). */
static int vaultd_step(struct auth_session *s, uint8_t op, const char *what, struct ipc_reply *rep) {
        int r;

        r = vaultd_call(&s->vaultd, op, 0, s->frame, s->frame_len, -1, s->packet, sizeof s->packet, rep);
        if (r < 0) {
                log_error_errno(r, "vaultd failed during %s: %m", what);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (rep->status != IPC_OK)
                return vaultd_reply_error(what, rep);
        return EXIT_OK;
}

/*
 * vaultd's reply becomes the next frame we send the server. vaultd is trusted to hold the
 * vault, not to be free of bugs: a reply body may be up to IPC_PACKET_MAX - IPC_HEADER_LEN
 * bytes, more than a frame, so it is bounded by s->frame and must be one whole frame of the
 * type (and, where known, the exact size) this step produces, before it is copied.
 */
static int take_vaultd_frame(struct auth_session *s, const struct ipc_reply *rep, uint8_t type, size_t body_len,
                             const char *what) {
        if (rep->body_len > sizeof s->frame || wire_frame_check(rep->body, rep->body_len, type, body_len) < 0) {
                log_error("vaultd sent a malformed %s (%zu bytes)", what, rep->body_len);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        memcpy(s->frame, rep->body, rep->body_len);
        s->frame_len = rep->body_len;
        return EXIT_OK;
}

/*
 * What answered, when the first bytes of its answer (SV_HEADER_LEN of them) are not a frame:
 * an HTTP server says "HTTP/1.x ...", a TLS server sends a record of type handshake (0x16)
 * or alert (0x15), version 3.x. NULL when they look like neither.
 */
static const char *foreign_protocol(const uint8_t b[static SV_HEADER_LEN]) {
        if (memcmp(b, "HTTP", 4) == 0)
                return "an HTTP server";
        if ((b[0] == 0x16 || b[0] == 0x15) && b[1] == 0x03)
                return "a TLS server";
        return NULL;
}

/*
 * Sends s->frame; with reply_type, reads the reply of that type and body size into it.
 * A transport failure (connection lost, --timeout) is "server unreachable"; a frame that
 * is malformed or not the one expected here is a protocol error.
 */
static int server_exchange(struct auth_session *s, uint8_t reply_type, size_t reply_len) {
        const char *foreign;
        int r;

        r = net_send_frame(s->tcp, s->frame, s->frame_len, s->deadline);
        if (r >= 0 && reply_type)
                r = net_recv_frame(s->tcp, s->frame, sizeof s->frame, &s->frame_len, s->deadline,
                                   reply_type, reply_len);
        switch (r) {
        case 0:
                return EXIT_OK;
        case -EPROTONOSUPPORT:
                /* The first byte is not our version: name a server of another kind by its
                 * first bytes, which net_recv_frame() left in s->frame. */
                foreign = reply_type ? foreign_protocol(s->frame) : NULL;
                if (foreign)
                        log_error("server '%s' is %s, not authserver: check the host and port (--server, or "
                                  "the bundle's server)", s->server, foreign);
                else
                        log_error("server '%s' speaks another protocol version (first byte 0x%02x): check that "
                                  "it is authserver and runs a release of the same protocol", s->server,
                                  reply_type ? s->frame[0] : 0);
                return EXIT_PROTOCOL;
        case -EMSGSIZE:
                log_error("server '%s' sent a frame larger than the protocol allows", s->server);
                return EXIT_PROTOCOL;
        case -EPROTO:
                log_error("server '%s' sent an unexpected message", s->server);
                return EXIT_PROTOCOL;
        case -EBADMSG:
                log_error("server '%s' sent a message of the wrong length", s->server);
                return EXIT_PROTOCOL;
        case -ETIMEDOUT:
                log_error("server '%s' did not answer within %u seconds (--timeout)",
                        s->server, s->timeout_s);
                return EXIT_SERVER_UNREACHABLE;
        case -ECONNRESET:
        case -EPIPE:
                log_error("server '%s' closed the connection", s->server);
                return EXIT_SERVER_UNREACHABLE;
        default:
                log_error_errno(r, "exchange with server '%s' failed: %m", s->server);
                return EXIT_SERVER_UNREACHABLE;
        }
}

/*
 * STATUS reports a vault that vaultd refused (rolled back, foreign, tampered) as not
 * provisioned, without the reason; HELLO, which needs a usable vault, is refused with it
 * (docs/ipc.md §3). So ask for HELLO to tell the two apart and to show vaultd's reason.
 */
static int explain_no_vault(struct auth_session *s) {
        struct ipc_reply rep;
        int r;

        r = vaultd_call(&s->vaultd, IPC_OP_HELLO, 0, NULL, 0, -1, s->packet, sizeof s->packet, &rep);
        if (r < 0) {
                log_error_errno(r, "vaultd failed during hello: %m");
                return EXIT_VAULTD_UNAVAILABLE;
        }
        switch (rep.status) {
        case IPC_NOT_PROVISIONED:
                log_error("no vault provisioned: run 'devicectl provision BUNDLE' first");
                return EXIT_NOT_PROVISIONED;
        case IPC_INTERNAL:
                if (text_is_printable(rep.body, rep.body_len, TEXT_SPACE) && rep.body_len > 0 &&
                    rep.body_len <= IPC_MESSAGE_MAX)
                        log_error("no usable vault: vaultd says: %.*s (see 'journalctl -u vaultd')",
                                (int) rep.body_len, (const char *) rep.body);
                else
                        log_error("no usable vault: vaultd refused it (see 'journalctl -u vaultd')");
                return EXIT_NOT_PROVISIONED;
        case IPC_OK:
                /* Provisioned since our STATUS. Closing the connection aborts the handshake
                 * this HELLO began; starting over is simpler than patching up the status. */
                log_error("a vault was provisioned meanwhile: run 'devicectl authenticate' again");
                return EXIT_FAILURE_OTHER;
        default:
                return vaultd_reply_error("hello", &rep);
        }
}

void auth_result_done(struct auth_result *a) {
        OPENSSL_cleanse(&a->res, sizeof a->res);
        if (a->tcp >= 0)
                close(a->tcp);
        a->tcp = -1;
}

int auth_handshake(struct devicectl *ctl, const char *server, unsigned timeout_s, struct auth_result *ret) {
        struct auth_session s = { .tcp = -1, .vaultd.fd = -1 };
        struct ipc_status_info info;
        struct ipc_confirm_result res = { 0 };
        struct ipc_reply rep;
        struct addrinfo *addrs = NULL;
        const char *lookup_error = NULL;
        int r, ret_code;

        r = vaultd_connect(&s.vaultd, ctl->socket_path);
        if (r < 0) {
                vaultd_connect_failed(&s.vaultd, r, ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        s.frame_len = 0;
        ret_code = vaultd_step(&s, IPC_OP_STATUS, "status", &rep);
        if (ret_code != EXIT_OK)
                goto out;
        if (ipc_decode_status(rep.body, rep.body_len, &info) < 0) {
                log_error("vaultd at '%s' sent a malformed status", ctl->socket_path);
                ret_code = EXIT_VAULTD_UNAVAILABLE;
                goto out;
        }
        if (!info.provisioned) {
                ret_code = explain_no_vault(&s);
                goto out;
        }
        s.server = server ? server : info.server;
        s.timeout_s = timeout_s;
        if (!s.server[0]) {
                log_error("the bundle names no server: pass --server HOST:PORT");
                ret_code = EXIT_USAGE;
                goto out;
        }

        /* M1 from vaultd, then one round trip to the server per vaultd step. */
        ret_code = vaultd_step(&s, IPC_OP_HELLO, "hello", &rep);
        if (ret_code == EXIT_OK)
                ret_code = take_vaultd_frame(&s, &rep, SV_MSG_HELLO, 0, "M1");
        if (ret_code != EXIT_OK)
                goto out;

        /* The name lookup cannot be bounded; --timeout starts after it, for connecting and
         * the whole exchange. Milliseconds in 64 bits: --timeout goes up to a year. */
        r = net_resolve(s.server, &addrs, &lookup_error);
        if (r < 0) {
                if (lookup_error)
                        log_error("cannot resolve server '%s': %s", s.server, lookup_error);
                else
                        log_error_errno(r, "invalid server '%s': %m", s.server);
                ret_code = r == -EHOSTUNREACH ? EXIT_SERVER_UNREACHABLE : EXIT_USAGE;
                goto out;
        }
        s.deadline = now_ms() + (int64_t) timeout_s * 1000;
        r = net_connect_resolved(addrs, s.deadline, &s.tcp);
        freeaddrinfo(addrs);
        if (r < 0) {
                if (r == -ETIMEDOUT)
                        log_error("cannot connect to server '%s': no answer within %u seconds (--timeout)",
                                s.server, timeout_s);
                else
                        log_error_errno(r, "cannot connect to server '%s': %m", s.server);
                ret_code = EXIT_SERVER_UNREACHABLE;
                goto out;
        }
        /* info.params passed ipc_decode_status()'s vault_params_validate(): every length is
         * known, the key share's (kex) included. */
        ret_code = server_exchange(&s, SV_MSG_CHALLENGE, vault_body_len(SV_MSG_CHALLENGE, &info.params));
        if (ret_code == EXIT_OK)
                ret_code = vaultd_step(&s, IPC_OP_RESPOND, "response", &rep);
        if (ret_code == EXIT_OK)
                ret_code = take_vaultd_frame(&s, &rep, SV_MSG_RESPONSE, vault_body_len(SV_MSG_RESPONSE, &info.params), "M3");
        if (ret_code != EXIT_OK)
                goto out;
        ret_code = server_exchange(&s, SV_MSG_CONFIRM, vault_body_len(SV_MSG_CONFIRM, &info.params));
        if (ret_code == EXIT_OK)
                ret_code = vaultd_step(&s, IPC_OP_CONFIRM, "confirmation", &rep);
        if (ret_code != EXIT_OK)
                goto out;
        if (ipc_decode_confirm(rep.body, rep.body_len, &res) < 0) {
                log_error("vaultd at '%s' sent a malformed confirmation", ctl->socket_path);
                ret_code = EXIT_VAULTD_UNAVAILABLE;
                goto out;
        }

        /* vaultd has made the new vault durable: from here on this side has succeeded, and a lost
         * M5 is recovered by the server at the next handshake (protocol §6). ipc_decode_confirm()
         * checked m5_len == SV_COMMIT_FRAME_LEN, which fits s.frame. */
        memcpy(s.frame, res.m5, res.m5_len);
        s.frame_len = res.m5_len;
        if (server_exchange(&s, 0, 0) != EXIT_OK)
                log_warning("warning: M5 may not have reached the server; it recovers at the next handshake");

        /* s.server may point into the local info: point it into the copy the caller keeps. */
        *ret = (struct auth_result) { .tcp = s.tcp, .info = info, .res = res, .server = server };
        if (!server)
                ret->server = ret->info.server;
        s.tcp = -1;
        ret_code = EXIT_OK;
out:
        OPENSSL_cleanse(&res, sizeof res);
        OPENSSL_cleanse(s.packet, sizeof s.packet);
        if (s.tcp >= 0)
                close(s.tcp);
        vaultd_disconnect(&s.vaultd);
        return ret_code;
}
