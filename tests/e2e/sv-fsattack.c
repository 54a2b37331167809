/* SPDX-License-Identifier: MIT */
/*
 * sv-fsattack: the attacker of the forward-secrecy test (protocol §10, tests/e2e/
 * forward-secrecy.test). It holds a recorded session (sv-tap's PREFIX.c2s and PREFIX.s2c)
 * and a vault stolen later, and does what such an attacker does, with common/'s pure
 * functions only (wire decoders, vault_combine, the key schedule, hs_next_vault, the record
 * layer): X(C1) from the vault, K3, open M3 (t1, C2), K4, open M4 (t2), S, the session key,
 * U and V_{e+1}, then every record of both directions.
 *
 *   sv-fsattack steal --db DB --master-key KEY --device ID --out BUNDLE
 *       reads the device's committed vault from the server's store (the database and the
 *       master key: a stolen server) and writes it as an enrollment bundle: the loot
 *   sv-fsattack attack --vault BUNDLE --record PREFIX [--next-out BUNDLE] [--z HEX]
 *       attacks the recorded session with the vault; prints what it derived:
 *         session_key HEX
 *         next_vault epoch=E            (and writes V_{e+1} to --next-out as a bundle)
 *         c2s|s2c I DATA PAYLOAD | c2s|s2c I CLOSE
 *       --z gives it the X25519 secret Z of the session as an oracle (what it would need)
 *   sv-fsattack kat FILE
 *       runs the attack on every case of a known-answer file (tests/vectors/extensions.txt)
 *       and checks it: without Z it must derive the case's session key, next vault and
 *       records exactly for kex none and nothing for x25519 (exit 3 at M3); with the case's
 *       Z it must derive them for x25519 too. This proves the attacker right on x25519
 *       transcripts, so that its failure on them is the key share's doing.
 *
 * Exit: 0 derived, 1 error, 2 usage, 3 M3 does not open with what the attacker holds (no
 * session key, no next vault, no record), 4 the vault is not the one the session used
 * (another device or epoch), 5 M3 opened but M4, M5 or a record did not (a broken attacker).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bundle-file.h"
#include "handshake.h"
#include "kat.h"
#include "keysched.h"
#include "record.h"
#include "store.h"
#include "wire.h"

enum {
        FS_OK = 0,
        FS_ERROR = 1,
        FS_USAGE = 2,
        FS_NO_M3 = 3,
        FS_WRONG_VAULT = 4,
        FS_BROKEN = 5,
};

#define FS_STREAM_MAX   (64 * 1024)
#define FS_FRAMES_MAX   64

struct stream {
        uint8_t bytes[FS_STREAM_MAX];
        size_t len;
        const uint8_t *frame[FS_FRAMES_MAX];
        size_t frame_len[FS_FRAMES_MAX];
        size_t n_frames;
};

struct record_seen {
        uint8_t type;
        size_t len;
        uint8_t payload[RECORD_PAYLOAD_MAX];
};

/* What the attacker got out of one session. */
struct loot {
        uint8_t kex;                                    /* of the session: a share in M1 or not */
        uint8_t session_key[SV_KEY_LEN];
        struct vault_params next_params;
        uint8_t next_vault[SV_VAULT_MAX];
        struct record_seen rec[2][FS_FRAMES_MAX];      /* [RECORD_C2S], [RECORD_S2C] */
        size_t n_rec[2];
};

/* Cuts a byte stream into frames by their headers. -EBADMSG for a frame cut short. */
static int stream_split(struct stream *s) {
        size_t off = 0;

        s->n_frames = 0;
        while (off < s->len) {
                size_t len;

                if (s->len - off < SV_HEADER_LEN || s->n_frames == FS_FRAMES_MAX)
                        return -EBADMSG;
                len = SV_HEADER_LEN + ((size_t) s->bytes[off + 2] << 8 | s->bytes[off + 3]);
                if (len > s->len - off)
                        return -EBADMSG;
                s->frame[s->n_frames] = s->bytes + off;
                s->frame_len[s->n_frames++] = len;
                off += len;
        }
        return 0;
}

static int stream_add(struct stream *s, const uint8_t *p, size_t len) {
        if (len > sizeof s->bytes - s->len)
                return -ENOBUFS;
        memcpy(s->bytes + s->len, p, len);
        s->len += len;
        return 0;
}

