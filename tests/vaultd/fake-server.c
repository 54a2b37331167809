/* SPDX-License-Identifier: MIT */
/*
 * Test client: plays the SERVER side of a handshake with common/'s hs_server_* against vaultd,
 * talking to vaultd's socket directly with the IPC codec (no authserver, no TCP):
 *
 *   HELLO -> M1 -> hs_server -> M2 -> RESPOND -> M3 -> hs_server_respond -> M4 -> CONFIRM
 *   -> M5 + session key: check M5, the session keys, the channel secrets and the new epoch.
 *   A bundle with `kex: x25519` runs the handshake with the §10 key share.
 *
 * Server state lives in bundle files: STATE (the committed vault) and STATE.pending (at most one
 * pending next generation), following protocol §6: M1 with the committed epoch uses the committed
 * vault; M1 with the pending epoch first promotes the pending vault; the next vault is stored as
 * pending (durably) before M4 is sent, and committed once M5 verifies.
 *
 *   fake-server --socket PATH --state FILE [--hold-after hello|respond --ready-file F]
 *               [--corrupt-m4] [--respond-first]
 *
 * Exit: 0 ok ("ok epoch=N" on stdout), 1 failure, 2 usage, 3 vaultd went away, 4 a check failed,
 * 5 the device failed to prove itself (M3), 10 + status for an error reply from vaultd.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bundle-file.h"
#include "handshake.h"
#include "ipc.h"
#include "wire.h"

#define EXIT_GONE 3
#define EXIT_CHECK 4
#define EXIT_DEVICE 5
#define EXIT_STATUS_BASE 10

static int vfd = -1;
static uint8_t pkt[IPC_PACKET_MAX];
/* Global so that every exit path frees (and wipes) them: see free_state(). */
static struct bundle committed, pending, next;

static void free_state(void) {
        bundle_free(&committed);
        bundle_free(&pending);
        bundle_free(&next);
        if (vfd >= 0)
                close(vfd);
}

static int load(const char *path, struct bundle *ret) {
        unsigned line = 0;
        int r;

        r = bundle_file_load(path, ret, &line);
        if (r < 0)
                fprintf(stderr, "fake-server: cannot load '%s' (line %u): %s\n", path, line, strerror(-r));
        return r;
}

/* One request/reply. Returns 0 with *rep filled, or EXIT_GONE. */
static int call(uint8_t op, const uint8_t *body, size_t len, struct ipc_reply *rep) {
        struct ipc_request req = { .op = op, .body = body, .body_len = len };
        size_t plen;
        ssize_t n;

        if (ipc_encode_request(&req, pkt, sizeof pkt, &plen) < 0)
                return 1;
        if (send(vfd, pkt, plen, MSG_NOSIGNAL) != (ssize_t) plen)
                return EXIT_GONE;
        n = recv(vfd, pkt, sizeof pkt, 0);
        if (n <= 0)
                return EXIT_GONE;
        if (ipc_decode_reply(pkt, (size_t) n, rep) < 0 || rep->op != op)
                return 1;
        return 0;
}

static int check_reply(const char *what, int r, const struct ipc_reply *rep) {
        if (r == EXIT_GONE) {
                printf("%s: vaultd closed the connection\n", what);
                return EXIT_GONE;
        }
        if (r != 0) {
                printf("%s: bad reply\n", what);
                return 1;
        }
        if (rep->status != IPC_OK) {
                printf("%s: %s: %.*s\n", what, ipc_status_to_string(rep->status), (int) rep->body_len,
                       (const char *) rep->body);
                return EXIT_STATUS_BASE + rep->status;
        }
        return 0;
}

static void hold(const char *ready_file) {
        int fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd >= 0)
                close(fd);
        for (;;)
                pause();
}

