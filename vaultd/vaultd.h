/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * vaultd's private header. vaultd is the only process that ever holds the vault: it unseals the
 * vault file's key-encryption key with the TPM at start, keeps the KEK and the vault in secret
 * memory, and serves devicectl over a SOCK_SEQPACKET socket (docs/ipc.md). Layers, top down;
 * calls go down this list, never up:
 *
 *   main.c        start, signals, the event loop, systemd notification (it sends STATUS=
 *                 whenever vstate reports a change, see d->status_gen)
 *   config.c      command line and /etc/secure-vault/vaultd.conf
 *   ipc-server.c  listening socket, connections, packets, SCM_RIGHTS
 *   ops.c         one handler per IPC operation
 *   session.c     the one handshake at a time: which connection holds it, and its time-out
 *   vstate.c      the vault's life cycle: load + crash-window recovery, commit, provision; it
 *                 reports why it failed (d->failure) and that the state changed (d->status_gen)
 *   peercred.c    who may talk to vaultd (SO_PEERCRED, SO_PEERGROUPS)
 *   keyfile.c     the key file the sealed KEK's auth value is derived from
 *   storage.c     atomic file I/O in the state directory
 *   tpm.c         the TPM (vaultd/libvaulttpm.a); common/ (libsvcommon.a), and the logger,
 *                 the fault hook and the secret memory of libsvio.a (common/log.h,
 *                 common/fault.h, common/secmem.h: memfd_secret(2) or mlock, non-dumpable)
 *
 * Functions return >= 0 or -errno and do not log, except where an event starts: main.c,
 * ipc-server.c and ops.c (a request), and session.c's time-out; they log each outcome once.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "handshake.h"
#include "ipc.h"
#include "list.h"
#include "log.h"
#include "ratelimit.h"
#include "secmem.h"
#include "vaultfile.h"

struct tpm_ctx;

#define VAULTD_DEFAULT_TCTI             "device:/dev/tpmrm0"
#define VAULTD_DEFAULT_STATE_DIR        "/var/lib/vaultd"
#define VAULTD_DEFAULT_CONFIG           "/etc/secure-vault/vaultd.conf"
#define VAULTD_DEFAULT_GROUP            "vault"
/* Members may provision (replace the vault); see peercred.c. */
#define VAULTD_DEFAULT_ADMIN_GROUP      "vault-admin"
/*
 * Authentications are metered by a token bucket, because every one that succeeds writes the
 * TPM's NV counter once and NV memory wears out (docs/vault-file.md §9): 10 at once, then one
 * per 10 minutes. Flat out that is 52 596 writes a year, about 2 years of an NV part rated for
 * 100 000 writes and 9.5 of one rated for 500 000; a key an hour is a sixth of that.
 */
#define VAULTD_DEFAULT_AUTH_RATE        "6/h"
#define VAULTD_DEFAULT_AUTH_BURST       10
#define VAULTD_AUTH_BURST_MAX           100000
#define VAULTD_VAULT_FILE               "vault"
/* The key file (keyfile.c) when none is configured and systemd passes no credential
 * "vaultd.key": outside the state directory (vaultd.service: StateDirectory=vaultd vaultd-key). */
#define VAULTD_DEFAULT_KEY_FILE         "/var/lib/vaultd-key/vaultd.key"
#define VAULTD_KEY_CREDENTIAL           "vaultd.key"
/* vaultd's one anti-rollback NV counter (docs/vault-file.md §5): the first of its range. */
#define VAULTD_DEFAULT_NV_INDEX         0x01500000u
/* A handshake whose owner goes quiet is dropped after this long, so that a stuck client cannot
 * hold the vault busy forever (the server drops its side after 10 s anyway, protocol §7). */
#define VAULTD_HANDSHAKE_TIMEOUT_S      30
/* Connections served at once; more are closed right after accept. */
#define VAULTD_CONN_MAX                 64
/* A connection that sends no request for this long is closed, so that quiet clients cannot hold
 * the VAULTD_CONN_MAX slots; a handshake's owner is bounded by VAULTD_HANDSHAKE_TIMEOUT_S. */
