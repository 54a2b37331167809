/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "vaultd.h"

/*
 * One handler per operation (docs/ipc.md). Each fills the reply; an error reply carries a short
 * message for humans (never anything secret) in its body. Every handshake outcome is logged here
 * in one line: device, result, epoch.
 */

static void reply_error(struct ipc_reply *rep, uint8_t status, uint8_t detail, uint8_t *out, size_t cap,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void reply_error(struct ipc_reply *rep, uint8_t status, uint8_t detail, uint8_t *out, size_t cap,
                        const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf((char *) out, cap < IPC_MESSAGE_MAX + 1 ? cap : IPC_MESSAGE_MAX + 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t) n > IPC_MESSAGE_MAX)
                n = IPC_MESSAGE_MAX;
        rep->status = status;
        rep->detail = detail;
        rep->body = out;
        rep->body_len = (size_t) n;
}

static void reply_ok(struct ipc_reply *rep, const uint8_t *body, size_t len) {
        rep->status = IPC_OK;
        rep->detail = 0;
        rep->body = body;
        rep->body_len = len;
}

/* Refusals a client can repeat at will are logged at most once per interval, with a count. */
#define REFUSAL_LOG_INTERVAL_USEC (10 * (uint64_t) 1000000)

/* The rate limit's clock: CLOCK_BOOTTIME, so that time spent suspended counts as time passed
 * (no authentication happens meanwhile) and the clock never goes back. */
static uint64_t now_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                return 0;       /* cannot happen; time standing still only makes the limit stricter */
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Operation names, for the OP= journal field. */
#define OP_HELLO        "hello"
#define OP_CONFIRM      "confirm"
#define OP_RESPOND      "respond"
#define OP_PROVISION    "provision"
#define OP_ABORT        "abort"

/* One line per handshake outcome: device, result, epoch. */
static void log_outcome(const struct conn *c, const char *op, const char *result) {
        const struct vaultd *d = c->d;

        log_peer(LOG_INFO, c, op, d->hdr.params.device_id, "handshake device=%s result=%s epoch=%" PRIu64,
                 d->hdr.params.device_id, result, d->hdr.params.epoch);
}

/* Operations that need a usable vault: refuse early, with the reason. */
static bool need_vault(struct vaultd *d, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        if (d->state == VAULT_READY)
                return true;
        if (d->state == VAULT_REFUSED)
                reply_error(rep, IPC_INTERNAL, 0, out, cap, "%s", d->refusal);
        else
                reply_error(rep, IPC_NOT_PROVISIONED, 0, out, cap, "no vault provisioned");
        return false;
}

static void op_status(struct conn *c, const struct ipc_request *req, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct ipc_status_info s;
        size_t len;

        if (req->body_len != 0) {
                reply_error(rep, IPC_BAD_REQUEST, 0, out, cap, "status takes no body");
                return;
        }
        vstate_status(c->d, &s);
        s.busy = session_busy(c->d);
        if (ipc_encode_status(&s, out, cap, &len) < 0) {
                reply_error(rep, IPC_INTERNAL, 0, out, cap, "cannot encode the status");
                return;
        }
        reply_ok(rep, out, len);
}

/*
 * Every authentication that succeeds writes the TPM's NV counter once, and NV memory endures a
 * limited number of writes (docs/vault-file.md §9), so HELLO takes a token from a bucket
 * (--max-auth-rate, --auth-burst) before the handshake starts: a refused HELLO touches
 * neither the TPM nor the server. Counting HELLO rather than the commit also counts handshakes
 * that end early; that errs on the side of the TPM. The bucket is one for all clients, because
 * the TPM is: a member of the allowed groups can use it up and make others wait, as it can
 * already hold the handshake busy; the refusal says how long.
 */
static bool auth_token(struct conn *c, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;
        uint64_t wait, secs;
        unsigned suppressed = 0;

        wait = tokenbucket_take(&d->auth_bucket, now_usec(), d->cfg->auth_interval_usec, d->cfg->auth_burst);
        if (wait == 0)
                return true;
        secs = wait / 1000000 + (wait % 1000000 != 0);
        reply_error(rep, IPC_RATE_LIMITED, 0, out, cap,
                    "vaultd allows %u at once, then %s: retry in %" PRIu64 " s",
                    d->cfg->auth_burst, d->cfg->auth_rate, secs);
        if (ratelimit_pass(&d->auth_refused_log, now_usec(), REFUSAL_LOG_INTERVAL_USEC, &suppressed))
                log_peer(LOG_NOTICE, c, OP_HELLO, d->hdr.params.device_id,
                         "handshake device=%s result=rate-limited epoch=%" PRIu64 " (uid=%u pid=%d; "
                         "next in %" PRIu64 " s; %u similar messages suppressed)", d->hdr.params.device_id,
                         d->hdr.params.epoch, (unsigned) c->uid, (int) c->pid, secs, suppressed);
        return false;
}