int main(int argc, char *argv[]) {
        enum { ARG_SOCKET = 0x100, ARG_STATE, ARG_HOLD, ARG_READY, ARG_CORRUPT, ARG_RESPOND_FIRST };
        static const struct option options[] = {
                { "socket",        required_argument, NULL, ARG_SOCKET },
                { "state",         required_argument, NULL, ARG_STATE },
                { "hold-after",    required_argument, NULL, ARG_HOLD },
                { "ready-file",    required_argument, NULL, ARG_READY },
                { "corrupt-m4",    no_argument,       NULL, ARG_CORRUPT },
                { "respond-first", no_argument,       NULL, ARG_RESPOND_FIRST },
                { 0 }
        };
        const char *socket_path = NULL, *state = NULL, *hold_after = NULL, *ready = NULL;
        bool corrupt = false, respond_first = false, have_pending, promote = false;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const struct bundle *use = NULL;
        char pending_path[PATH_MAX];
        struct hs_server hs;
        struct msg_hello hello;
        struct ipc_reply rep;
        struct ipc_confirm_result res;
        uint8_t m2[SV_FRAME_MAX], m4[SV_FRAME_MAX];
        size_t m2_len, m4_len;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOCKET: socket_path = optarg; break;
                case ARG_STATE: state = optarg; break;
                case ARG_HOLD: hold_after = optarg; break;
                case ARG_READY: ready = optarg; break;
                case ARG_CORRUPT: corrupt = true; break;
                case ARG_RESPOND_FIRST: respond_first = true; break;
                default: return 2;
                }
        if (!socket_path || !state || strlen(socket_path) >= sizeof sa.sun_path || (hold_after && !ready))
                return 2;
        snprintf(pending_path, sizeof pending_path, "%s.pending", state);
        atexit(free_state);

        if (load(state, &committed) < 0)
                return 1;
        have_pending = access(pending_path, F_OK) == 0;
        if (have_pending && load(pending_path, &pending) < 0)
                return 1;

        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
        vfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (vfd < 0 || connect(vfd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                printf("connect: %s\n", strerror(errno));
                return EXIT_GONE;
        }

        if (respond_first) {
                uint8_t junk[8] = { 0 };

                r = check_reply("respond", call(IPC_OP_RESPOND, junk, sizeof junk, &rep), &rep);
                return r;
        }

        r = check_reply("hello", call(IPC_OP_HELLO, NULL, 0, &rep), &rep);
        if (r != 0)
                return r;
        hs_server_init(&hs, &hs_random_os, committed.params.n, committed.params.p);
        if (hs_server_hello(&hs, rep.body, rep.body_len, &hello) < 0) {
                printf("hello: vaultd sent a malformed M1\n");
                return EXIT_CHECK;
        }
        if (hold_after && strcmp(hold_after, "hello") == 0)
                hold(ready);

        /* Protocol §6: which generation M1 names. */
        if (hello.epoch == committed.params.epoch)
                use = &committed;
        else if (have_pending && hello.epoch == pending.params.epoch) {
                use = &pending;
                promote = true;
        } else
                fprintf(stderr, "fake-server: M1 names epoch %" PRIu64 ", server has %" PRIu64 "%s: decoy\n",
                        hello.epoch, committed.params.epoch, have_pending ? " (+ pending)" : "");

        r = hs_server_challenge(&hs, use ? &use->params : NULL, use ? use->vault : NULL, m2, sizeof m2, &m2_len);
        if (r < 0)
                return 1;
        r = check_reply("respond", call(IPC_OP_RESPOND, m2, m2_len, &rep), &rep);
        if (r != 0)
                return r;
        if (hold_after && strcmp(hold_after, "respond") == 0)
                hold(ready);

        next.params = use ? use->params : committed.params;
        next.kex = next.params.kex;
        memcpy(next.server, committed.server, sizeof next.server);
        next.vault = malloc(vault_size(&next.params));
        if (!next.vault)
                return 1;
        r = hs_server_respond(&hs, rep.body, rep.body_len, next.vault, m4, sizeof m4, &m4_len);
        if (r < 0) {
                printf("respond: the device failed to prove itself (%s)\n", strerror(-r));
                return EXIT_DEVICE;
        }
        next.params.epoch++;
        /* Durable before M4 leaves: promote the pending generation, then store the next one. */
        if (promote) {
                if (bundle_file_save(state, &pending) < 0)
                        return 1;
                committed.params = pending.params;
        }
        if (bundle_file_save(pending_path, &next) < 0)
                return 1;

        if (corrupt)
                m4[m4_len - 1] ^= 0x01;
        r = check_reply("confirm", call(IPC_OP_CONFIRM, m4, m4_len, &rep), &rep);
        if (r != 0)
                return r;
        if (ipc_decode_confirm(rep.body, rep.body_len, &res) < 0) {
                printf("confirm: malformed result\n");
                return EXIT_CHECK;
        }
        if (hs_server_commit(&hs, res.m5, res.m5_len) < 0) {
                printf("confirm: M5 does not verify\n");
                return EXIT_CHECK;
        }
        if (CRYPTO_memcmp(res.session_key, hs_server_session_key(&hs), SV_KEY_LEN) != 0) {
                printf("confirm: session keys differ\n");
                return EXIT_CHECK;
        }
        {
                uint8_t c2s[RECORD_SECRET_LEN], s2c[RECORD_SECRET_LEN];
                bool same = hs_server_channel_secrets(&hs, c2s, s2c) == 0 &&
                            CRYPTO_memcmp(res.c2s, c2s, sizeof c2s) == 0 &&
                            CRYPTO_memcmp(res.s2c, s2c, sizeof s2c) == 0;

                OPENSSL_cleanse(c2s, sizeof c2s);
                OPENSSL_cleanse(s2c, sizeof s2c);
                if (!same) {
                        printf("confirm: channel secrets differ\n");
                        return EXIT_CHECK;
                }
        }
        if (res.epoch != next.params.epoch) {
                printf("confirm: vaultd reports epoch %" PRIu64 ", expected %" PRIu64 "\n", res.epoch, next.params.epoch);
                return EXIT_CHECK;
        }
        if (bundle_file_save(state, &next) < 0 || unlink(pending_path) < 0)
                return 1;
        printf("ok epoch=%" PRIu64 "\n", res.epoch);
        OPENSSL_cleanse(&res, sizeof res);
        hs_server_wipe(&hs);
        return 0;
}
