/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "ratelimit.h"
#include "settings.h"
#include "text.h"
#include "tpm.h"
#include "vaultd.h"

/* PCRs a PC-client TPM has (and vaultd/tpm.c accepts). */
#define CONFIG_PCR_COUNT 24

/* One setting as given on the command line or in the file, before they are merged. */
struct settings {
        const char *tcti, *state_dir, *socket_path, *socket_group, *pcrs;
        const char *groups[VAULTD_GROUPS_MAX];
        size_t n_groups;
        const char *admin_groups[VAULTD_GROUPS_MAX];
        size_t n_admin_groups;
        const char *auth_rate, *auth_burst;
        const char *nv_index;
        const char *key_file;
        const char *log_level;
};

static void help(void) {
        printf("Usage: vaultd [OPTIONS]\n"
               "\n"
               "The secure-vault device daemon: holds the TPM-sealed vault and serves vault operations.\n"
               "\n"
               "  -h --help                Show this help\n"
               "     --version             Show the version\n"
               "     --tcti CONF           TPM access (default: $VAULTD_TCTI, else the config file's\n"
               "                           tcti, else " VAULTD_DEFAULT_TCTI ")\n"
               "     --state-dir DIR       Where the vault file lives (default $STATE_DIRECTORY,\n"
               "                           else " VAULTD_DEFAULT_STATE_DIR ")\n"
               "     --socket PATH         Listen here unless started by socket activation\n"
               "     --socket-group NAME   Group owner of --socket (mode 0660)\n"
               "     --allow-group NAME    Members may use vaultd (repeatable; default " VAULTD_DEFAULT_GROUP ")\n"
               "     --admin-group NAME    Members may also provision, i.e. replace the vault\n"
               "                           (repeatable; default " VAULTD_DEFAULT_ADMIN_GROUP ")\n"
               "     --max-auth-rate N/UNIT\n"
               "                           Authentications allowed per s, min, h or d once the\n"
               "                           burst is used up; 0: no limit (default " VAULTD_DEFAULT_AUTH_RATE ")\n"
               "     --auth-burst N        Authentications allowed at once (default %d)\n"
               "     --pcrs LIST           Seal new vaults to these SHA-256 PCRs, e.g. 7,16\n"
               "     --config FILE         Settings as 'key = value' lines (default\n"
               "                           " VAULTD_DEFAULT_CONFIG "); the command line wins\n"
               "     --nv-index INDEX      vaultd's anti-rollback NV counter (default 0x%08x,\n"
               "                           range 0x%08x..0x%08x)\n"
               "     --key-file PATH       Secret the vault key's TPM auth value is derived from,\n"
               "                           outside the state directory; created when provisioning\n"
               "                           if missing; 'none' for no auth value (default\n"
               "                           $CREDENTIALS_DIRECTORY/" VAULTD_KEY_CREDENTIAL " if present, else\n"
               "                           " VAULTD_DEFAULT_KEY_FILE ")\n"
               "     --log-level LEVEL     Log messages up to LEVEL: err, warning, notice, info or\n"
               "                           debug, or 0..7 (default info)\n"
               "\n"
               "Exit status: 0 clean stop, 1 failure, 2 invalid setting.\n", VAULTD_DEFAULT_AUTH_BURST,
               VAULTD_DEFAULT_NV_INDEX, TPM_COUNTER_FIRST, TPM_COUNTER_LAST);
}

int config_parse_pcrs(const char *s, uint32_t *ret) {
        uint32_t mask = 0;
        const char *p = s;

        if (*p == '\0') {
                *ret = 0;
                return 0;
        }
        for (;;) {
                char *end;
                unsigned long v;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno != 0 || v >= CONFIG_PCR_COUNT || end - p > 2)
                        return -EINVAL;
                mask |= UINT32_C(1) << v;
                if (*end == '\0')
                        break;
                if (*end != ',')
                        return -EINVAL;
                p = end + 1;
        }
        *ret = mask;
        return 0;
}

/* An NV index in vaultd's counter range, decimal or 0x-hexadecimal. */
int config_parse_nv_index(const char *s, uint32_t *ret) {
        char *end;
        unsigned long v;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 0);
        if (errno != 0 || *end != '\0' || v < TPM_COUNTER_FIRST || v > TPM_COUNTER_LAST)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

static int add_group_to(const char **list, size_t *n, const char *name, const char *what, const char *where) {
        if (name[0] == '\0') {
                fprintf(stderr, "vaultd: %s: empty group name\n", where);
                return -EINVAL;
        }
        if (*n >= VAULTD_GROUPS_MAX) {
                fprintf(stderr, "vaultd: %s: more than %d %s groups\n", where, VAULTD_GROUPS_MAX, what);
                return -EINVAL;
        }
        list[(*n)++] = name;
        return 0;
}

