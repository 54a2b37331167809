/* SPDX-License-Identifier: MIT */
#pragma once

#include <getopt.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define DEVICECTL_DEFAULT_SOCKET        "/run/vaultd.sock"
#define DEVICECTL_DEFAULT_TIMEOUT_S     10
#define DEVICECTL_DEFAULT_LIFETIME_S    3600

/* Exit codes: distinct for every failure a script may want to react to. devicectl(1), the
 * user guide and main.c's help() describe them; keep the four in step. */
enum {
        EXIT_OK = 0,
        EXIT_FAILURE_OTHER = 1,
        EXIT_USAGE = 2,
        EXIT_SERVER_UNREACHABLE = 3,    /* lookup, connect, lost connection, --timeout */
        EXIT_SERVER_REFUSED = 4,        /* the server answered ERROR */
        EXIT_SERVER_NOT_PROVEN = 5,     /* M4 did not verify */
        EXIT_VAULTD_UNAVAILABLE = 6,    /* cannot connect, denied, no answer, malformed reply */
        EXIT_VAULT_BUSY = 7,
        EXIT_PROTOCOL = 8,              /* a malformed or unexpected message from the server */
        EXIT_NOT_PROVISIONED = 9,       /* no usable vault: none, or refused by vaultd */
        EXIT_NOT_PERMITTED = 10,        /* allowed to use vaultd, not to provision */
        EXIT_RATE_LIMITED = 11,         /* vaultd's authentication rate limit: retry later */
        EXIT_BUNDLE_DAMAGED = 12,       /* provision: the bundle's check fails; nothing stored, bundle kept */
        EXIT_BUNDLE_UNCHECKED = 13,     /* provision: a bundle without check, and no --accept-unchecked */
        EXIT_CHANNEL_CUT = 14,          /* send: the data channel ended without the server's CLOSE */
};

struct devicectl {
        const char *socket_path;
        bool json;
};

struct verb {
        const char *name;
        const char *summary;
        int (*run)(struct devicectl *ctl, int argc, char *argv[]);
        const struct option *options;   /* the verb's getopt_long() table */
};

/* The options of devicectl itself, which every verb's table also lists so that they may
 * follow the verb ("devicectl status --socket PATH"); global_option() handles them. */
enum {
        GLOBAL_ARG_LOG_LEVEL = 0x1000,
        GLOBAL_ARG_JSON,
};
#define GLOBAL_OPTIONS \
        { "socket",    required_argument, NULL, 's' }, \
        { "log-level", required_argument, NULL, GLOBAL_ARG_LOG_LEVEL }, \
        { "json",      no_argument,       NULL, GLOBAL_ARG_JSON }
/* The short options of GLOBAL_OPTIONS, for the verbs' getopt_long() option strings. */
#define GLOBAL_SHORT_OPTIONS "s:"
/* Takes one of GLOBAL_OPTIONS: 1 when c is one (done), 0 when not, -EINVAL (logged) when
 * its value is bad. --json also turns the messages on stderr into JSON objects. */
int global_option(struct devicectl *ctl, int c, const char *arg);

extern const struct option verb_status_options[];
extern const struct option verb_provision_options[];
extern const struct option verb_authenticate_options[];
extern const struct option verb_send_options[];

int verb_status(struct devicectl *ctl, int argc, char *argv[]);
int verb_provision(struct devicectl *ctl, int argc, char *argv[]);
int verb_authenticate(struct devicectl *ctl, int argc, char *argv[]);
int verb_send(struct devicectl *ctl, int argc, char *argv[]);

/* handshake.c: a whole handshake through vaultd with the server (authenticate, send). */
struct auth_result {
        int tcp;                        /* the connection, open after M5 was sent */
        struct ipc_status_info info;    /* vaultd's status before the handshake */
        struct ipc_confirm_result res;  /* M5, session key, channel secrets, new epoch: secret */
        const char *server;             /* HOST:PORT, the option's or the bundle's (in info) */
};
/* Runs the handshake against server (NULL: the bundle's), --timeout timeout_s; logs what went
 * wrong and returns the exit code. On EXIT_OK *ret holds the open connection and vaultd's
 * confirm record; the caller ends it with auth_result_done(), which wipes the secrets. */
int auth_handshake(struct devicectl *ctl, const char *server, unsigned timeout_s, struct auth_result *ret);
void auth_result_done(struct auth_result *a);

