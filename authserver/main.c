/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authserver.h"
#include "control.h"
#include "log-journal.h"
#include "secmem.h"
#include "text.h"

struct verb {
        const char *name;
        const char *summary;
        int (*run)(struct config *c, int argc, char *argv[]);
        /* Where messages go when stderr is not the journal: the service writes "<N>message"
         * lines that journald reads the priority of, a command a person runs writes
         * "authserver: message". */
        enum log_target log_fallback;
};

static const struct verb verbs[] = {
        { "serve",  "authenticate devices over TCP",               verb_serve,  LOG_TARGET_KMSG },
        { "init",   "create the master key and an empty database", verb_init,   LOG_TARGET_CONSOLE },
        { "enroll", "create a device and write its enrollment bundle", verb_enroll, LOG_TARGET_CONSOLE },
        { "revoke", "revoke a device and erase its vaults",        verb_revoke, LOG_TARGET_CONSOLE },
        { "list",   "list the enrolled devices",                   verb_list,   LOG_TARGET_CONSOLE },
        { "show",   "show one device (never key material)",        verb_show,   LOG_TARGET_CONSOLE },
        { "stats",  "print the aggregates of the devices' data",   verb_stats,  LOG_TARGET_CONSOLE },
        { "migrate", "copy a whole database into an empty one",    verb_migrate, LOG_TARGET_CONSOLE },
        { "status", "show the running server's counters",          verb_status, LOG_TARGET_CONSOLE },
        { "audit",  "print the audit trail",                       verb_audit,  LOG_TARGET_CONSOLE },
};

void common_options_help(void) {
        printf("\nOptions of every verb (before or after the verb):\n"
               "  --db PATH           device database (default " AUTHSERVER_DEFAULT_DB ")\n"
               "  --master-key FILE   32-byte master key (default: $CREDENTIALS_DIRECTORY/" AUTHSERVER_CREDENTIAL_NAME ")\n"
               "  --config FILE       settings file (default " AUTHSERVER_CONFIG_PATH ")\n"
               "  --log-level LEVEL   err, warning, notice, info (default) or debug\n"
               "  --control PATH      the running server's control socket (default " AUTHSERVER_DEFAULT_CONTROL "):\n"
               "                      the admin verbs use it when a server answers, else open the database\n"
               "  -h --help           help ('authserver VERB --help' for a verb)\n");
}

static void help(void) {
        printf("Usage: authserver [OPTIONS] VERB [OPTIONS]\n\n"
               "The secure-vault server: authenticates devices against their vaults.\n\nVerbs:\n");
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                printf("  %-8s %s\n", verbs[i].name, verbs[i].summary);
        common_options_help();
        printf("     --version        show the version\n"
               "\nExit codes: 0 ok, 1 failure, 2 usage, 3 no such device, 4 device exists or in use\n"
               "(migrate: target not empty or source served; serve: server id in use or database\n"
               "being migrated), 5 database error.\n");
}

/* The argv the verb parses (for naming a bad option when getopt_long() does not print). */
static char **parsed_argv;

int common_option(struct config *c, int opt, const char *arg) {
        switch (opt) {
        case '?':
        case ':':
                /* With --json, getopt_long() prints nothing (opterr 0): the error is ours. */
                if (!opterr && parsed_argv && optind > 0)
                        log_error("invalid option '%s' (try '%s --help')", parsed_argv[optind - 1], parsed_argv[0]);
                return 0;
        case ARG_DB:
                return config_set(c, "db", arg, "--db") < 0 ? -EINVAL : 1;
        case ARG_MASTER_KEY:
                return config_set(c, "master-key", arg, "--master-key") < 0 ? -EINVAL : 1;
        case ARG_CONFIG:
                return 1;       /* read before the verb's options, see main() */
        case ARG_LOG_LEVEL:
                return config_set(c, "log-level", arg, "--log-level") < 0 ? -EINVAL : 1;
        case ARG_CONTROL:
                return config_set(c, "control", arg, "--control") < 0 ? -EINVAL : 1;
        default:
                return 0;
        }
}

