/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authserver.h"
#include "bundle.h"
#include "cleanup.h"
#include "control.h"
#include "crypto.h"

/*
 * init creates nothing before it knows where the database goes: a SQLite database's directory
 * must exist already (init does not choose its owner and mode). 0 if it does, or for a
 * PostgreSQL connection string; AS_EXIT_DATABASE with a message naming the next step if not.
 */
static int init_check_db_dir(const char *path) {
        char dir[PATH_MAX];
        const char *slash;
        struct stat st;
        size_t n;

        if (store_path_is_postgresql(path))
                return 0;
        slash = strrchr(path, '/');
        if (!slash)
                return 0;                       /* the working directory */
        n = slash == path ? 1 : (size_t) (slash - path);
        if (n >= sizeof(dir)) {
                log_error("database path '%s' is too long", path);
                return AS_EXIT_DATABASE;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
        if (stat(dir, &st) < 0) {
                if (errno == ENOENT)
                        log_error("cannot create database '%s': directory '%s' does not exist; create it "
                                  "(for the service: install -d -m 0700 -o authserver -g authserver %s) "
                                  "and run init again; nothing was created", path, dir, dir);
                else
                        log_error_errno(-errno, "cannot create database '%s': directory '%s': %m", path, dir);
                return AS_EXIT_DATABASE;
        }
        if (!S_ISDIR(st.st_mode)) {
                log_error("cannot create database '%s': '%s' is not a directory; nothing was created", path, dir);
                return AS_EXIT_DATABASE;
        }
        return 0;
}

int verb_init(struct config *c, int argc, char *argv[]) {
        static const struct option options[] = { COMMON_OPTIONS, { 0 } };
        struct store *s = NULL;
        bool key_created;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'h') {
                        printf("Usage: authserver init --db PATH --master-key FILE\n\n"
                               "Create a new master key file (mode 0600) and an empty device database.\n");
                        common_options_help();
                        return AS_EXIT_OK;
                } else if (common_option(c, opt, optarg) <= 0)
                        return AS_EXIT_USAGE;
        if (optind != argc || !c->master_key_path) {
                log_error("init needs --master-key FILE and takes no arguments");
                return AS_EXIT_USAGE;
        }
        r = init_check_db_dir(c->db_path ? c->db_path : AUTHSERVER_DEFAULT_DB);
        if (r != 0)
                return r;
        r = store_master_key_create(c->master_key_path);
        key_created = r >= 0;
        if (r == -EEXIST)
                log_notice("master key '%s' exists: using it", c->master_key_path);
        else if (r < 0) {
                log_error_errno(r, "cannot create master key '%s': %s", c->master_key_path,
                                store_last_error(NULL));
                return AS_EXIT_FAILURE;
        }
        r = config_open_store(c, STORE_CREATE, &s);
        if (r < 0) {
                /* A failed init leaves no key behind for a database that does not exist. */
                if (key_created) {
                        if (unlink(c->master_key_path) < 0)
                                log_error_errno(-errno, "cannot remove the new master key '%s': %m",
                                                c->master_key_path);
                        else
                                log_notice("removed the new master key '%s': run init again once the database "
                                           "can be created", c->master_key_path);
                }
                return AS_EXIT_DATABASE;
        }
        store_close(s);
        /* A connection string may hold a password: not echoed. */
        if (c->db_path && store_path_is_postgresql(c->db_path))
                printf("PostgreSQL database ready, master key %s\n", c->master_key_path);
        else
                printf("database %s ready, master key %s\n", c->db_path ? c->db_path : AUTHSERVER_DEFAULT_DB,
                       c->master_key_path);
        return AS_EXIT_OK;
}

struct enroll_args {
        struct vault_params params;
        int kex;                        /* SV_KEX_*, or AUTHSERVER_ENROLL_KEX_UNSET */
        const char *server;
        const char *out;
};