static int add_group(struct settings *s, const char *name, const char *where) {
        return add_group_to(s->groups, &s->n_groups, name, "allowed", where);
}

static int add_admin_group(struct settings *s, const char *name, const char *where) {
        return add_group_to(s->admin_groups, &s->n_admin_groups, name, "admin", where);
}

/* The file's values, kept until config_load() has copied what it uses. */
struct file_values {
        struct settings *s;
        char **lines;
        size_t n;
};

static int set_from_file(const char *key, const char *value, const char *where, void *userdata) {
        struct file_values *fv = userdata;
        struct settings *s = fv->s;
        char *copy = strdup(value), **grown = realloc(fv->lines, (fv->n + 1) * sizeof *fv->lines);

        if (grown)
                fv->lines = grown;
        if (!copy || !grown) {
                free(copy);
                fprintf(stderr, "vaultd: out of memory\n");
                return -ENOMEM;
        }
        fv->lines[fv->n++] = copy;

        if (strcmp(key, "tcti") == 0)
                s->tcti = copy;
        else if (strcmp(key, "state-dir") == 0)
                s->state_dir = copy;
        else if (strcmp(key, "socket") == 0)
                s->socket_path = copy;
        else if (strcmp(key, "socket-group") == 0)
                s->socket_group = copy;
        else if (strcmp(key, "pcrs") == 0)
                s->pcrs = copy;
        else if (strcmp(key, "allow-group") == 0)
                return add_group(s, copy, where);
        else if (strcmp(key, "admin-group") == 0)
                return add_admin_group(s, copy, where);
        else if (strcmp(key, "max-auth-rate") == 0)
                s->auth_rate = copy;
        else if (strcmp(key, "auth-burst") == 0)
                s->auth_burst = copy;
        else if (strcmp(key, "nv-index") == 0)
                s->nv_index = copy;
        else if (strcmp(key, "key-file") == 0)
                s->key_file = copy;
        else if (strcmp(key, "log-level") == 0)
                s->log_level = copy;
        else {
                fprintf(stderr, "vaultd: %s: unknown key '%s'\n", where, key);
                return -EINVAL;
        }
        return 0;
}

/* The authentication rate limit: c->auth_rate is set (given or default); burst given or NULL. */
static int parse_auth_limit(const char *burst, struct vaultd_config *c) {
        unsigned long b = VAULTD_DEFAULT_AUTH_BURST;

        if (ratelimit_parse_rate(c->auth_rate, &c->auth_interval_usec) < 0) {
                fprintf(stderr, "vaultd: invalid authentication rate '%s': expected N/UNIT with N 1..%d and UNIT "
                        "s, min, h or d (e.g. " VAULTD_DEFAULT_AUTH_RATE "), or 0 for no limit\n",
                        c->auth_rate, RATELIMIT_COUNT_MAX);
                return -EINVAL;
        }
        if (burst && text_parse_unsigned(burst, 1, VAULTD_AUTH_BURST_MAX, &b) < 0) {
                fprintf(stderr, "vaultd: invalid authentication burst '%s': expected 1..%d\n", burst,
                        VAULTD_AUTH_BURST_MAX);
                return -EINVAL;
        }
        c->auth_burst = (unsigned) b;
        return 0;
}