/*
 * The verb, wherever it is among the options: the first argument that is neither an option
 * nor the value of an option of every verb ("authserver --db x list"); a verb's own option
 * before the verb is given as --name=VALUE. Returns its index (*ret: the verb, NULL when
 * unknown), or 0 when there is none before "--".
 */
static int find_verb(int argc, char *argv[], const struct verb **ret) {
        static const char *const with_value[] = { "--db", "--master-key", "--config", "--log-level", "--control" };

        *ret = NULL;
        for (int i = 1; i < argc; i++) {
                bool value = false;

                if (strcmp(argv[i], "--") == 0)
                        return 0;
                for (size_t j = 0; j < sizeof with_value / sizeof with_value[0]; j++)
                        value = value || strcmp(argv[i], with_value[j]) == 0;
                if (value) {
                        i++;
                        continue;
                }
                if (argv[i][0] == '-')
                        continue;
                for (size_t j = 0; j < sizeof verbs / sizeof verbs[0]; j++)
                        if (strcmp(argv[i], verbs[j].name) == 0)
                                *ret = &verbs[j];
                return i;
        }
        return 0;
}

/* The settings file is read first so that command-line options override it. */
static const char *find_config(int argc, char *argv[], bool *explicit) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
                        *explicit = true;
                        return argv[i + 1];
                }
                if (strncmp(argv[i], "--config=", 9) == 0) {
                        *explicit = true;
                        return argv[i] + 9;
                }
        }
        *explicit = false;
        return AUTHSERVER_CONFIG_PATH;
}

int main(int argc, char *argv[]) {
        const struct verb *verb = NULL;
        struct config c;
        const char *config_path;
        char **verb_argv;
        bool explicit;
        int v, r;

        log_open("authserver", LOG_TARGET_AUTO, LOG_TARGET_CONSOLE, log_journal_sink);
        /* With --json anywhere, every error is JSON, also those met before the verb's parser
         * reaches the option (an unknown verb or option, a bad config file). */
        if (text_argv_has_json(argc, argv)) {
                log_open(NULL, LOG_TARGET_JSON, LOG_TARGET_JSON, NULL);
                opterr = 0;
        }
        v = find_verb(argc, argv, &verb);
        if (v == 0 || !verb) {
                for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
                        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                                help();
                                return AS_EXIT_OK;
                        }
                        if (strcmp(argv[i], "--version") == 0) {
                                printf("authserver " PACKAGE_VERSION "\n");
                                return AS_EXIT_OK;
                        }
                }
                if (v > 0)
                        log_error("unknown verb '%s' (try 'authserver --help')", argv[v]);
                else
                        log_error("missing verb (try 'authserver --help')");
                return AS_EXIT_USAGE;
        }
        if (log_get_target() != LOG_TARGET_JSON)
                log_open("authserver", LOG_TARGET_AUTO, verb->log_fallback, log_journal_sink);
        /* Every verb may load the master key: no core file and no same-user peeking,
         * from before any key is read (common/secmem.h). */
        r = secmem_harden_process();
        if (r < 0) {
                log_error_errno(r, "cannot make the process non-dumpable: %m");
                return AS_EXIT_FAILURE;
        }
        /* The verb's argv: VERB, the options before it, the arguments after it. */
        verb_argv = text_argv_verb_first(argc, argv, v);
        if (!verb_argv) {
                log_error("out of memory");
                return AS_EXIT_FAILURE;
        }
        config_init(&c);
        config_path = find_config(argc, argv, &explicit);
        c.config_path = config_path;
        if (config_load(&c, config_path, explicit) < 0) {
                config_free(&c);
                free(verb_argv);
                return AS_EXIT_USAGE;
        }
        parsed_argv = verb_argv;
        r = verb->run(&c, argc - 1, verb_argv);
        parsed_argv = NULL;
        config_free(&c);
        free(verb_argv);
        return r;
}