/* Opens every record after the handshake in one direction, from S. */
static int open_records(const uint8_t s[SV_KEY_LEN], enum record_dir dir, const struct stream *st, size_t first,
                        struct loot *ret) {
        uint8_t a0[RECORD_SECRET_LEN];
        struct record_chain chain;
        int r = record_secret(s, dir, a0);

        if (r < 0)
                return r;
        record_init(&chain, a0);
        ret->n_rec[dir] = 0;
        for (size_t i = first; i < st->n_frames && r >= 0; i++) {
                struct record_seen *rs = &ret->rec[dir][ret->n_rec[dir]];

                r = record_open(&chain, st->frame[i], st->frame_len[i], rs->payload, sizeof rs->payload, &rs->len);
                if (r >= 0) {
                        rs->type = (uint8_t) r;
                        ret->n_rec[dir]++;
                }
        }
        record_wipe(&chain);
        return r < 0 ? r : 0;
}

/*
 * The attack: the recorded streams and the vault (params, keys), Z if an oracle gave it
 * (z_len 0 otherwise). Returns FS_*; the loot is complete only with FS_OK.
 */
static int attack(const struct vault_params *vault, const uint8_t *keys, struct stream *c2s, struct stream *s2c,
                  const uint8_t *z, size_t z_len, struct loot *ret, const char **ret_why) {
        struct vault_params v = *vault;
        struct hs_transcript ts = { 0 };
        struct msg_hello hello;
        struct msg_challenge chal;
        struct msg_response resp;
        struct msg_confirm conf;
        struct keysched_final fin = { 0 };
        uint8_t th[SV_HASH_LEN], x[SV_KEY_MAX], k3[SV_KEY_LEN], k4[SV_KEY_LEN], pt[SV_RESPONSE_PT_MAX];
        size_t k_len, body_len;
        const uint8_t *body;
        int rc = FS_BROKEN;

        *ret_why = "the recording is not a whole session (M1..M5)";
        if (stream_split(c2s) < 0 || stream_split(s2c) < 0 || c2s->n_frames < 3 || s2c->n_frames < 2)
                return FS_ERROR;
        *ret_why = "M1 does not decode";
        if (wire_decode_hello(c2s->frame[0], c2s->frame_len[0], &hello) < 0)
                return FS_ERROR;
        *ret_why = "the vault is not the one of the session (another device or epoch)";
        if (strcmp(hello.device_id, v.device_id) != 0 || hello.epoch != v.epoch || hello.profile != v.profile)
                return FS_WRONG_VAULT;
        v.kex = ret->kex = hello.kex;   /* the share on the wire says whether the session used one */
        *ret_why = "M2 does not decode";
        if (wire_decode_challenge(s2c->frame[0], s2c->frame_len[0], &v, &chal) < 0)
                return FS_ERROR;
        memcpy(ts.m1, c2s->frame[0], ts.m1_len = c2s->frame_len[0]);
        memcpy(ts.m2, s2c->frame[0], ts.m2_len = s2c->frame_len[0]);
        if (c2s->frame_len[1] > sizeof ts.m3 || s2c->frame_len[1] > sizeof ts.m4)
                return FS_ERROR;
        memcpy(ts.m3, c2s->frame[1], ts.m3_len = c2s->frame_len[1]);
        memcpy(ts.m4, s2c->frame[1], ts.m4_len = s2c->frame_len[1]);

        /* K3 from X(C1) (and Z if the oracle gave it): M3 opens, or the attack ends here. */
        *ret_why = "M3 does not open with the vault alone: K3 needs what the attacker lacks";
        vault_combine(keys, &v, &chal.c1, x);
        body_len = vault_body_len(SV_MSG_RESPONSE, &v);
        if (hs_transcript_hash(&ts, 2, th) < 0 || keysched_k3(v.profile, th, x, v.m, z, z_len, k3, &k_len) < 0)
                goto out;
        if (wire_decode_sealed(ts.m3, ts.m3_len, SV_MSG_RESPONSE, body_len, &body) < 0)
                goto out;
        if (keysched_open(k3, k_len, th, body, body_len, pt) < 0) {
                rc = FS_NO_M3;
                goto out;
        }
        *ret_why = "M3 opened but its plaintext does not decode";
        if (wire_decode_response_pt(pt, body_len - SV_TAG_LEN, v.n, v.p, &resp) < 0)
                goto out;

        /* K4 from X(C2) and t1: M4 gives t2. */
        *ret_why = "M3 opened but M4 did not";
        vault_combine(keys, &v, &resp.c2, x);
        body_len = SV_CONFIRM_BODY_LEN;
        if (hs_transcript_hash(&ts, 3, th) < 0 || keysched_k4(v.profile, th, x, v.m, resp.t1, z, z_len, k4, &k_len) < 0 ||
            wire_decode_sealed(ts.m4, ts.m4_len, SV_MSG_CONFIRM, body_len, &body) < 0 ||
            keysched_open(k4, k_len, th, body, body_len, pt) < 0 ||
            wire_decode_confirm_pt(pt, SV_CONFIRM_PT_LEN, &conf) < 0)
                goto out;

        /* S, then the session key, U and K5; M5 opening with K5 proves them right. */
        *ret_why = "M4 opened but M5 does not open with the derived K5";
        if (hs_transcript_hash(&ts, 4, th) < 0 ||
            keysched_finish(v.profile, th, resp.t1, conf.t2, z, z_len, &fin) < 0 ||
            wire_decode_sealed(c2s->frame[2], c2s->frame_len[2], SV_MSG_COMMIT, SV_COMMIT_BODY_LEN, &body) < 0 ||
            keysched_open(fin.k5, SV_KEY_LEN, th, body, SV_COMMIT_BODY_LEN, pt) < 0)
                goto out;
        *ret_why = "the next vault cannot be derived";
        ret->next_params = v;
        ret->next_params.epoch = v.epoch + 1;
        if (hs_next_vault(&v, keys, &ts, fin.u, ret->next_vault) < 0)
                goto out;
        memcpy(ret->session_key, fin.session_key, SV_KEY_LEN);
        *ret_why = "a record does not open with the derived channel secrets";
        if (open_records(fin.s, RECORD_C2S, c2s, 3, ret) < 0 || open_records(fin.s, RECORD_S2C, s2c, 2, ret) < 0)
                goto out;
        rc = FS_OK;
        *ret_why = NULL;
out:
        keysched_final_wipe(&fin);
        OPENSSL_cleanse(x, sizeof x);
        OPENSSL_cleanse(k3, sizeof k3);
        OPENSSL_cleanse(k4, sizeof k4);
        OPENSSL_cleanse(pt, sizeof pt);
        OPENSSL_cleanse(&resp, sizeof resp);
        OPENSSL_cleanse(&conf, sizeof conf);
        return rc;
}

