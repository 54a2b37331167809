/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "authserver.h"
#include "secmem.h"
#include "settings.h"
#include "text.h"

void config_init(struct config *c) {
        *c = (struct config) {
                .config_path = AUTHSERVER_CONFIG_PATH,
                .timeout_ms = AUTHSERVER_DEFAULT_TIMEOUT_MS,
                .hello_timeout_ms = AUTHSERVER_DEFAULT_HELLO_TIMEOUT_MS,
                .max_connections = AUTHSERVER_DEFAULT_MAX_CONN,
                .max_per_address = AUTHSERVER_DEFAULT_MAX_PER_ADDR,
                .max_records = AUTHSERVER_DEFAULT_MAX_RECORDS,
                .channel_idle_ms = AUTHSERVER_DEFAULT_CHANNEL_IDLE_MS,
                .decoy_n = SV_DEFAULT_N,
                .decoy_p = SV_DEFAULT_P,
                .enroll_kex = AUTHSERVER_ENROLL_KEX_UNSET,
                .audit_retention_s = AUTHSERVER_DEFAULT_AUDIT_RETENTION * 86400ULL,
                .sink_timeout_ms = AUTHSERVER_DEFAULT_SINK_TIMEOUT_MS,
        };
}

/* The --db value may be a connection string with a password in it: wiped where it goes. */
static void string_wipe_free(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
}

void config_free(struct config *c) {
        string_wipe_free(c->db_path);
        free(c->master_key_path);
        free(c->sink_path);
        free(c->control_path);
        free(c->control_group);
        free(c->metrics);
        free(c->server_id);
        for (unsigned i = 0; i < c->n_listen; i++)
                free(c->listen[i]);
        config_init(c);
}

int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long v;

        if (text_parse_unsigned(s, min, max, &v) < 0)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int set_string(char **field, const char *value) {
        char *copy = strdup(value);

        if (!copy)
                return -ENOMEM;
        string_wipe_free(*field);
        *field = copy;
        return 0;
}

/*
 * "host:port", "[v6]:port" or "*:port", checked when it is read so that a typo is a usage
 * error at start: getaddrinfo() would take "99999" modulo 65536 and listen on a port nobody
 * asked for. The host is only resolved when the server listens.
 */
static int listen_spec_valid(const char *spec) {
        char host[256];
        const char *port;
        unsigned long v;

        if (text_split_host_port(spec, host, sizeof host, &port) < 0)
                return -EINVAL;
        /* An IPv6 address needs its brackets, else its last group would be taken as the port. */
        if (spec[0] != '[' && strchr(host, ':'))
                return -EINVAL;
        return text_parse_unsigned(port, 0, 65535, &v);
}