static int dup_into(char **dst, const char *src) {
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

/* The key file: the setting ('none': no key file); else systemd's credential, if passed; else
 * the default path. *ret stays NULL for 'none'. */
static int resolve_key_file(const char *setting, char **ret) {
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        char path[4096];

        if (setting)
                return strcmp(setting, "none") == 0 ? 0 : dup_into(ret, setting);
        if (creds && creds[0] == '/' &&
            snprintf(path, sizeof path, "%s/%s", creds, VAULTD_KEY_CREDENTIAL) < (int) sizeof path &&
            access(path, F_OK) == 0)
                return dup_into(ret, path);
        return dup_into(ret, VAULTD_DEFAULT_KEY_FILE);
}

/* A backup of the state directory must not hold the key file: absolute, and not inside it (by
 * name; the directories are set by the administrator, not by an attacker). */
static bool key_file_valid(const char *key_file, const char *state_dir) {
        size_t n = strlen(state_dir);

        while (n > 1 && state_dir[n - 1] == '/')
                n--;
        if (key_file[0] != '/' || key_file[strlen(key_file) - 1] == '/')
                return false;
        return !(strncmp(key_file, state_dir, n) == 0 && (key_file[n] == '/' || key_file[n] == '\0'));
}

int config_load(int argc, char *argv[], struct vaultd_config *ret) {
        enum { ARG_VERSION = 0x100, ARG_TCTI, ARG_STATE_DIR, ARG_SOCKET, ARG_SOCKET_GROUP,
               ARG_ALLOW_GROUP, ARG_PCRS, ARG_CONFIG, ARG_ADMIN_GROUP, ARG_MAX_AUTH_RATE, ARG_AUTH_BURST,
               ARG_NV_INDEX, ARG_KEY_FILE, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help",         no_argument,       NULL, 'h' },
                { "version",      no_argument,       NULL, ARG_VERSION },
                { "tcti",         required_argument, NULL, ARG_TCTI },
                { "state-dir",    required_argument, NULL, ARG_STATE_DIR },
                { "socket",       required_argument, NULL, ARG_SOCKET },
                { "socket-group", required_argument, NULL, ARG_SOCKET_GROUP },
                { "allow-group",  required_argument, NULL, ARG_ALLOW_GROUP },
                { "pcrs",         required_argument, NULL, ARG_PCRS },
                { "config",       required_argument, NULL, ARG_CONFIG },
                { "admin-group",  required_argument, NULL, ARG_ADMIN_GROUP },
                { "max-auth-rate", required_argument, NULL, ARG_MAX_AUTH_RATE },
                { "auth-burst",   required_argument, NULL, ARG_AUTH_BURST },
                { "nv-index",     required_argument, NULL, ARG_NV_INDEX },
                { "key-file",     required_argument, NULL, ARG_KEY_FILE },
                { "log-level",    required_argument, NULL, ARG_LOG_LEVEL },
                { 0 }
        };
        struct settings cli = { 0 }, file = { 0 }, *g;
        struct vaultd_config c = { 0 };
        const char *config_path = NULL, *state_dir, *env_tcti;
        struct file_values fv = { .s = &file };
        char err[4400];
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        help();
                        return 1;
                case ARG_VERSION:
                        printf("vaultd " PACKAGE_VERSION "\n");
                        return 1;
                case ARG_TCTI:
                        cli.tcti = optarg;
                        break;
                case ARG_STATE_DIR:
                        cli.state_dir = optarg;
                        break;
                case ARG_SOCKET:
                        cli.socket_path = optarg;
                        break;
                case ARG_SOCKET_GROUP:
                        cli.socket_group = optarg;
                        break;
                case ARG_ALLOW_GROUP:
                        if (add_group(&cli, optarg, "--allow-group") < 0)
                                return -EINVAL;
                        break;
                case ARG_PCRS:
                        cli.pcrs = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_ADMIN_GROUP:
                        if (add_admin_group(&cli, optarg, "--admin-group") < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_AUTH_RATE:
                        cli.auth_rate = optarg;
                        break;
                case ARG_AUTH_BURST:
                        cli.auth_burst = optarg;
                        break;
                case ARG_NV_INDEX:
                        cli.nv_index = optarg;
                        break;
                case ARG_KEY_FILE:
                        cli.key_file = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        cli.log_level = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "vaultd: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }

        r = settings_read(config_path ?: VAULTD_DEFAULT_CONFIG, config_path != NULL, set_from_file, &fv,
                          err, sizeof err);
        if (r < 0) {
                if (err[0])
                        fprintf(stderr, "vaultd: %s\n", err);
                goto out;
        }

        /* The command line wins over the file, setting by setting; each list of groups as a whole. */
        state_dir = cli.state_dir ?: file.state_dir;
        if (!state_dir) {
                /* systemd may pass several directories separated by ':'; ours is the first. */
                const char *env = getenv("STATE_DIRECTORY");

                state_dir = env && *env ? env : VAULTD_DEFAULT_STATE_DIR;
        }
        /* Like tpm2-tools' TPM2TOOLS_TCTI: the option, else $VAULTD_TCTI, else the file. */
        env_tcti = getenv("VAULTD_TCTI");
        if (env_tcti && !*env_tcti)
                env_tcti = NULL;
        r = dup_into(&c.tcti, cli.tcti ?: env_tcti ?: file.tcti ?: VAULTD_DEFAULT_TCTI);
        if (r >= 0)
                r = dup_into(&c.state_dir, state_dir);
        if (r >= 0)
                r = dup_into(&c.socket_path, cli.socket_path ?: file.socket_path);
        if (r >= 0)
                r = dup_into(&c.socket_group, cli.socket_group ?: file.socket_group);
        g = cli.n_groups > 0 ? &cli : &file;
        for (size_t i = 0; r >= 0 && i < g->n_groups; i++)
                r = dup_into(&c.allow_groups[c.n_allow_groups++], g->groups[i]);
        if (r >= 0 && c.n_allow_groups == 0)
                r = dup_into(&c.allow_groups[c.n_allow_groups++], VAULTD_DEFAULT_GROUP);
        g = cli.n_admin_groups > 0 ? &cli : &file;
        for (size_t i = 0; r >= 0 && i < g->n_admin_groups; i++)
                r = dup_into(&c.admin_groups[c.n_admin_groups++], g->admin_groups[i]);
        if (r >= 0 && c.n_admin_groups == 0)
                r = dup_into(&c.admin_groups[c.n_admin_groups++], VAULTD_DEFAULT_ADMIN_GROUP);
        if (r >= 0)
                r = dup_into(&c.auth_rate, cli.auth_rate ?: file.auth_rate ?: VAULTD_DEFAULT_AUTH_RATE);
        if (r >= 0)
                r = resolve_key_file(cli.key_file ?: file.key_file, &c.key_file);
        if (r < 0) {
                fprintf(stderr, "vaultd: out of memory\n");
                goto out;
        }
        if (c.state_dir) {
                char *colon = strchr(c.state_dir, ':');
                if (colon && !cli.state_dir && !file.state_dir)
                        *colon = '\0';
        }

        c.nv_index = VAULTD_DEFAULT_NV_INDEX;
        c.log_level = LOG_INFO;
        if (c.tcti[0] == '\0') {
                fprintf(stderr, "vaultd: invalid TCTI '': must not be empty\n");
                r = -EINVAL;
        } else if (c.state_dir[0] != '/') {
                fprintf(stderr, "vaultd: invalid state directory '%s': must be an absolute path\n", c.state_dir);
                r = -EINVAL;
        } else if (c.socket_path && (c.socket_path[0] == '\0' ||
                                     strlen(c.socket_path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))) {
                fprintf(stderr, "vaultd: invalid socket path '%s': empty or longer than %zu bytes\n",
                        c.socket_path, sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1);
                r = -EINVAL;
        } else if ((cli.pcrs ?: file.pcrs) && config_parse_pcrs(cli.pcrs ?: file.pcrs, &c.pcr_mask) < 0) {
                fprintf(stderr, "vaultd: invalid PCR list '%s': expected comma-separated numbers 0..%d, e.g. 7,16\n",
                        cli.pcrs ?: file.pcrs, CONFIG_PCR_COUNT - 1);
                r = -EINVAL;
        } else if (c.key_file && !key_file_valid(c.key_file, c.state_dir)) {
                fprintf(stderr, "vaultd: invalid key file '%s': must be an absolute path outside the state directory\n",
                        c.key_file);
                r = -EINVAL;
        } else if ((cli.nv_index ?: file.nv_index) &&
                   config_parse_nv_index(cli.nv_index ?: file.nv_index, &c.nv_index) < 0) {
                fprintf(stderr, "vaultd: invalid NV index '%s': expected a number in 0x%08x..0x%08x\n",
                        cli.nv_index ?: file.nv_index, TPM_COUNTER_FIRST, TPM_COUNTER_LAST);
                r = -EINVAL;
        }
        if (r >= 0)
                r = parse_auth_limit(cli.auth_burst ?: file.auth_burst, &c);
        if (r >= 0 && (cli.log_level ?: file.log_level)) {
                int level = log_level_from_string(cli.log_level ?: file.log_level);

                if (level < 0) {
                        fprintf(stderr, "vaultd: invalid log level '%s': expected emerg, alert, crit, err, warning, "
                                "notice, info, debug or 0..7\n", cli.log_level ?: file.log_level);
                        r = -EINVAL;
                } else
                        c.log_level = level;
        }
out:
        for (size_t i = 0; i < fv.n; i++)
                free(fv.lines[i]);
        free(fv.lines);
        if (r < 0) {
                config_free(&c);
                return r == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        *ret = c;
        return 0;
}

void config_free(struct vaultd_config *c) {
        free(c->tcti);
        free(c->state_dir);
        free(c->socket_path);
        free(c->socket_group);
        free(c->key_file);
        for (size_t i = 0; i < c->n_allow_groups; i++)
                free(c->allow_groups[i]);
        for (size_t i = 0; i < c->n_admin_groups; i++)
                free(c->admin_groups[i]);
        free(c->auth_rate);
        *c = (struct vaultd_config) { 0 };
}