#define VAULTD_IDLE_TIMEOUT_S           30
/* A refused peer gets one reply (IPC_DENIED to its first request); it must ask within this long. */
#define VAULTD_DENIED_TIMEOUT_S         5
/* Allowed (or admin) groups given on the command line and in the config file together. */
#define VAULTD_GROUPS_MAX               32
/* Exit codes: 0 ok, 1 failure, 2 usage (also: SV_FAULT names an unknown point, or is set in a
 * build without fault injection); 99 (FAULT_CRASH_EXIT) is a test-only crash point's. */
#define VAULTD_EXIT_USAGE               2

/* The test-only fault points (common/fault.h: SV_FAULT=POINT[,POINT]; docs/vault-file.md §7).
 * Crash points exit 99 at once: */
#define VAULTD_FAULT_BEFORE_FILE        "before-file"   /* commit: M4 verified, file not written */
#define VAULTD_FAULT_AFTER_FILE         "after-file"    /* commit: file durable, counter not advanced */
#define VAULTD_FAULT_AFTER_COUNTER      "after-counter" /* commit: counter advanced, vault not swapped */
#define VAULTD_FAULT_PROVISION_AFTER_FILE "provision-after-file" /* provision on the counter: file, no bump */
/* Failure points make an operation fail as the system might: */
#define VAULTD_FAULT_DIR_FSYNC          "dir-fsync"     /* every fsync() of the state directory: EIO */
#define VAULTD_FAULT_NV_UNDEFINE        "nv-undefine"   /* every removal of an NV counter: EIO */

/* ---- config.c ---- */
struct vaultd_config {
        char *tcti;
        char *state_dir;
        char *socket_path;              /* NULL: socket activation only */
        char *socket_group;
        char *allow_groups[VAULTD_GROUPS_MAX];
        size_t n_allow_groups;
        uint32_t pcr_mask;
        char *admin_groups[VAULTD_GROUPS_MAX];
        size_t n_admin_groups;
        char *auth_rate;                /* as given, for messages: "6/h", "0" */
        uint64_t auth_interval_usec;    /* one authentication per this long; 0: no limit */
        unsigned auth_burst;
        uint32_t nv_index;              /* the long-lived anti-rollback counter */
        char *key_file;                 /* NULL: key-file = none (empty KEK auth value) */
        int log_level;                  /* LOG_ERR..LOG_DEBUG: the most verbose level logged */
};
/* 0: run; 1: --help/--version done; -EINVAL: usage error (already reported on stderr: the one
 * place outside main.c that prints, because only it knows the offending value). */
int config_load(int argc, char *argv[], struct vaultd_config *ret);
void config_free(struct vaultd_config *c);
int config_parse_pcrs(const char *s, uint32_t *ret);
int config_parse_nv_index(const char *s, uint32_t *ret);

/* ---- tcti-hint.c ---- */
/* Writes into buf what to check when the TPM at `tcti` cannot be opened (logged by main.c). */
void tcti_open_hint(const char *tcti, char *buf, size_t cap);

/* ---- storage.c ---- */
/* Opens (creating if needed, mode 0700) the state directory. */
int storage_open_dir(const char *path, int *ret_fd);
/* Reads the vault file (at most VAULTFILE_MAX bytes). -ENOENT if there is none. */
int storage_read(int dirfd, uint8_t **ret, size_t *ret_len);
/* Replaces the vault file atomically and durably: temp file (O_EXCL, 0600) in the same
 * directory, write, fsync, rename, fsync of the directory. 0: the new file is durable. Other
 * -errno: nothing changed (the old file is in place). -ENOTRECOVERABLE: the new file HAS replaced
 * the old one, but the directory could not be synced, so the rename may not survive a power
 * loss: after a restart either file may be found. (Test-only: SV_FAULT=dir-fsync makes
 * every directory sync fail, docs/vault-file.md §7.) */
int storage_write(int dirfd, const uint8_t *data, size_t len);

/* ---- keyfile.c ---- */
#define VAULTD_KEK_AUTH_LEN 32
/* The sealed KEK's auth value from the key file at path; if create and there is none, a new key
 * file is made first (mode 0600, durable). -EPERM: accessible to group or others; -EBADMSG: not a
 * regular file of 32..4096 bytes; -ENOENT; other -errno. */