static void op_hello(struct conn *c, const struct ipc_request *req, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;
        size_t len;
        int r;

        if (req->body_len != 0) {
                reply_error(rep, IPC_BAD_REQUEST, 0, out, cap, "hello takes no body");
                return;
        }
        if (!need_vault(d, rep, out, cap))
                return;
        if (session_held_by(d, c)) {
                reply_error(rep, IPC_STATE, 0, out, cap, "a handshake is already in progress on this connection");
                return;
        }
        if (session_busy(d)) {
                reply_error(rep, IPC_BUSY, 0, out, cap, "another client is in a handshake");
                return;
        }
        if (d->hdr.params.epoch == UINT64_MAX) {
                reply_error(rep, IPC_EXHAUSTED, 0, out, cap, "epoch 2^64-1 cannot advance: enroll the device again");
                log_outcome(c, OP_HELLO, "exhausted");
                return;
        }
        if (!auth_token(c, rep, out, cap))
                return;
        hs_device_init(&d->sec->hs, &d->hdr.params, d->vault, &hs_random_os);
        r = hs_device_hello(&d->sec->hs, out, cap, &len);
        if (r >= 0)
                r = session_begin(d, c);
        if (r < 0) {
                hs_device_wipe(&d->sec->hs);
                reply_error(rep, r == -EOVERFLOW ? IPC_EXHAUSTED : IPC_INTERNAL, 0, out, cap, "cannot start a handshake");
                log_peer_errno(LOG_ERR, r, c, OP_HELLO, d->hdr.params.device_id, "Failed to start a handshake: %m");
                return;
        }
        reply_ok(rep, out, len);
}

/* Common checks of RESPOND and CONFIRM: this connection holds a handshake in the given state. */
static bool need_handshake(struct conn *c, enum hs_device_state want, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;

        if (!need_vault(d, rep, out, cap))
                return false;
        if (!session_held_by(d, c)) {
                reply_error(rep, IPC_STATE, 0, out, cap, "no handshake in progress on this connection");
                return false;
        }
        if (d->sec->hs.state != want) {
                reply_error(rep, IPC_STATE, 0, out, cap, "operation out of order");
                return false;
        }
        return true;
}

/* A failed step ends the handshake: reply, log one line, wipe. */
static void handshake_failed(struct conn *c, const char *op, int r, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;
        char result[32];

        if (r == -ECONNREFUSED) {
                uint8_t code = d->sec->hs.peer_error;

                reply_error(rep, IPC_SERVER_ERROR, code, out, cap, "the server answered ERROR %u", code);
                snprintf(result, sizeof result, "server-error-%u", code);
        } else if (r == -EACCES) {
                reply_error(rep, IPC_AUTH_FAILED, 0, out, cap, "the server failed to prove it holds the vault");
                snprintf(result, sizeof result, "server-not-proven");
        } else {
                reply_error(rep, IPC_PROTOCOL, 0, out, cap, "malformed message from the server");
                snprintf(result, sizeof result, "protocol-error");
        }
        log_outcome(c, op, result);
        session_end(d);
}

static void op_respond(struct conn *c, const struct ipc_request *req, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        size_t len;
        int r;

        if (!need_handshake(c, HS_DEVICE_HELLO_SENT, rep, out, cap))
                return;
        r = hs_device_respond(&c->d->sec->hs, req->body, req->body_len, out, cap, &len);
        if (r < 0) {
                handshake_failed(c, OP_RESPOND, r, rep, out, cap);
                return;
        }
        reply_ok(rep, out, len);
}