static int read_stream(const char *prefix, const char *suffix, struct stream *s) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof path, "%s.%s", prefix, suffix);
        f = fopen(path, "rbe");
        if (!f) {
                fprintf(stderr, "sv-fsattack: %s: %m\n", path);
                return -errno;
        }
        s->len = fread(s->bytes, 1, sizeof s->bytes, f);
        if (ferror(f) || !feof(f)) {
                fprintf(stderr, "sv-fsattack: %s: unreadable or too long\n", path);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        return 0;
}

static int hex_decode(const char *s, uint8_t *out, size_t len) {
        if (strlen(s) != 2 * len)
                return -EINVAL;
        for (size_t i = 0; i < len; i++)
                if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
                        return -EINVAL;
        return 0;
}

static void print_payload(const struct record_seen *rs) {
        for (size_t i = 0; i < rs->len; i++)
                if (rs->payload[i] >= 0x20 && rs->payload[i] < 0x7f && rs->payload[i] != '\\')
                        putchar(rs->payload[i]);
                else
                        printf("\\x%02x", rs->payload[i]);
}

static struct stream c2s_stream, s2c_stream;
static struct loot the_loot;

static int save_vault(const char *path, const struct vault_params *v, const uint8_t *keys) {
        struct bundle b = { .params = *v, .kex = v->kex, .vault = (uint8_t *) keys };
        int r = bundle_file_save(path, &b);

        if (r < 0)
                fprintf(stderr, "sv-fsattack: cannot write %s: %s\n", path, strerror(-r));
        return r;
}