/* vaultd-client.c: one SOCK_SEQPACKET connection to vaultd. */
/* The account of the shipped vaultd.service: a socket it holds is trusted (besides root's). */
#define VAULTD_USER "vaultd"
struct vaultd_conn {
        int fd;
        const char *path;
        uid_t peer_uid;         /* who holds the socket, also after a refused connect */
};
/* -EPERM: the socket is held by someone other than root, vaultd's account or ourselves. */
int vaultd_connect(struct vaultd_conn *c, const char *path);
/* Logs why vaultd_connect() failed with r, naming the path (and the uid that holds it). */
void vaultd_connect_failed(const struct vaultd_conn *c, int r, const char *path);
void vaultd_disconnect(struct vaultd_conn *c);
/* Sends one request (passing fd_to_pass along if >= 0) and reads its reply into buf.
 * A reply with a non-zero status is still returned (>= 0); transport failures are -errno. */
int vaultd_call(struct vaultd_conn *c, uint8_t op, uint16_t flags, const void *body, size_t body_len,
                int fd_to_pass, uint8_t *buf, size_t cap, struct ipc_reply *ret);
/* Logs "<what>: <status text>[: <vaultd's message>]" for a failed reply and
 * returns the exit code that goes with its status. */
int vaultd_reply_error(const char *what, const struct ipc_reply *rep);

/* net.c: blocking TCP with a deadline. */
struct addrinfo;
/* Resolves "host:port" for TCP; a failed lookup is -EHOSTUNREACH, and *ret_lookup_error (if
 * not NULL) is then set to the resolver's message. The lookup has no deadline. */
int net_resolve(const char *host_port, struct addrinfo **ret, const char **ret_lookup_error);
/* Connects to the first address of res that answers before deadline_ms (now_ms() clock). */
int net_connect_resolved(const struct addrinfo *res, int64_t deadline_ms, int *ret_fd);
/* Both of the above, with the lookup counted in timeout_ms. */
int net_connect(const char *host_port, int64_t timeout_ms, int *ret_fd);
int net_send_frame(int fd, const uint8_t *frame, size_t len, int64_t deadline_ms);
/* Reads one frame of `type` (0: any) or an ERROR, whose body is body_len bytes (0: any up to the cap);
 * the header is checked before the body is read. */
int net_recv_frame(int fd, uint8_t *buf, size_t cap, size_t *ret_len, int64_t deadline_ms,
                   uint8_t type, size_t body_len);
/* Reads one record of the data channel (§11, cap >= RECORD_FRAME_MAX): its header is checked
 * with record_header_check() before the body is read. -ECONNRESET at end of file. */
int net_recv_record(int fd, uint8_t *buf, size_t cap, size_t *ret_len, int64_t deadline_ms);
int64_t now_ms(void);

/* keyring.c */
int keyring_add_session_key(const char *keyring, const char *device_id, const uint8_t key[SV_KEY_LEN],
                            unsigned lifetime_s, int32_t *ret_serial);

/* Small shared helpers (main.c). */
struct option;
int parse_seconds(const char *s, const char *option, unsigned *ret);
/* --server HOST:PORT or [V6]:PORT (logs what is wrong). */
int parse_server_option(const char *s, const char **ret);

/* The options of a verb that talks to the server (authenticate, send): --help, --server,
 * --timeout and GLOBAL_OPTIONS (--json among them), then the verb's own, whose vals start at SERVER_VERB_ARG_OWN. */
enum {
        SERVER_VERB_ARG_SERVER = 0x100,
        SERVER_VERB_ARG_TIMEOUT,
        SERVER_VERB_ARG_OWN,
};
#define SERVER_VERB_OPTIONS \
        { "help",    no_argument,       NULL, 'h' }, \
        { "server",  required_argument, NULL, SERVER_VERB_ARG_SERVER }, \
        { "timeout", required_argument, NULL, SERVER_VERB_ARG_TIMEOUT }, \
        GLOBAL_OPTIONS
struct server_options {
        const char *server;             /* --server; NULL: the bundle's */
        unsigned timeout_s;             /* --timeout */
};
struct server_verb {
        const char *name;               /* as option_error() names it */
        const struct option *options;   /* SERVER_VERB_OPTIONS, the verb's own, { 0 } */
        void (*help)(void);
        /* The verb's own option c with its argument: 0, or -EINVAL once it logged why. NULL
         * when the verb has none. */
        int (*own_option)(void *userdata, int c, const char *arg);
};
/* Runs getopt_long() over the verb's argv: --help prints the verb's help and returns 1;
 * --server and --timeout go to *o, --json to ctl; the verb's own options to own_option(). A
 * bad option is -EINVAL (named by option_error()). Returns 0 with optind at the first operand. */
int parse_server_verb_options(struct devicectl *ctl, const struct server_verb *verb, int argc, char *argv[],
                              struct server_options *o, void *userdata);
/* For getopt_long() run with opterr = 0 and a ':' optstring: prints what was wrong with
 * the option, naming devicectl and the verb (NULL: none), rather than getopt's argv[0]. */
void option_error(const char *verb, int c, char *argv[], const struct option *options);
void json_print_string(const char *s);