static void op_confirm(struct conn *c, const struct ipc_request *req, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;
        struct ipc_confirm_result res = { 0 };
        size_t len;
        int r;

        if (!need_handshake(c, HS_DEVICE_RESPONSE_SENT, rep, out, cap))
                return;
        r = hs_device_confirm(&d->sec->hs, req->body, req->body_len, d->next, res.m5, sizeof res.m5, &res.m5_len);
        if (r < 0) {
                handshake_failed(c, OP_CONFIRM, r, rep, out, cap);
                return;
        }

        /* M5 and the session key leave only once the new vault is durable: file, then counter. */
        r = vstate_commit(d);
        if (r < 0) {
                if (r == -ENOTRECOVERABLE && d->failure.cause == VSTATE_CAUSE_TPM) {
                        reply_error(rep, IPC_TPM, 0, out, cap, "%s", d->refusal);
                        log_peer_errno(LOG_ERR, r, c, OP_CONFIRM, d->hdr.params.device_id,
                                       "Failed to advance the TPM counter: %s", d->failure.reason);
                        log_outcome(c, OP_CONFIRM, "counter-failed");
                } else if (r == -ENOTRECOVERABLE) {
                        /* The file is renamed into place but its directory entry may not be durable. */
                        reply_error(rep, IPC_INTERNAL, 0, out, cap, "%s", d->refusal);
                        log_peer_errno(LOG_ERR, r, c, OP_CONFIRM, d->hdr.params.device_id,
                                       "Cannot make the new vault file durable: %s", d->refusal);
                        log_outcome(c, OP_CONFIRM, "write-failed");
                } else if (r == -EOVERFLOW) {
                        reply_error(rep, IPC_EXHAUSTED, 0, out, cap, "the epoch cannot advance: enroll the device again");
                        log_outcome(c, OP_CONFIRM, "exhausted");
                } else {
                        reply_error(rep, IPC_INTERNAL, 0, out, cap, "cannot write the new vault file");
                        log_peer_errno(LOG_ERR, r, c, OP_CONFIRM, d->hdr.params.device_id,
                                       "Failed to write the new vault file: %m");
                        log_outcome(c, OP_CONFIRM, "write-failed");
                }
                session_end(d);
                return;
        }
        /* The session key and both channel secrets (§11) leave together; the ephemeral scalar
         * and Z never do (hs_device wiped them at M2 and M4). */
        memcpy(res.session_key, hs_device_session_key(&d->sec->hs), sizeof res.session_key);
        res.epoch = d->hdr.params.epoch;
        r = hs_device_channel_secrets(&d->sec->hs, res.c2s, res.s2c);
        if (r >= 0)
                r = ipc_encode_confirm(&res, out, cap, &len);
        OPENSSL_cleanse(&res, sizeof res);
        session_end(d);
        log_outcome(c, OP_CONFIRM, "ok");
        if (r < 0) {
                reply_error(rep, IPC_INTERNAL, 0, out, cap, "cannot encode the result");
                return;
        }
        reply_ok(rep, out, len);
}

/* File systems whose reads may wait on another process or machine for ever (f_type values of
 * statfs(2); spelled out here because <linux/magic.h> lacks some on older systems). */
#define FS_MAGIC_FUSE   0x65735546      /* FUSE, fuseblk, virtiofs */
#define FS_MAGIC_NFS    0x6969
#define FS_MAGIC_SMB    0x517B
#define FS_MAGIC_CIFS   0xFF534D42
#define FS_MAGIC_SMB2   0xFE534D42
#define FS_MAGIC_9P     0x01021997
#define FS_MAGIC_CEPH   0x00C36400
#define FS_MAGIC_AFS    0x5346414F
#define FS_MAGIC_KAFS   0x6B414653

static bool fs_is_remote(const struct statfs *sf) {
        static const unsigned long remote[] = {
                FS_MAGIC_FUSE, FS_MAGIC_NFS, FS_MAGIC_SMB, FS_MAGIC_CIFS, FS_MAGIC_SMB2,
                FS_MAGIC_9P, FS_MAGIC_CEPH, FS_MAGIC_AFS, FS_MAGIC_KAFS,
        };
        /* f_type is signed on some ABIs: compare its low 32 bits. */
        unsigned long type = (unsigned long) sf->f_type & 0xFFFFFFFFul;

        for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
                if (type == remote[i])
                        return true;
        return false;
}

/*
 * Reads the whole bundle through the passed descriptor into secret memory. vaultd reads it in
 * its one event loop, so a read that never returns stops every client and the watchdog kills
 * vaultd: only regular files on local file systems are read. A FUSE server, or an NFS/SMB
 * server that stops answering, could hold pread() for as long as it likes (-EREMOTE).
 */
static int read_bundle(int fd, char *text, size_t cap, size_t *ret_len) {
        struct statfs sf;
        struct stat st;
        size_t done = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        if (fstatfs(fd, &sf) < 0)
                return -errno;
        if (fs_is_remote(&sf))
                return -EREMOTE;
        for (;;) {
                ssize_t n = pread(fd, text + done, cap - done, (off_t) done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t) n;
                if (done == cap)
                        return -EFBIG;
        }
        *ret_len = done;
        return 0;
}