static int cmd_steal(int argc, char *argv[]) {
        enum { ARG_DB = 0x100, ARG_MASTER_KEY, ARG_DEVICE, ARG_OUT };
        static const struct option options[] = {
                { "db",         required_argument, NULL, ARG_DB },
                { "master-key", required_argument, NULL, ARG_MASTER_KEY },
                { "device",     required_argument, NULL, ARG_DEVICE },
                { "out",        required_argument, NULL, ARG_OUT },
                { 0 }
        };
        const char *db = NULL, *key_path = NULL, *id = NULL, *out = NULL;
        uint8_t master[STORE_MASTER_KEY_LEN], vault[SV_VAULT_MAX];
        _cleanup_(store_closep) struct store *s = NULL;
        struct store_device dev;
        struct vault_params v = { 0 };
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_DB: db = optarg; break;
                case ARG_MASTER_KEY: key_path = optarg; break;
                case ARG_DEVICE: id = optarg; break;
                case ARG_OUT: out = optarg; break;
                default: return FS_USAGE;
                }
        if (!db || !key_path || !id || !out || optind != argc)
                return FS_USAGE;
        r = store_master_key_load(key_path, master);
        if (r >= 0)
                r = store_open(db, master, 0, &s);
        OPENSSL_cleanse(master, sizeof master);
        if (r >= 0)
                r = store_get(s, id, &dev, vault, NULL, sizeof vault);
        if (r < 0) {
                fprintf(stderr, "sv-fsattack: store: %s\n", store_last_error(s));
                return FS_ERROR;
        }
        r = vault_params_set_id(&v, id);
        v.profile = dev.profile, v.n = dev.n, v.m = dev.m, v.p = dev.p, v.epoch = dev.epoch, v.kex = dev.kex;
        if (r >= 0)
                r = save_vault(out, &v, vault);
        OPENSSL_cleanse(vault, sizeof vault);
        if (r < 0)
                return FS_ERROR;
        printf("stole vault of %s at epoch %" PRIu64 "%s\n", id, dev.epoch, dev.has_pending ? " (a pending one exists)" : "");
        return FS_OK;
}

static int cmd_attack(int argc, char *argv[]) {
        enum { ARG_VAULT = 0x100, ARG_RECORD, ARG_NEXT_OUT, ARG_Z };
        static const struct option options[] = {
                { "vault",    required_argument, NULL, ARG_VAULT },
                { "record",   required_argument, NULL, ARG_RECORD },
                { "next-out", required_argument, NULL, ARG_NEXT_OUT },
                { "z",        required_argument, NULL, ARG_Z },
                { 0 }
        };
        const char *vault_path = NULL, *prefix = NULL, *next_out = NULL, *why;
        uint8_t z[SV_X25519_LEN];
        size_t z_len = 0;
        struct bundle b = { 0 };
        int c, r, rc;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_VAULT: vault_path = optarg; break;
                case ARG_RECORD: prefix = optarg; break;
                case ARG_NEXT_OUT: next_out = optarg; break;
                case ARG_Z:
                        if (hex_decode(optarg, z, sizeof z) < 0)
                                return FS_USAGE;
                        z_len = sizeof z;
                        break;
                default: return FS_USAGE;
                }
        if (!vault_path || !prefix || optind != argc)
                return FS_USAGE;
        r = bundle_file_load(vault_path, &b, NULL);
        if (r < 0) {
                fprintf(stderr, "sv-fsattack: %s: %s\n", vault_path, strerror(-r));
                return FS_ERROR;
        }
        if (read_stream(prefix, "c2s", &c2s_stream) < 0 || read_stream(prefix, "s2c", &s2c_stream) < 0) {
                bundle_free(&b);
                return FS_ERROR;
        }
        rc = attack(&b.params, b.vault, &c2s_stream, &s2c_stream, z_len ? z : NULL, z_len, &the_loot, &why);
        printf("session device=%s epoch=%" PRIu64 " kex=%s%s\n", b.params.device_id, b.params.epoch,
               rc == FS_ERROR || rc == FS_WRONG_VAULT ? "?" : the_loot.kex == SV_KEX_X25519 ? "x25519" : "none",
               z_len ? " (Z given)" : "");
        bundle_free(&b);
        OPENSSL_cleanse(z, sizeof z);
        if (rc != FS_OK) {
                printf("failed: %s\n", why);
                return rc;
        }
        printf("session_key ");
        for (size_t i = 0; i < SV_KEY_LEN; i++)
                printf("%02x", the_loot.session_key[i]);
        printf("\nnext_vault epoch=%" PRIu64 "\n", the_loot.next_params.epoch);
        for (size_t i = 0; i < FS_FRAMES_MAX; i++)
                for (int dir = RECORD_C2S; dir <= RECORD_S2C; dir++)
                        if (i < the_loot.n_rec[dir]) {
                                const struct record_seen *rs = &the_loot.rec[dir][i];

                                printf("%s %zu %s", dir == RECORD_C2S ? "c2s" : "s2c", i,
                                       rs->type == SV_MSG_DATA ? "DATA " : "CLOSE");
                                if (rs->type == SV_MSG_DATA)
                                        print_payload(rs);
                                printf("\n");
                        }
        r = next_out ? save_vault(next_out, &the_loot.next_params, the_loot.next_vault) : 0;
        OPENSSL_cleanse(&the_loot, sizeof the_loot);
        return r < 0 ? FS_ERROR : FS_OK;
}