static int write_all(int fd, const char *text, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, text, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                text += n;
                len -= (size_t) n;
        }
        return 0;
}

/*
 * The device's key share mode (protocol 1.1 §10): --kex, else for a hardened device the
 * enroll-kex setting, else AUTHSERVER_ENROLL_KEX_HARDENED_DEFAULT; a paper device has none only.
 */
static int enroll_kex(const struct config *c, struct enroll_args *a) {
        if (a->kex == AUTHSERVER_ENROLL_KEX_UNSET) {
                if (a->params.profile != SV_PROFILE_HARDENED)
                        a->kex = SV_KEX_NONE;
                else if (c->enroll_kex != AUTHSERVER_ENROLL_KEX_UNSET)
                        a->kex = c->enroll_kex;
                else
                        a->kex = AUTHSERVER_ENROLL_KEX_HARDENED_DEFAULT;
        }
        if (!profile_entry(a->params.profile, (uint64_t) a->kex))
                return log_error_errno(EINVAL, "--kex %s needs the hardened profile, not %s",
                                       profile_kex_name((uint64_t) a->kex), vault_profile_to_string(a->params.profile));
        return 0;
}

static int parse_enroll(struct config *c, int argc, char *argv[], struct enroll_args *a) {
        enum { ARG_DEVICE = 0x200, ARG_PROFILE, ARG_KEYS, ARG_KEY_BYTES, ARG_CHALLENGE, ARG_SERVER, ARG_OUT, ARG_KEX };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "device",    required_argument, NULL, ARG_DEVICE },
                { "profile",   required_argument, NULL, ARG_PROFILE },
                { "keys",      required_argument, NULL, ARG_KEYS },
                { "key-bytes", required_argument, NULL, ARG_KEY_BYTES },
                { "challenge", required_argument, NULL, ARG_CHALLENGE },
                { "server",    required_argument, NULL, ARG_SERVER },
                { "out",       required_argument, NULL, ARG_OUT },
                { "kex",       required_argument, NULL, ARG_KEX },
                { 0 }
        };
        unsigned v;
        int opt, profile;

        a->params = (struct vault_params) { .profile = SV_PROFILE_HARDENED, .n = SV_DEFAULT_N, .m = SV_DEFAULT_M, .p = SV_DEFAULT_P };
        a->kex = AUTHSERVER_ENROLL_KEX_UNSET;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        printf("Usage: authserver enroll --device ID [--profile hardened|paper] [--keys N]\n"
                               "         [--key-bytes 16|32] [--challenge P] [--kex none|x25519]\n"
                               "         [--server HOST:PORT] --out BUNDLE\n\n"
                               "Create a device with a fresh random vault (epoch 0) and write its enrollment\n"
                               "bundle (mode 0600). Defaults: hardened, %d keys of %d bytes, %d per challenge,\n"
                               "kex %s (x25519: hardened only; setting enroll-kex).\n",
                               SV_DEFAULT_N, SV_DEFAULT_M, SV_DEFAULT_P,
                               profile_kex_name(AUTHSERVER_ENROLL_KEX_HARDENED_DEFAULT));
                        common_options_help();
                        return 1;
                case ARG_DEVICE:
                        if (vault_params_set_id(&a->params, optarg) < 0) {
                                return log_error_errno(EINVAL, "invalid device id '%s': 1..64 of [A-Za-z0-9._:-]",
                                                       optarg);
                        }
                        break;
                case ARG_PROFILE:
                        profile = vault_profile_from_string(optarg);
                        if (profile < 0) {
                                return log_error_errno(EINVAL, "invalid profile '%s': hardened or paper", optarg);
                        }
                        a->params.profile = (uint8_t) profile;
                        break;
                case ARG_KEYS:
                        if (parse_unsigned(optarg, SV_N_MIN, SV_N_MAX, &v) < 0) {
                                return log_error_errno(EINVAL, "invalid --keys '%s': %d..%d", optarg,
                                                       SV_N_MIN, SV_N_MAX);
                        }
                        a->params.n = (uint16_t) v;
                        break;
                case ARG_KEY_BYTES:
                        if (parse_unsigned(optarg, 16, 32, &v) < 0 || (v != 16 && v != 32)) {
                                return log_error_errno(EINVAL, "invalid --key-bytes '%s': 16 or 32", optarg);
                        }
                        a->params.m = (uint8_t) v;
                        break;
                case ARG_CHALLENGE:
                        if (parse_unsigned(optarg, SV_P_MIN, SV_P_MAX, &v) < 0) {
                                return log_error_errno(EINVAL, "invalid --challenge '%s': %d..%d", optarg,
                                                       SV_P_MIN, SV_P_MAX);
                        }
                        a->params.p = (uint8_t) v;
                        break;
                case ARG_SERVER:
                        if (!bundle_server_valid(optarg)) {
                                return log_error_errno(EINVAL, "invalid --server '%s': HOST:PORT or [V6]:PORT",
                                                       optarg);
                        }
                        a->server = optarg;
                        break;
                case ARG_OUT:
                        a->out = optarg;
                        break;
                case ARG_KEX:
                        a->kex = profile_kex_from_name(optarg);
                        if (a->kex < 0)
                                return log_error_errno(EINVAL, "invalid --kex '%s': none or x25519", optarg);
                        break;
                default:
                        if (common_option(c, opt, optarg) <= 0)
                                return -EINVAL;
                }
        if (optind != argc || !a->params.id_len || !a->out)
                return log_error_errno(EINVAL, "enroll needs --device ID and --out BUNDLE");
        if (2u * a->params.p > a->params.n)
                return log_error_errno(EINVAL, "--challenge %u is too large for %u keys: 2p must not exceed n",
                                       a->params.p, a->params.n);
        return enroll_kex(c, a);
}

