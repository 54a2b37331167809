/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "devicectl.h"
#include "log.h"

static void print_json(const struct ipc_status_info *s) {
        printf("{\"provisioned\":%s,\"busy\":%s", s->provisioned ? "true" : "false", s->busy ? "true" : "false");
        if (s->provisioned) {
                printf(",\"device_id\":");
                json_print_string(s->params.device_id);
                printf(",\"profile\":\"%s\",\"n\":%u,\"m\":%u,\"p\":%u,\"epoch\":%" PRIu64 ",\"server\":",
                       vault_profile_to_string(s->params.profile), s->params.n, s->params.m, s->params.p,
                       s->params.epoch);
                json_print_string(s->server);
                printf(",\"nv_index\":\"0x%08" PRIx32 "\",\"counter\":%" PRIu64 ",\"kex\":\"%s\"", s->nv_index,
                       s->counter, profile_kex_name(s->params.kex));
        }
        printf(",\"tpm_commands\":%" PRIu64 "}\n", s->tpm_commands);
}

/*
 * vaultd's status record reports a vault it refused (rolled back, foreign, tampered) as
 * not provisioned and carries no reason (docs/ipc.md §3); vaultd logs the reason at start.
 * Point there rather than claim there is no vault at all.
 */
static void print_human(const struct ipc_status_info *s) {
        if (!s->provisioned) {
                printf("vault: none usable (not provisioned, or refused by vaultd: see 'journalctl -u vaultd')\n");
                return;
        }
        printf("device:   %s\n"
               "profile:  %s (kex %s)\n"
               "vault:    n=%u keys of m=%u bytes, p=%u indices per challenge\n"
               "epoch:    %" PRIu64 "\n"
               "server:   %s\n"
               "counter:  NV 0x%08" PRIx32 " = %" PRIu64 "\n"
               "state:    %s\n",
               s->params.device_id, vault_profile_to_string(s->params.profile), profile_kex_name(s->params.kex),
               s->params.n, s->params.m, s->params.p, s->params.epoch,
               s->server[0] ? s->server : "(none)", s->nv_index, s->counter,
               s->busy ? "handshake in progress" : "idle");
}

const struct option verb_status_options[] = {
        { "help", no_argument, NULL, 'h' },
        GLOBAL_OPTIONS,
        { 0 }
};

int verb_status(struct devicectl *ctl, int argc, char *argv[]) {
        struct vaultd_conn conn;
        struct ipc_status_info info;
        struct ipc_reply rep;
        uint8_t buf[IPC_PACKET_MAX];
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h" GLOBAL_SHORT_OPTIONS, verb_status_options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: devicectl status [--json]\n\nShow what vaultd reports (no secrets).\n"
                               "Exits 0 when vaultd holds a usable vault, 9 when it holds none.\n");
                        return EXIT_OK;
                default:
                        r = global_option(ctl, c, optarg);
                        if (r < 0)
                                return EXIT_USAGE;
                        if (r == 0) {
                                option_error("status", c, argv, verb_status_options);
                                return EXIT_USAGE;
                        }
                }
        if (optind != argc) {
                log_error("status takes no arguments, got '%s'", argv[optind]);
                return EXIT_USAGE;
        }

        r = vaultd_connect(&conn, ctl->socket_path);
        if (r < 0) {
                vaultd_connect_failed(&conn, r, ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        r = vaultd_call(&conn, IPC_OP_STATUS, 0, NULL, 0, -1, buf, sizeof buf, &rep);
        vaultd_disconnect(&conn);
        if (r < 0) {
                log_error_errno(r, "vaultd at '%s' did not answer: %m", ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (rep.status != IPC_OK)
                return vaultd_reply_error("status", &rep);
        if (ipc_decode_status(rep.body, rep.body_len, &info) < 0) {
                log_error("vaultd at '%s' sent a malformed status", ctl->socket_path);
                return EXIT_VAULTD_UNAVAILABLE;
        }
        if (ctl->json)
                print_json(&info);
        else
                print_human(&info);
        /* Scripts test "devicectl status" for a vault they can authenticate with. */
        return info.provisioned ? EXIT_OK : EXIT_NOT_PROVISIONED;
}