/* One setting, from the command line or the config file; `origin` names it in errors. */
int config_set(struct config *c, const char *key, const char *value, const char *origin) {
        unsigned v;

        if (strcmp(key, "db") == 0)
                return set_string(&c->db_path, value);
        if (strcmp(key, "master-key") == 0)
                return set_string(&c->master_key_path, value);
        if (strcmp(key, "listen") == 0) {
                if (listen_spec_valid(value) < 0)
                        return log_error_errno(EINVAL, "%s: invalid listen address '%s': expected HOST:PORT, "
                                               "[IPv6]:PORT or *:PORT with a port 0..65535", origin, value);
                if (c->n_listen == AUTHSERVER_LISTEN_MAX)
                        return log_error_errno(E2BIG, "%s: at most %d listen addresses", origin,
                                               AUTHSERVER_LISTEN_MAX);
                c->listen[c->n_listen] = strdup(value);
                if (!c->listen[c->n_listen])
                        return -ENOMEM;
                c->n_listen++;
                return 0;
        }
        if (strcmp(key, "timeout") == 0) {
                if (parse_unsigned(value, 1, 3600, &v) < 0)
                        goto bad;
                c->timeout_ms = v * 1000;
                return 0;
        }
        if (strcmp(key, "hello-timeout") == 0) {
                if (parse_unsigned(value, 1, 3600, &v) < 0)
                        goto bad;
                c->hello_timeout_ms = v * 1000;
                return 0;
        }
        if (strcmp(key, "max-connections") == 0) {
                if (parse_unsigned(value, 1, 1000000, &v) < 0)
                        goto bad;
                c->max_connections = v;
                return 0;
        }
        if (strcmp(key, "max-connections-per-address") == 0) {
                if (parse_unsigned(value, 0, 1000000, &v) < 0)
                        goto bad;
                c->max_per_address = v;
                return 0;
        }
        if (strcmp(key, "workers") == 0) {
                if (parse_unsigned(value, 1, AUTHSERVER_WORKERS_MAX, &v) < 0)
                        return log_error_errno(EINVAL, "%s: invalid value '%s' for 'workers': expected 1..%d "
                                               "protocol threads", origin, value, AUTHSERVER_WORKERS_MAX);
                c->workers = v;
                return 0;
        }
        if (strcmp(key, "max-records") == 0) {
                if (parse_unsigned(value, 1, 1000000, &v) < 0)
                        goto bad;
                c->max_records = v;
                return 0;
        }
        if (strcmp(key, "channel-idle-timeout") == 0) {
                if (parse_unsigned(value, 1, 3600, &v) < 0)
                        goto bad;
                c->channel_idle_ms = v * 1000;
                return 0;
        }
        if (strcmp(key, "sink") == 0) {
                /* A path a Unix socket address can hold (sun_path, with its NUL). */
                if (value[0] == '\0' || strlen(value) >= sizeof ((struct sockaddr_un *) NULL)->sun_path)
                        return log_error_errno(EINVAL, "%s: invalid sink path '%s': expected 1..%zu bytes",
                                               origin, value, sizeof ((struct sockaddr_un *) NULL)->sun_path - 1);
                return set_string(&c->sink_path, value);
        }
        if (strcmp(key, "control") == 0) {
                if (value[0] == '\0' || strlen(value) >= sizeof ((struct sockaddr_un *) NULL)->sun_path)
                        goto bad;
                return set_string(&c->control_path, value);
        }
        if (strcmp(key, "control-group") == 0) {
                if (value[0] == '\0' || strlen(value) > 64)
                        goto bad;
                return set_string(&c->control_group, value);
        }
        if (strcmp(key, "server-id") == 0) {
                size_t len = strlen(value);

                if (len == 0 || len > AUTHSERVER_SERVER_ID_MAX ||
                    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/-") != len)
                        return log_error_errno(EINVAL, "%s: invalid server id: expected 1..%d letters, digits "
                                               "or . _ : @ / -, e.g. the host name", origin,
                                               AUTHSERVER_SERVER_ID_MAX);
                return set_string(&c->server_id, value);
        }
        if (strcmp(key, "metrics") == 0) {
                if (listen_spec_valid(value) < 0)
                        return log_error_errno(EINVAL, "%s: invalid metrics address '%s': expected HOST:PORT, "
                                               "e.g. 127.0.0.1:9410", origin, value);
                return set_string(&c->metrics, value);
        }
        if (strcmp(key, "sink-keys") == 0) {
                if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
                        c->sink_keys = true;
                else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
                        c->sink_keys = false;
                else
                        goto bad;
                return 0;
        }
        if (strcmp(key, "sink-timeout") == 0) {
                if (parse_unsigned(value, 1, 3600, &v) < 0)
                        goto bad;
                c->sink_timeout_ms = v * 1000;
                return 0;
        }
        if (strcmp(key, "decoy-n") == 0) {
                if (parse_unsigned(value, SV_N_MIN, SV_N_MAX, &v) < 0)
                        goto bad;
                c->decoy_n = (uint16_t) v;
                return 0;
        }
        if (strcmp(key, "decoy-p") == 0) {
                if (parse_unsigned(value, SV_P_MIN, SV_P_MAX, &v) < 0)
                        goto bad;
                c->decoy_p = (uint8_t) v;
                return 0;
        }
        if (strcmp(key, "enroll-kex") == 0) {
                int kex = profile_kex_from_name(value);

                if (kex < 0)
                        goto bad;
                c->enroll_kex = kex;
                return 0;
        }
        /* Takes effect at once, so that it also governs the messages of the settings after it. */
        if (strcmp(key, "log-level") == 0) {
                int level = log_level_from_string(value);

                if (level < 0)
                        goto bad;
                log_set_max_level(level);
                return 0;
        }
        if (strcmp(key, "audit-retention") == 0) {
                if (text_parse_duration(value, 86400, AUTHSERVER_AUDIT_RETENTION_MAX_S, &c->audit_retention_s) < 0)
                        goto bad;
                return 0;
        }
        return log_error_errno(EINVAL, "%s: unknown setting '%s'", origin, key);
bad:
        return log_error_errno(EINVAL, "%s: invalid value '%s' for '%s'", origin, value, key);
}

/*
 * A decoy challenge draws decoy-p distinct indices below decoy-n; PROTOCOL.md §2 allows only
 * 2p <= n. Outside that range every decoy would fail to build while real devices are still
 * answered, and an ERROR instead of an M2 would tell which ids do not exist.
 */
int config_check(const struct config *c, const char *origin) {
        if (2 * (unsigned) c->decoy_p > c->decoy_n)
                return log_error_errno(EINVAL, "%s: decoy-p %u needs decoy-n of at least %u, got %u "
                                       "(2p <= n, PROTOCOL.md section 2)", origin, (unsigned) c->decoy_p,
                                       2 * (unsigned) c->decoy_p, (unsigned) c->decoy_n);
        return 0;
}

static int config_set_from_file(const char *key, const char *value, const char *where, void *userdata) {
        return config_set(userdata, key, value, where);
}

int config_load(struct config *c, const char *path, bool required) {
        char err[4400];
        int r;

        r = settings_read(path, required, config_set_from_file, c, err, sizeof err);
        if (r < 0 && err[0])
                log_error("%s", err);
        if (r < 0)
                return r;
        /* The file's settings may come in any order: check them together once all are read. */
        return config_check(c, path);
}

int config_master_key(const struct config *c, uint8_t key[STORE_MASTER_KEY_LEN]) {
        char path[4096];
        const char *creds;
        int r;

        if (c->master_key_path)
                snprintf(path, sizeof path, "%s", c->master_key_path);
        else if ((creds = getenv("CREDENTIALS_DIRECTORY")))
                snprintf(path, sizeof path, "%s/%s", creds, AUTHSERVER_CREDENTIAL_NAME);
        else
                return log_error_errno(ENOKEY, "no master key: pass --master-key FILE or run under systemd "
                                       "with LoadCredential=%s", AUTHSERVER_CREDENTIAL_NAME);
        r = store_master_key_load(path, key);
        if (r < 0)
                return log_error_errno(r, "cannot load master key '%s': %s", path, store_last_error(NULL));
        return 0;
}

/* The key passes from its file to the store in a locked page only (common/secmem.h). */
int config_open_store(const struct config *c, int flags, struct store **ret) {
        uint8_t *key = NULL;
        const char *path = c->db_path ? c->db_path : AUTHSERVER_DEFAULT_DB;
        int r;

        /* The read-only admin verbs: no key is loaded at all. */
        if (flags & STORE_NO_KEY) {
                r = store_open(path, NULL, flags, ret);
                goto opened;
        }
        r = secmem_alloc(STORE_MASTER_KEY_LEN, (void **) &key);
        if (r < 0)
                return log_error_errno(r, "cannot lock memory for the master key: %m (RLIMIT_MEMLOCK?)");
        r = config_master_key(c, key);
        if (r < 0) {
                secmem_free(key, STORE_MASTER_KEY_LEN);
                return r;
        }
        r = store_open(path, key, flags, ret);
        secmem_free(key, STORE_MASTER_KEY_LEN);
        /* Said once, with the file to check (the store's own message names the database again). */
        if (r == -EKEYREJECTED)
                return log_error_errno(r, "the master key does not open %s%s%s: wrong --master-key file%s%s%s? "
                                       "(a database opens only with the key 'authserver init' made for it)",
                                       store_path_is_postgresql(path) ? "the PostgreSQL database" : "database '",
                                       store_path_is_postgresql(path) ? "" : path,
                                       store_path_is_postgresql(path) ? "" : "'",
                                       c->master_key_path ? " '" : "", c->master_key_path ?: "",
                                       c->master_key_path ? "'" : "");
opened:
        if (r < 0 && store_path_is_postgresql(path))
                return log_error_errno(r, "cannot open the PostgreSQL database: %s", store_last_error(NULL));
        if (r < 0)
                return log_error_errno(r, "cannot open database '%s': %s", path, store_last_error(NULL));
        return 0;
}