/*
 * Provisioning replaces the vault, and with it the server that every later authentication
 * talks to and the key it hands out: whoever may provision owns the device's identity. So only
 * root, vaultd's own user and members of the admin groups may (peercred.c); members of the
 * allowed groups only use the vault. Checked first, before the bundle is looked at.
 */
static bool need_admin(struct conn *c, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;
        unsigned suppressed = 0;
        char groups[IPC_MESSAGE_MAX] = "";
        size_t used = 0;

        if (c->admin)
                return true;
        for (size_t i = 0; i < d->cfg->n_admin_groups && used < sizeof groups; i++) {
                int n = snprintf(groups + used, sizeof groups - used, "%s'%s'", i > 0 ? ", " : "",
                                 d->cfg->admin_groups[i]);

                if (n < 0)
                        break;
                used += (size_t) n;
        }
        reply_error(rep, IPC_FORBIDDEN, 0, out, cap,
                    "only root, vaultd's user and members of %s %s may provision",
                    d->cfg->n_admin_groups > 1 ? "groups" : "group", groups);
        if (ratelimit_pass(&d->provision_refused_log, now_usec(), REFUSAL_LOG_INTERVAL_USEC, &suppressed))
                log_peer(LOG_NOTICE, c, OP_PROVISION, NULL,
                         "refused provision from uid=%u pid=%d: not root, vaultd's user or in an admin group "
                           "(%u similar messages suppressed)", (unsigned) c->uid, (int) c->pid, suppressed);
        return false;
}

/* bundle_parse()'s refusal as a reply; nothing has been stored and the bundle is still there. */
static void bundle_refused(struct conn *c, struct ipc_reply *rep, uint8_t *out, size_t cap, int r, unsigned line,
                           const char *text, size_t len) {
        char why[128];

        if (bundle_explain(text, len, line, why, sizeof why) < 0)
                snprintf(why, sizeof why, "line %u", line);
        if (r == -EBADMSG) {
                if (line > 0)
                        reply_error(rep, IPC_BAD_BUNDLE, IPC_BUNDLE_DAMAGED, out, cap,
                                    "bundle is damaged: %s, in a bundle with a check: ask for a new bundle", why);
                else
                        reply_error(rep, IPC_BAD_BUNDLE, IPC_BUNDLE_DAMAGED, out, cap,
                                    "bundle is damaged: its check does not match its contents: ask for a new bundle");
                log_peer(LOG_WARNING, c, OP_PROVISION, NULL, "refused a damaged bundle (%s)",
                         line > 0 ? "an invalid line" : "check mismatch");
        } else if (r == -ENOMSG)
                reply_error(rep, IPC_BAD_BUNDLE, IPC_BUNDLE_UNCHECKED, out, cap,
                            "bundle has no check line (written before protocol 1.1): "
                            "it cannot be told from a damaged one; accept it explicitly to use it");
        else if (r == -ENOMEM)
                reply_error(rep, IPC_INTERNAL, 0, out, cap, "out of memory");
        else
                reply_error(rep, IPC_BAD_BUNDLE, IPC_BUNDLE_INVALID, out, cap,
                            "%s: fix it or ask for a new bundle", why);
}

