/* SPDX-License-Identifier: MIT */

/*
 * authserver migrate --from DB --to DB: a whole store into another, SQLite or PostgreSQL
 * either way (issue #14, "moving a fleet"). The copy itself is store_copy() (store-copy.c):
 * one snapshot of the source, one transaction on the target, all or nothing. Both stores are
 * opened with the one master key: the source's key check proves it is the right one, the
 * target is created with it (or must already be sealed under it), and the sealed vaults are
 * copied as they are, never decrypted. The source's serving lock, exclusive, keeps servers
 * off it (store_lock_serving()): a handshake committed after the snapshot would be lost.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "authserver.h"

/* A connection string may hold a password: never echoed. */
static const char *db_name(const char *path) {
        return store_path_is_postgresql(path) ? "the PostgreSQL database" : path;
}

int verb_migrate(struct config *c, int argc, char *argv[]) {
        enum { ARG_FROM = 0x200, ARG_TO };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "from", required_argument, NULL, ARG_FROM },
                { "to",   required_argument, NULL, ARG_TO },
                { 0 }
        };
        _cleanup_(store_closep) struct store *from = NULL, *to = NULL;
        const char *from_path = NULL, *to_path = NULL;
        struct store_copy_counts n;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        printf("Usage: authserver migrate --from DB --to DB [--master-key FILE]\n\n"
                               "Copy every device (both vault generations, enrollment state, revocations),\n"
                               "the audit trail and the aggregates from one database into an empty one, in one\n"
                               "transaction. Each DB is a SQLite file or a PostgreSQL connection string; the\n"
                               "target is created if missing. Both are sealed under the one master key: the\n"
                               "vaults are copied sealed. Every server on the source must be stopped first:\n"
                               "a source that a server holds is refused, and no server starts on it while\n"
                               "it is copied.\n"
                               "Exit codes: 0 copied, 2 usage, 4 the target is not empty or a server runs on\n"
                               "the source, 5 database error\n"
                               "(cannot open either, wrong master key, corrupt source, failed write: the\n"
                               "target is left as it was).\n");
                        return AS_EXIT_OK;
                case ARG_FROM:
                        from_path = optarg;
                        break;
                case ARG_TO:
                        to_path = optarg;
                        break;
                default:
                        if (common_option(c, opt, optarg) <= 0)
                                return AS_EXIT_USAGE;
                }
        if (optind != argc || !from_path || !to_path || !*from_path || !*to_path) {
                log_error("migrate needs --from DB and --to DB and takes no arguments");
                return AS_EXIT_USAGE;
        }

        /* The source first, never created: a wrong key or a missing source touches nothing. */
        if (config_set(c, "db", from_path, "--from") < 0 || config_open_store(c, 0, &from) < 0)
                return AS_EXIT_DATABASE;
        /* Held until the end: no server starts on the source while it is copied. */
        r = store_lock_serving(from, true);
        if (r < 0) {
                log_error("refusing to migrate from %s: %s%s", db_name(from_path), store_last_error(from),
                          r == -EBUSY ? ": stop every server on it first" : "");
                return r == -EBUSY ? AS_EXIT_EXISTS : AS_EXIT_DATABASE;
        }
        if (config_set(c, "db", to_path, "--to") < 0 || config_open_store(c, STORE_CREATE, &to) < 0)
                return AS_EXIT_DATABASE;

        r = store_copy(from, to, &n);
        if (r == -ENOTEMPTY) {
                log_error("refusing to migrate into %s: %s", db_name(to_path), store_last_error(to));
                return AS_EXIT_EXISTS;
        }
        if (r < 0) {
                log_error_errno(r, "migration from %s to %s failed, nothing was written: %s", db_name(from_path),
                                db_name(to_path), store_last_error(to));
                return AS_EXIT_DATABASE;
        }
        printf("migrated %" PRIu64 " devices (%" PRIu64 " vaults), %" PRIu64 " audit rows, %" PRIu64
               " audit summaries, %" PRIu64 " aggregates\n", n.devices, n.vaults, n.audit, n.summaries, n.aggregates);
        return AS_EXIT_OK;
}