int keyfile_auth(const char *path, bool create, uint8_t auth[VAULTD_KEK_AUTH_LEN]);
const char *keyfile_strerror(int r);

/* ---- vstate.c ---- */
/* Everything secret vaultd holds, in one secret-memory mapping. */
struct vaultd_secrets {
        uint8_t kek[VAULTFILE_KEK_LEN];
        uint8_t counter_auth[VAULTFILE_AUTH_LEN];
        uint8_t new_kek[VAULTFILE_KEK_LEN];     /* provision, until the new file is durable */
        uint8_t new_auth[VAULTFILE_AUTH_LEN];
        uint8_t kek_auth[VAULTD_KEK_AUTH_LEN];  /* from the key file, while sealing/unsealing */
        uint8_t vault_a[SV_VAULT_MAX];
        uint8_t vault_b[SV_VAULT_MAX];
        struct hs_device hs;            /* t1, r2, K4, session key, transcript */
};

enum vault_state {
        VAULT_NONE,                     /* no vault file */
        VAULT_READY,                    /* verified; serving */
        VAULT_REFUSED,                  /* a vault file exists but must not be used */
};

/* Where the last vstate_load/commit/provision failure came from, so that the caller can say it
 * without asking the layers below (never secret). */
enum vstate_cause {
        VSTATE_CAUSE_NONE,              /* no failure, or one that -errno says all about */
        VSTATE_CAUSE_TPM,               /* the TPM failed; reason: what it said (may be "") */
        VSTATE_CAUSE_KEY_FILE,          /* the key file could not be read; reason: why */
};
#define VSTATE_REASON_MAX 256
struct vstate_failure {
        enum vstate_cause cause;
        char reason[VSTATE_REASON_MAX];
};

struct conn;

/* session.c: the one handshake at a time. */
struct session {
        struct conn *owner;             /* the connection holding the handshake, or NULL */
        sd_event_source *timer;         /* ends it after VAULTD_HANDSHAKE_TIMEOUT_S */
};

struct vaultd {
        struct vaultd_config *cfg;
        struct tpm_ctx *tpm;
        int state_fd;
        sd_event *event;

        struct vaultd_secrets *sec;     /* secret memory */
        uint8_t *vault;                 /* current vault: sec->vault_a or vault_b */
        uint8_t *next;                  /* the other one: next generation during a commit */
        enum vault_state state;
        char refusal[IPC_MESSAGE_MAX + 1];      /* why, when VAULT_REFUSED (never secret) */
        struct vaultfile_header hdr;    /* the current file's header (public) */
        struct vstate_failure failure;  /* why the last vstate_* call failed */
        unsigned status_gen;            /* vstate: bumped whenever state, refusal or hdr change */
        unsigned status_notified;       /* main.c: the status_gen last sent as STATUS= */

        struct session session;         /* the handshake in progress (session.c) */

        gid_t allowed_gids[VAULTD_GROUPS_MAX];
        size_t n_allowed_gids;
        gid_t admin_gids[VAULTD_GROUPS_MAX];
        size_t n_admin_gids;
        uid_t self_uid;

        struct tokenbucket auth_bucket; /* HELLOs, against cfg->auth_interval_usec/auth_burst */
        struct ratelimit auth_refused_log, provision_refused_log;

        int listen_fd;
        sd_event_source *listen_src;
        sd_event_source *listen_timer;  /* re-enables listen_src after a shortage (EMFILE...) */
        bool socket_bound;              /* we created cfg->socket_path (not socket activation) */
        LIST_HEAD(struct conn) conns;   /* every connection (ipc-server.c) */
};

/* Verify the vault file against the TPM at start and apply the crash-window rules. Sets
 * d->state (and d->refusal); < 0 only if the TPM, the key file or the disk failed (not a verdict
 * on the file; d->failure says which). 1 if the "file written, counter not yet advanced" window
 * was closed by advancing the counter. */
int vstate_load(struct vaultd *d);
/* The current generation's status (no secrets; busy is session.c's to say). */
void vstate_status(const struct vaultd *d, struct ipc_status_info *ret);
/* Make d->next (the generation after d->hdr) durable: new file, then TPM counter, then swap it
 * in. -EIO/-ENOSPC...: file not written, nothing changed. -ENOTRECOVERABLE: the file replaced
 * the old one but its rename is not known to be durable, or the counter could not be advanced;
 * d->state is VAULT_REFUSED (d->refusal says which; d->failure.cause is VSTATE_CAUSE_TPM for the
 * counter) until a restart recovers. */