/* Creates the bundle file, enrolls the device, then writes the bundle: a bundle that could
 * not be written leaves no file behind and its device revoked. Returns an exit code. */
static int enroll_write(struct admin_db *s, const struct enroll_args *a, const struct bundle *b,
                        const char *text, size_t text_len) {
        _cleanup_close_ int fd = -EBADF;
        struct store_device dev = { 0 };
        int r;

        /* The bundle file first, exclusively, so an existing file is never overwritten. */
        fd = open(a->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                log_error_errno(errno, "cannot create bundle '%s': %m", a->out);
                return AS_EXIT_FAILURE;
        }
        memcpy(dev.id, b->params.device_id, b->params.id_len + 1u);
        dev.profile = b->params.profile;
        dev.n = b->params.n;
        dev.m = b->params.m;
        dev.p = b->params.p;
        dev.kex = b->kex;
        r = admin_db_enroll(s, &dev, b->vault, vault_size(&b->params));
        if (r < 0) {
                log_error_errno(r, "cannot enroll device '%s': %s", dev.id, admin_db_last_error(s));
                (void) unlink(a->out);
                return r == -EEXIST ? AS_EXIT_EXISTS : AS_EXIT_DATABASE;
        }
        r = write_all(fd, text, text_len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                log_error_errno(r, "cannot write bundle '%s': %m; revoking '%s'", a->out, dev.id);
                (void) admin_db_revoke(s, dev.id);
                (void) unlink(a->out);
                return AS_EXIT_FAILURE;
        }
        (void) admin_db_audit(s, dev.id, "enrolled");
        printf("enrolled device '%s' (%s, n=%u, m=%u, p=%u, kex %s); bundle written to %s\n", dev.id,
               vault_profile_to_string(dev.profile), dev.n, dev.m, dev.p, profile_kex_name(dev.kex), a->out);
        return AS_EXIT_OK;
}

