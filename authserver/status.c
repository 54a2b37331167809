/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authserver.h"
#include "control.h"
#include "text.h"

/* The verbs that read what the server did: status (the running server's counters, through
 * its control socket) and audit (the audit trail, through the server or the database). */

int verb_status(struct config *c, int argc, char *argv[]) {
        static const struct option options[] = { COMMON_OPTIONS, { 0 } };
        _cleanup_(admin_db_closep) struct admin_db *db = NULL;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'h') {
                        printf("Usage: authserver status [--control PATH]\n\n"
                               "Show the running server: uptime, open connections, handshakes and failures by\n"
                               "reason over the last minute and hour, desyncs recovered, store latency. Asks the\n"
                               "server on its control socket (default " AUTHSERVER_DEFAULT_CONTROL "); needs\n"
                               "no master key. Exit 1 if no server answers.\n");
                        return AS_EXIT_OK;
                } else if (common_option(c, opt, optarg) <= 0)
                        return AS_EXIT_USAGE;
        if (optind != argc) {
                log_error("status takes no arguments");
                return AS_EXIT_USAGE;
        }
        if (admin_db_open(c, ADMIN_DB_REMOTE, &db) < 0)
                return AS_EXIT_FAILURE;
        r = admin_db_status(db, stdout);
        if (r < 0) {
                log_error_errno(r, "cannot read the server's status: %s", admin_db_last_error(db));
                return AS_EXIT_FAILURE;
        }
        return AS_EXIT_OK;
}

/* --since: an instant (YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, @UNIXSECONDS) or an age (30min, 2h, 7d). */
static int parse_since(const char *s, int64_t now, int64_t *ret) {
        struct tm tm = { 0 };
        const char *end;
        unsigned long v;
        uint64_t age;

        if (s[0] == '@') {
                if (text_parse_unsigned(s + 1, 0, (unsigned long) INT64_MAX / 2, &v) < 0)
                        return -EINVAL;
                *ret = (int64_t) v;
                return 0;
        }
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
                tm = (struct tm) { 0 };
                end = strptime(s, "%Y-%m-%d", &tm);
        }
        if (end && !*end) {
                *ret = (int64_t) timegm(&tm);
                return 0;
        }
        if (text_parse_duration(s, 1, (uint64_t) now, &age) < 0)
                return -EINVAL;
        *ret = now - (int64_t) age;
        return 0;
}

struct audit_out {
        bool json;
        unsigned count;
};

static int audit_one(const struct audit_row *a, void *userdata) {
        struct audit_out *o = userdata;
        char when[32];
        time_t t = (time_t) a->time;
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(when, sizeof when, "?");
        if (o->json) {
                printf("%s{\"time\":\"%s\",\"device\":", o->count ? "," : "", when);
                if (a->device_id[0])
                        json_string(a->device_id);
                else
                        printf("null");
                printf(",\"peer\":");
                json_string(a->peer);
                printf(",\"outcome\":");
                json_string(a->outcome);
                printf(",\"epoch\":%" PRIu64 "}", a->epoch);
        } else
                printf("%-20s %-32s %-24s %-16s %" PRIu64 "\n", when, a->device_id[0] ? a->device_id : "-", a->peer,
                       a->outcome, a->epoch);
        o->count++;
        return 0;
}

int verb_audit(struct config *c, int argc, char *argv[]) {
        enum { ARG_DEVICE = 0x200, ARG_SINCE, ARG_JSON };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "device", required_argument, NULL, ARG_DEVICE },
                { "since",  required_argument, NULL, ARG_SINCE },
                { "json",   no_argument,       NULL, ARG_JSON },
                { 0 }
        };
        _cleanup_(admin_db_closep) struct admin_db *db = NULL;
        struct audit_out o = { 0 };
        const char *id = NULL;
        int64_t since = 0;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        printf("Usage: authserver audit [--device ID] [--since TIME] [--json]\n\n"
                               "Print the audit trail (handshakes of proven devices, enrollments,\n"
                               "revocations), oldest first. TIME: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, @UNIXTIME,\n"
                               "or an age such as 30min, 2h, 7d. Rows older than audit-retention are pruned\n"
                               "by the running server.\n");
                        return AS_EXIT_OK;
                case ARG_DEVICE:
                        if (!vault_device_id_valid(optarg, strlen(optarg))) {
                                log_error("invalid device id '%s': 1..64 of [A-Za-z0-9._:-]", optarg);
                                return AS_EXIT_USAGE;
                        }
                        id = optarg;
                        break;
                case ARG_SINCE:
                        if (parse_since(optarg, (int64_t) time(NULL), &since) < 0) {
                                log_error("invalid --since '%s': YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, @UNIXTIME or "
                                          "an age such as 2h", optarg);
                                return AS_EXIT_USAGE;
                        }
                        break;
                case ARG_JSON:
                        o.json = true;
                        break;
                default:
                        if (common_option(c, opt, optarg) <= 0)
                                return AS_EXIT_USAGE;
                }
        if (optind != argc) {
                log_error("audit takes no arguments (try --device ID)");
                return AS_EXIT_USAGE;
        }
        if (admin_db_open(c, ADMIN_DB_READ, &db) < 0)
                return AS_EXIT_DATABASE;
        if (o.json)
                printf("[");
        else
                printf("%-20s %-32s %-24s %-16s %s\n", "TIME", "DEVICE", "PEER", "OUTCOME", "EPOCH");
        r = admin_db_audit_list(db, id, since, audit_one, &o);
        if (o.json)
                printf("]\n");
        if (r < 0) {
                log_error_errno(r, "cannot read the audit trail: %s", admin_db_last_error(db));
                return AS_EXIT_DATABASE;
        }
        return AS_EXIT_OK;
}