/* One field of a case as bytes (exactly len if len != 0); -EINVAL if absent or malformed. */
static int kat_field(const struct kat_case *c, const char *key, struct kat_bytes *ret, size_t len) {
        const char *s = kat_get(c, key);
        int r = s ? kat_hex(s, ret) : -EINVAL;

        if (r >= 0 && len && ret->len != len) {
                free(ret->data);
                r = -EINVAL;
        }
        return r;
}

static bool loot_matches(const struct kat_case *c, const struct loot *l, const struct vault_params *v) {
        const char *dirs[2][3] = { { "data_c2s", "rec_c2s", "close_c2s" }, { "data_s2c", "rec_s2c", "close_s2c" } };
        struct kat_bytes key, next;
        bool ok;

        if (kat_field(c, "session_key", &key, SV_KEY_LEN) < 0)
                return false;
        if (kat_field(c, "new_vault", &next, vault_size(v)) < 0) {
                free(key.data);
                return false;
        }
        ok = memcmp(key.data, l->session_key, SV_KEY_LEN) == 0 && memcmp(next.data, l->next_vault, next.len) == 0;
        free(key.data);
        free(next.data);
        for (int dir = RECORD_C2S; dir <= RECORD_S2C && ok; dir++) {
                struct kat_bytes *data = NULL;
                size_t n = 0;

                ok = kat_hex_list(kat_get(c, dirs[dir][0]) ?: "", &data, &n) >= 0 && l->n_rec[dir] == n + 1 &&
                     l->rec[dir][n].type == SV_MSG_CLOSE;
                for (size_t i = 0; i < n && ok; i++)
                        ok = l->rec[dir][i].type == SV_MSG_DATA && l->rec[dir][i].len == data[i].len &&
                             memcmp(l->rec[dir][i].payload, data[i].data, data[i].len) == 0;
                kat_bytes_free_list(data, n);
        }
        return ok;
}

/* The case's session as the two recorded streams. */
static int kat_streams(const struct kat_case *c, int dir, struct stream *s) {
        static const char *fields[2][5] = { { "m1", "m3", "m5", "rec_c2s", "close_c2s" }, { "m2", "m4", "rec_s2c", "close_s2c", NULL } };
        int r = 0;

        s->len = 0;
        for (size_t f = 0; f < 5 && fields[dir][f] && r >= 0; f++) {
                struct kat_bytes *list = NULL;
                size_t n = 0;

                r = kat_hex_list(kat_get(c, fields[dir][f]) ?: "", &list, &n);
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = stream_add(s, list[i].data, list[i].len);
                kat_bytes_free_list(list, n);
        }
        return r;
}