int verb_enroll(struct config *c, int argc, char *argv[]) {
        _cleanup_(admin_db_closep) struct admin_db *s = NULL;
        struct enroll_args a = { 0 };
        struct bundle b = { 0 };
        char *text = NULL;
        size_t text_len = 0;
        int r, ret;

        r = parse_enroll(c, argc, argv, &a);
        if (r != 0)
                return r > 0 ? AS_EXIT_OK : AS_EXIT_USAGE;
        r = admin_db_open(c, ADMIN_DB_WRITE, &s);
        if (r < 0)
                return AS_EXIT_DATABASE;

        b.params = a.params;
        b.kex = (uint8_t) a.kex;
        if (a.server)
                snprintf(b.server, sizeof b.server, "%s", a.server);
        b.vault = malloc(vault_size(&b.params));
        if (!b.vault || crypto_random(b.vault, vault_size(&b.params)) < 0 ||
            bundle_format(&b, &text, &text_len) < 0) {
                log_error("cannot create a vault: out of memory or randomness");
                ret = AS_EXIT_FAILURE;
        } else
                ret = enroll_write(s, &a, &b, text, text_len);
        /* The vault and its bundle text, wiped on every path. */
        bundle_text_free(text, text_len);
        bundle_free(&b);
        return ret;
}

/* Parses `VERB [--json] [COMMON] [ID]`; `want_id` says whether one ID is required; usage is one
 * line without its newline. */
static int parse_id_verb(struct config *c, int argc, char *argv[], bool want_id, bool *json,
                         const char **ret_id, const char *usage) {
        enum { ARG_JSON = 0x200, ARG_DEVICE };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "json",   no_argument,       NULL, ARG_JSON },
                { "device", required_argument, NULL, ARG_DEVICE },      /* the ID, as an option */
                { 0 }
        };
        const char *id = NULL;
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'h') {
                        printf("%s\n", usage);
                        common_options_help();
                        return 1;
                } else if (opt == ARG_JSON && json) {
                        *json = true;
                        /* Errors too as JSON, one object per line on stderr. */
                        log_open(NULL, LOG_TARGET_JSON, LOG_TARGET_JSON, NULL);
                } else if (opt == ARG_DEVICE && want_id)
                        id = optarg;
                else if (common_option(c, opt, optarg) <= 0)
                        return -EINVAL;
        if (argc - optind != (want_id && !id ? 1 : 0))
                return log_error_errno(EINVAL, "%s", usage);
        if (want_id) {
                if (!id)
                        id = argv[optind];
                if (!vault_device_id_valid(id, strlen(id)))
                        return log_error_errno(EINVAL, "invalid device id '%s'", id);
                *ret_id = id;
        }
        return 0;
}

int verb_revoke(struct config *c, int argc, char *argv[]) {
        _cleanup_(admin_db_closep) struct admin_db *s = NULL;
        const char *id = NULL;
        int r;

        r = parse_id_verb(c, argc, argv, true, NULL, &id, "Usage: authserver revoke ID|--device ID");
        if (r != 0)
                return r > 0 ? AS_EXIT_OK : AS_EXIT_USAGE;
        if (admin_db_open(c, ADMIN_DB_WRITE, &s) < 0)
                return AS_EXIT_DATABASE;
        r = admin_db_revoke(s, id);
        if (r < 0) {
                log_error_errno(r, "cannot revoke '%s': %s", id, admin_db_last_error(s));
                return r == -ENOENT ? AS_EXIT_NOT_FOUND : AS_EXIT_DATABASE;
        }
        (void) admin_db_audit(s, id, "revoked");
        printf("device '%s' %s\n", id, r > 0 ? "revoked; its vaults are erased" : "was already revoked");
        return AS_EXIT_OK;
}

static void format_time(int64_t t, char *buf, size_t cap) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm))
                snprintf(buf, cap, "never");
        else
                strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A time in JSON: "YYYY-MM-DDTHH:MM:SSZ", or null for "never" (0). */
static void print_json_time(const char *name, int64_t t) {
        char buf[32];

        format_time(t, buf, sizeof buf);
        printf(",\"%s\":", name);
        if (t <= 0)
                printf("null");
        else
                printf("\"%s\"", buf);
}