static void op_provision(struct conn *c, const struct ipc_request *req, int fd, struct ipc_reply *rep,
                         uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;
        const size_t text_cap = BUNDLE_TEXT_MAX + 1;   /* one more: to notice a larger file */
        struct bundle b = { 0 };
        bool force = req->flags & IPC_FLAG_FORCE;
        unsigned parse_flags = (req->flags & IPC_FLAG_ACCEPT_UNCHECKED) ? BUNDLE_ACCEPT_UNCHECKED : 0;
        char *text = NULL;
        size_t len = 0;
        unsigned line = 0;
        int r;

        if (!need_admin(c, rep, out, cap))
                return;
        if (fd < 0 || req->body_len != 0) {
                reply_error(rep, IPC_BAD_REQUEST, 0, out, cap, "provision takes the bundle as a passed descriptor and no body");
                return;
        }
        if (session_busy(d)) {
                reply_error(rep, IPC_BUSY, 0, out, cap, "a handshake is in progress");
                return;
        }
        if (d->state != VAULT_NONE && !force) {
                if (d->state == VAULT_REFUSED)
                        reply_error(rep, IPC_EXISTS, 0, out, cap, "a refused vault file exists; use --force to replace it (%s)",
                                    d->refusal);
                else
                        reply_error(rep, IPC_EXISTS, 0, out, cap, "vault '%s' is provisioned; use --force to replace it",
                                    d->hdr.params.device_id);
                return;
        }

        r = secmem_alloc(text_cap, (void **) &text);
        if (r < 0) {
                reply_error(rep, IPC_INTERNAL, 0, out, cap, "out of secret memory");
                log_peer_errno(LOG_ERR, r, c, OP_PROVISION, NULL, "Failed to allocate secret memory for a bundle: %m");
                return;
        }
        r = read_bundle(fd, text, text_cap, &len);
        if (r < 0) {
                reply_error(rep, IPC_BAD_BUNDLE, 0, out, cap, "%s",
                            r == -EFBIG ? "bundle too large" :
                            r == -EBADF ? "bundle is not a regular file" :
                            r == -EREMOTE ? "bundle is on a network or FUSE file system: copy it to a local one" :
                            "cannot read the bundle");
                goto out;
        }
        r = bundle_parse(text, len, parse_flags, &b, &line);
        if (r < 0) {
                bundle_refused(c, rep, out, cap, r, line, text, len);
                goto out;
        }
        r = vstate_provision(d, &b, force);
        if (r == -EEXIST) {
                reply_error(rep, IPC_EXISTS, 0, out, cap, "a vault is already provisioned");
        } else if (r < 0 && d->failure.cause == VSTATE_CAUSE_KEY_FILE) {
                reply_error(rep, IPC_INTERNAL, 0, out, cap, "provisioning failed: key file '%s': %s",
                            d->cfg->key_file, d->failure.reason);
                log_peer_errno(LOG_ERR, r, c, OP_PROVISION, b.params.device_id,
                               "Failed to provision a vault for device %s: key file '%s': %s", b.params.device_id,
                               d->cfg->key_file, d->failure.reason);
        } else if (r < 0) {
                const char *why = d->failure.cause == VSTATE_CAUSE_TPM ? d->failure.reason : "";

                reply_error(rep, why[0] ? IPC_TPM : IPC_INTERNAL, 0, out, cap, "provisioning failed: %s",
                            why[0] ? why : strerror(-r));
                if (why[0])
                        log_peer_errno(LOG_ERR, r, c, OP_PROVISION, b.params.device_id,
                                       "Failed to provision a vault for device %s: %s", b.params.device_id, why);
                else
                        log_peer_errno(LOG_ERR, r, c, OP_PROVISION, b.params.device_id,
                                       "Failed to provision a vault for device %s: %m", b.params.device_id);
        } else {
                if (r == 1)
                        log_peer(LOG_WARNING, c, OP_PROVISION, d->hdr.params.device_id,
                                 "Could not remove the replaced vault's NV counter: %s", d->failure.reason);
                log_peer(LOG_NOTICE, c, OP_PROVISION, d->hdr.params.device_id,
                         "provisioned vault device=%s epoch=%" PRIu64 " nv=0x%08" PRIx32 " counter=%" PRIu64 "%s%s",
                         d->hdr.params.device_id, d->hdr.params.epoch, d->hdr.nv_index, d->hdr.counter,
                         force ? " (forced)" : "", b.checked ? "" : " (bundle without check, accepted)");
                reply_ok(rep, NULL, 0);
        }
out:
        bundle_free(&b);
        secmem_free(text, text_cap);
}

static void op_abort(struct conn *c, const struct ipc_request *req, struct ipc_reply *rep, uint8_t *out, size_t cap) {
        struct vaultd *d = c->d;

        if (session_held_by(d, c)) {
                log_outcome(c, OP_ABORT, "aborted");
                session_end(d);
        }
        reply_ok(rep, NULL, 0);
}

void ops_dispatch(struct conn *c, const struct ipc_request *req, int passed_fd,
                  struct ipc_reply *rep, uint8_t *out, size_t cap) {
        rep->op = req->op;
        switch (req->op) {
        case IPC_OP_STATUS:
                op_status(c, req, rep, out, cap);
                break;
        case IPC_OP_HELLO:
                op_hello(c, req, rep, out, cap);
                break;
        case IPC_OP_RESPOND:
                op_respond(c, req, rep, out, cap);
                break;
        case IPC_OP_CONFIRM:
                op_confirm(c, req, rep, out, cap);
                break;
        case IPC_OP_PROVISION:
                op_provision(c, req, passed_fd, rep, out, cap);
                break;
        case IPC_OP_ABORT:
                op_abort(c, req, rep, out, cap);
                break;
        default:
                reply_error(rep, IPC_BAD_REQUEST, 0, out, cap, "unknown operation");
                break;
        }
}