int vstate_commit(struct vaultd *d);
/* Seal a new vault from a bundle. -EEXIST if one exists and !force. 1 if the replaced vault's
 * NV counter could not be removed (the new vault is in place regardless; d->failure.reason says
 * what the TPM said). Other failures: d->failure says whether the TPM or the key file failed, if
 * either did. -ENOTRECOVERABLE: the
 * new file replaced the old one but is not known to be durable; d->state is VAULT_REFUSED and
 * both NV counters are kept, so that a restart can use whichever file it finds. */
int vstate_provision(struct vaultd *d, const struct bundle *b, bool force);
void vstate_refuse(struct vaultd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vstate_free(struct vaultd *d);

/* ---- peercred.c ---- */
enum peer_class {
        PEER_DENIED = 0,                /* may not use vaultd at all */
        PEER_USER = 1,                  /* status, authenticate */
        PEER_ADMIN = 2,                 /* also provision: root, vaultd's user, an admin group */
};
/* Resolves the allowed and the admin group names (a missing group is skipped and reported via
 * missing, with kind "Allowed" or "Admin"). */
int peercred_resolve_groups(struct vaultd *d, void (*missing)(const char *kind, const char *name));
/* >= 0 an enum peer_class, < 0 error. ret_uid/ret_pid for the log line in any case. */
int peercred_check(const struct vaultd *d, int fd, uid_t *ret_uid, pid_t *ret_pid);

/* ---- ipc-server.c ---- */
struct conn {
        struct vaultd *d;
        int fd;
        sd_event_source *src;
        sd_event_source *idle_timer;    /* VAULTD_IDLE_TIMEOUT_S after the last request */
        uid_t uid;
        pid_t pid;
        bool denied;                    /* answer the first request with IPC_DENIED, then close */
        bool admin;                     /* PEER_ADMIN: may provision */
        char uid_text[12], pid_text[12];        /* uid and pid for the journal fields below */
        LIST_FIELDS(struct conn, conns);        /* on d->conns */
};

/*
 * A log line about connection c's peer carries its uid and pid as journal fields, and the
 * operation (OP=, one of ops.c's names) and device (DEVICE_ID=) it concerns; a NULL op or device
 * is left out. (Fields go to the journal only; the text says the same for other targets.)
 */
#define VAULTD_PEER_FIELDS(c, op, device)                                               \
        ((const struct log_field[]) {                                                   \
                { "PEER_UID", (c)->uid_text }, { "PEER_PID", (c)->pid_text },           \
                { "OP", (op) }, { "DEVICE_ID", (device) },                              \
        })
#define VAULTD_PEER_NFIELDS 4
#define log_peer_errno(level, error, c, op, device, ...) \
        log_struct_errno((level), (error), VAULTD_PEER_FIELDS(c, op, device), VAULTD_PEER_NFIELDS, __VA_ARGS__)
#define log_peer(level, c, op, device, ...) log_peer_errno((level), 0, c, op, device, __VA_ARGS__)
/* The listening socket: systemd socket activation, else --socket. */
int ipc_listen(struct vaultd *d);
void ipc_shutdown(struct vaultd *d);

/* ---- session.c ---- */
/* c now holds the handshake (after HELLO); it ends after VAULTD_HANDSHAKE_TIMEOUT_S. */
int session_begin(struct vaultd *d, struct conn *c);
/* Ends the handshake in progress, if any (wipes its state and the next vault). */
void session_end(struct vaultd *d);
bool session_busy(const struct vaultd *d);
bool session_held_by(const struct vaultd *d, const struct conn *c);

/* ---- ops.c ---- */
/* Handles one request. Fills rep (body in out, up to cap); a passed fd (provision) is in *passed_fd
 * and is closed by the caller. */
void ops_dispatch(struct conn *c, const struct ipc_request *req, int passed_fd,
                  struct ipc_reply *rep, uint8_t *out, size_t cap);