/* The fields of a device row, without the braces (show adds its own after them). */
static void print_device_fields_json(const struct store_device *d) {
        printf("{\"id\":");
        json_string(d->id);
        printf(",\"status\":\"%s\",\"profile\":\"%s\",\"kex\":\"%s\",\"n\":%u,\"m\":%u,\"p\":%u,\"epoch\":%" PRIu64
               ",\"pending\":%s", d->status == STORE_ACTIVE ? "active" : "revoked", vault_profile_to_string(d->profile),
               profile_kex_name(d->kex), d->n, d->m, d->p, d->epoch, d->has_pending ? "true" : "false");
        print_json_time("created", d->created);
        print_json_time("last_success", d->last_success);
        print_json_time("last_failure", d->last_failure);
        printf(",\"failures\":%" PRIu32, d->failures);
}

static void print_device_json(const struct store_device *d) {
        printf("{");
        print_device_fields_json(d);
        printf("}");
}

/* show --json's "last_handshake": {"time","outcome","peer"} from the running server's text
 * line "TIME OUTCOME PEER", or null when it saw none (or no server answered). */
static void print_last_handshake_json(const char *line) {
        char time[64], outcome[64], peer[128];

        if (sscanf(line, "%63s %63s %127s", time, outcome, peer) != 3) {
                printf(",\"last_handshake\":null");
                return;
        }
        printf(",\"last_handshake\":{\"time\":");
        json_string(time);
        printf(",\"outcome\":");
        json_string(outcome);
        printf(",\"peer\":");
        json_string(peer);
        printf("}");
}

/*
 * The listing verbs (list, stats): with --json one JSON array of the rows, else a header and
 * a line per row. The verb's walk prints the header when !json, then each row through the
 * store's walk, a JSON row after the first led by a comma.
 */
struct listing {
        bool json;
        unsigned count;                 /* rows printed so far */
};
struct listing_verb {
        const char *usage;
        const char *what;               /* for the error: "cannot list <what>" */
        int (*walk)(struct admin_db *s, struct listing *l);
};

static int run_listing(struct config *c, int argc, char *argv[], const struct listing_verb *v) {
        _cleanup_(admin_db_closep) struct admin_db *s = NULL;
        struct listing l = { 0 };
        int r;

        r = parse_id_verb(c, argc, argv, false, &l.json, NULL, v->usage);
        if (r != 0)
                return r > 0 ? AS_EXIT_OK : AS_EXIT_USAGE;
        if (admin_db_open(c, ADMIN_DB_READ, &s) < 0)
                return AS_EXIT_DATABASE;
        if (l.json)
                printf("[");
        r = v->walk(s, &l);
        if (l.json)
                printf("]\n");
        if (r < 0) {
                log_error_errno(r, "cannot list %s: %s", v->what, admin_db_last_error(s));
                return AS_EXIT_DATABASE;
        }
        return AS_EXIT_OK;
}

static int list_one(const struct store_device *d, void *userdata) {
        struct listing *st = userdata;
        char success[32];

        if (st->json) {
                printf("%s", st->count ? "," : "");
                print_device_json(d);
        } else {
                format_time(d->last_success, success, sizeof success);
                printf("%-32s %-8s %-9s %20" PRIu64 " %-7s %-20s %" PRIu32 "\n", d->id,
                       d->status == STORE_ACTIVE ? "active" : "revoked", vault_profile_to_string(d->profile),
                       d->epoch, d->has_pending ? "yes" : "no", success, d->failures);
        }
        st->count++;
        return 0;
}

static int list_walk(struct admin_db *s, struct listing *l) {
        if (!l->json)
                printf("%-32s %-8s %-9s %20s %-7s %-20s %s\n", "DEVICE", "STATUS", "PROFILE", "EPOCH", "PENDING",
                       "LAST SUCCESS", "FAILURES");
        return admin_db_list(s, list_one, l);
}