static int kat_one(const struct kat_case *c) {
        const char *name = kat_get(c, "name") ?: "?", *kex = kat_get(c, "kex") ?: "none", *why;
        struct vault_params v = { 0 };
        struct kat_bytes vault, z = { 0 };
        bool x25519 = strcmp(kex, "x25519") == 0;
        int r, rc;

        r = vault_params_set_id(&v, kat_get(c, "device_id") ?: "");
        if (r >= 0)
                r = vault_profile_from_string(kat_get(c, "profile") ?: "");
        if (r < 0)
                return r;
        v.profile = (uint8_t) r;
        v.n = (uint16_t) strtoul(kat_get(c, "n") ?: "0", NULL, 10);
        v.m = (uint8_t) strtoul(kat_get(c, "m") ?: "0", NULL, 10);
        v.p = (uint8_t) strtoul(kat_get(c, "p") ?: "0", NULL, 10);
        v.epoch = strtoull(kat_get(c, "epoch") ?: "0", NULL, 10);
        if (vault_params_validate(&v) < 0 || kat_field(c, "vault", &vault, vault_size(&v)) < 0)
                return -EINVAL;
        if (x25519 && kat_field(c, "z", &z, SV_X25519_LEN) < 0) {
                free(vault.data);
                return -EINVAL;
        }

        /* Without Z: the vault alone. */
        r = kat_streams(c, 0, &c2s_stream) < 0 || kat_streams(c, 1, &s2c_stream) < 0 ? -EINVAL : 0;
        rc = r < 0 ? FS_ERROR : attack(&v, vault.data, &c2s_stream, &s2c_stream, NULL, 0, &the_loot, &why);
        if (x25519 ? rc != FS_NO_M3 : rc != FS_OK || !loot_matches(c, &the_loot, &v)) {
                printf("FAIL %s (kex %s): the vault alone: exit %d (%s)\n", name, kex, rc, why ?: "derived");
                r = -EPROTO;
        } else
                printf("ok %s (kex %s): the vault alone %s\n", name, kex,
                       x25519 ? "opens no M3: no session key, no next vault, no record" :
                                "gives the session key, the next vault and every record");

        /* With Z from the oracle: the same attacker derives everything, so Z is all it lacked. */
        if (r >= 0 && x25519) {
                rc = attack(&v, vault.data, &c2s_stream, &s2c_stream, z.data, z.len, &the_loot, &why);
                if (rc != FS_OK || !loot_matches(c, &the_loot, &v)) {
                        printf("FAIL %s: the vault and Z: exit %d (%s)\n", name, rc, why ?: "derived other values");
                        r = -EPROTO;
                } else
                        printf("ok %s: the vault and Z give the session key, the next vault and every record\n", name);
        }
        OPENSSL_cleanse(&the_loot, sizeof the_loot);
        OPENSSL_cleanse(vault.data, vault.len);
        free(vault.data);
        free(z.data);
        return r;
}

static int cmd_kat(int argc, char *argv[]) {
        struct kat_file f;
        unsigned n_x25519 = 0, n_none = 0;
        int r = 0;

        if (argc != 2)
                return FS_USAGE;
        if (kat_load(argv[1], &f) < 0) {
                fprintf(stderr, "sv-fsattack: cannot read %s\n", argv[1]);
                return FS_ERROR;
        }
        for (size_t i = 0; i < f.n_cases; i++) {
                const char *kex = kat_get(&f.cases[i], "kex");

                if (!kex || !kat_get(&f.cases[i], "close_c2s"))
                        continue;       /* a case without a whole session */
                if (kat_one(&f.cases[i]) < 0)
                        r = -EPROTO;
                if (strcmp(kex, "x25519") == 0)
                        n_x25519++;
                else
                        n_none++;
        }
        kat_free(&f);
        if (n_x25519 == 0 || n_none == 0) {
                printf("FAIL: %s has no whole session with kex x25519 and none both\n", argv[1]);
                return FS_ERROR;
        }
        return r < 0 ? FS_ERROR : FS_OK;
}

int main(int argc, char *argv[]) {
        int rc = FS_USAGE;

        if (argc >= 2 && strcmp(argv[1], "steal") == 0)
                rc = cmd_steal(argc - 1, argv + 1);
        else if (argc >= 2 && strcmp(argv[1], "attack") == 0)
                rc = cmd_attack(argc - 1, argv + 1);
        else if (argc >= 2 && strcmp(argv[1], "kat") == 0)
                rc = cmd_kat(argc - 1, argv + 1);
        if (rc == FS_USAGE)
                fprintf(stderr, "usage: sv-fsattack steal --db DB --master-key KEY --device ID --out BUNDLE\n"
                                "       sv-fsattack attack --vault BUNDLE --record PREFIX [--next-out BUNDLE] [--z HEX]\n"
                                "       sv-fsattack kat FILE\n");
        return rc;
}