int verb_list(struct config *c, int argc, char *argv[]) {
        static const struct listing_verb v = { "Usage: authserver list [--json]", "devices", list_walk };

        return run_listing(c, argc, argv, &v);
}

int verb_show(struct config *c, int argc, char *argv[]) {
        _cleanup_(admin_db_closep) struct admin_db *s = NULL;
        char last[256] = "";
        FILE *lf;
        struct store_device d;
        const char *id = NULL;
        bool json = false;
        char created[32], success[32], failure[32];
        int r;

        r = parse_id_verb(c, argc, argv, true, &json, &id, "Usage: authserver show ID|--device ID [--json]");
        if (r != 0)
                return r > 0 ? AS_EXIT_OK : AS_EXIT_USAGE;
        if (admin_db_open(c, ADMIN_DB_READ, &s) < 0)
                return AS_EXIT_DATABASE;
        /* No vault buffers: show never decrypts key material. The running server adds the
         * last handshake it saw (control.h). */
        lf = fmemopen(last, sizeof last - 1, "w");
        r = admin_db_get(s, id, &d, lf);
        if (lf)
                fclose(lf);
        if (r < 0) {
                log_error_errno(r, "cannot show '%s': %s", id, admin_db_last_error(s));
                return r == -ENOENT ? AS_EXIT_NOT_FOUND : AS_EXIT_DATABASE;
        }
        if (json) {
                printf("{");
                print_device_fields_json(&d);
                print_last_handshake_json(last);
                printf("}\n");
                return AS_EXIT_OK;
        }
        format_time(d.created, created, sizeof created);
        format_time(d.last_success, success, sizeof success);
        format_time(d.last_failure, failure, sizeof failure);
        printf("device:        %s\n"
               "status:        %s\n"
               "profile:       %s (n=%u, m=%u, p=%u)\n"
               "kex:           %s\n"
               "epoch:         %" PRIu64 "\n"
               "pending:       %s\n"
               "created:       %s\n"
               "last success:  %s\n"
               "last failure:  %s\n"
               "failures:      %" PRIu32 "\n"
               "%s%s%s",
               d.id, d.status == STORE_ACTIVE ? "active" : "revoked", vault_profile_to_string(d.profile),
               d.n, d.m, d.p, profile_kex_name(d.kex), d.epoch, d.has_pending ? "yes (next generation stored)" : "no",
               created, success, failure, d.failures, last[0] ? "last handshake: " : "", last, last[0] ? "\n" : "");
        return AS_EXIT_OK;
}

static int stats_one(const struct aggregate *a, void *userdata) {
        struct listing *st = userdata;

        /* Names are [A-Za-z0-9_.-] (aggregate.h): nothing to escape. %.17g: the exact double. */
        if (st->json)
                printf("%s{\"name\":\"%s\",\"count\":%" PRIu64 ",\"sum\":%.17g,\"mean\":%.17g,"
                       "\"min\":%.17g,\"max\":%.17g}", st->count ? "," : "", a->name, a->count, a->sum,
                       aggregate_mean(a), a->min, a->max);
        else
                printf("%-32s %20" PRIu64 " %15.15g %15.15g %15.15g %15.15g\n", a->name, a->count, a->sum,
                       aggregate_mean(a), a->min, a->max);
        st->count++;
        return 0;
}

static int stats_walk(struct admin_db *s, struct listing *l) {
        if (!l->json)
                printf("%-32s %20s %15s %15s %15s %15s\n", "NAME", "COUNT", "SUM", "MEAN", "MIN", "MAX");
        return admin_db_aggregate_list(s, stats_one, l);
}

int verb_stats(struct config *c, int argc, char *argv[]) {
        static const struct listing_verb v = { "Usage: authserver stats [--json]", "the aggregates", stats_walk };

        return run_listing(c, argc, argv, &v);
}
