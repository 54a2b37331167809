/* SPDX-License-Identifier: MIT */

/* common/bundle, base64: the enrollment bundle of protocol §8, strictly parsed. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "unit.h"
#include "unit-kat.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- base64 --------------------------------------------------------------------------- */

START_TEST(test_base64_rfc4648) {
        static const struct {
                const char *plain, *enc;
        } vectors[] = {
                { "", "" },
                { "f", "Zg==" },
                { "fo", "Zm8=" },
                { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" },
                { "fooba", "Zm9vYmE=" },
                { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
                size_t plen = strlen(vectors[i].plain), elen = strlen(vectors[i].enc), got = 999;
                char enc[16];
                uint8_t dec[16];

                memset(enc, 'X', sizeof enc);
                ck_assert_uint_eq(base64_encoded_len(plen), elen);
                base64_encode((const uint8_t *) vectors[i].plain, plen, enc);
                ck_assert_str_eq(enc, vectors[i].enc);
                if (elen == 0) {
                        /* The bundle never carries an empty vault: empty input is refused. */
                        ck_assert_int_eq(base64_decode(vectors[i].enc, 0, dec, sizeof dec, &got), -EINVAL);
                        continue;
                }
                ck_assert_int_eq(base64_decode(vectors[i].enc, elen, dec, sizeof dec, &got), 0);
                ck_assert_uint_eq(got, plen);
                ck_assert(memcmp(dec, vectors[i].plain, plen) == 0);
                /* Exactly enough room is enough; one byte less is not. */
                ck_assert_int_eq(base64_decode(vectors[i].enc, elen, dec, plen, &got), 0);
                ck_assert_int_eq(base64_decode(vectors[i].enc, elen, dec, plen - 1, &got), -ENOBUFS);
        }
}
END_TEST

/* Every byte value in every position of a quad: accepted exactly when in the alphabet. */
START_TEST(test_base64_alphabet) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        for (int c = 0; c < 256; c++) {
                const char *at = c == 0 ? NULL : memchr(alphabet, c, 64);
                int value = at ? (int) (at - alphabet) : -1;

                for (int pos = 0; pos < 4; pos++) {
                        char in[8] = { 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A' };
                        uint8_t out[6];
                        size_t got = 0;
                        int r;

                        in[pos] = (char) c;
                        r = base64_decode(in, sizeof in, out, sizeof out, &got);
                        if (value < 0) {
                                ck_assert_msg(r == -EINVAL, "byte 0x%02x at %d accepted", c, pos);
                                for (int k = 0; k < 6; k++)
                                        ck_assert_msg(out[k] == 0, "byte 0x%02x: output left behind", c);
                        } else {
                                uint32_t v = (uint32_t) value << (18 - 6 * pos);

                                ck_assert_msg(r == 0, "byte '%c' at %d refused", c, pos);
                                ck_assert_uint_eq(got, 6);
                                ck_assert_uint_eq(out[0], (v >> 16) & 0xff);
                                ck_assert_uint_eq(out[1], (v >> 8) & 0xff);
                                ck_assert_uint_eq(out[2], v & 0xff);
                                ck_assert_uint_eq(out[3] | out[4] | out[5], 0);
                        }
                }
        }
}
END_TEST

START_TEST(test_base64_round_trip) {
        struct unit_rng g;

        unit_rng_init(&g, "base64");
        for (size_t len = 1; len <= 200; len++) {
                uint8_t in[200], out[200];
                char enc[280];
                size_t got = 0;

                unit_rng_bytes(&g, in, len);
                base64_encode(in, len, enc);
                ck_assert_uint_eq(strlen(enc), base64_encoded_len(len));
                ck_assert_int_eq(base64_decode(enc, strlen(enc), out, sizeof out, &got), 0);
                ck_assert_uint_eq(got, len);
                unit_assert(memcmp(in, out, len) == 0, "length %zu", len);
        }
}
END_TEST

START_TEST(test_base64_malformed) {
        static const struct {
                const char *in;
                int want;
        } cases[] = {
                { "Zg=", -EINVAL },             /* not a multiple of 4 */
                { "Zg", -EINVAL },
                { "Zm9vY", -EINVAL },
                { "Zh==", -EINVAL },            /* non-canonical: low bits under the padding */
                { "Zm9=", -EINVAL },
                { "Zm8/", 0 },
                { "Zg=A", -EINVAL },            /* padding not at the end */
                { "Z===", -EINVAL },
                { "====", -EINVAL },
                { "Zg==Zg==", -EINVAL },        /* padding inside */
                { "Zm9v Zg=", -EINVAL },
                { "Zm9v\nZg==", -EINVAL },
                { "Zm9-", -EINVAL },            /* base64url is not base64 */
                { "Zm9_", -EINVAL },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint8_t out[16];
                size_t got = 12345;
                int r;

                memset(out, 0xcc, sizeof out);
                r = base64_decode(cases[i].in, strlen(cases[i].in), out, sizeof out, &got);
                ck_assert_msg(r == cases[i].want, "'%s': %d", cases[i].in, r);
                if (r < 0) {
                        ck_assert_uint_eq(got, 12345);
                        for (size_t k = 0; k < sizeof out; k++)
                                ck_assert_msg(out[k] == 0xcc || out[k] == 0, "'%s': output left behind", cases[i].in);
                }
        }
}
END_TEST

/* ---- server names --------------------------------------------------------------------- */

START_TEST(test_server_valid) {
        char longest[BUNDLE_SERVER_MAX + 2];
        static const struct {
                const char *s;
                bool ok;
        } cases[] = {
                { "auth.example.net:7410", true },
                { "a:1", true },
                { "10.0.0.1:65535", true },
                { "[::1]:7410", true },
                { "[2001:db8::1]:443", true },
                { "auth.example.net", false },
                { "auth.example.net:", false },
                { ":7410", false },
                { "host:0", false },
                { "host:00", false },
                { "host:07410", false },
                { "host:65536", false },
                { "host:99999", false },
                { "host:123456", false },
                { "host:74a0", false },
                { "host:-1", false },
                { "host:+1", false },
                { "ho st:1", false },
                { "host/x:1", false },
                { "[::1]", false },
                { "[]:1", false },
                { "[::g]:1", false },
                { "::1:7410", false },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                ck_assert_msg(bundle_server_valid(cases[i].s) == cases[i].ok, "'%s'", cases[i].s);
        /* BUNDLE_SERVER_MAX bytes in all, and one more. */
        memset(longest, 'h', sizeof longest);
        memcpy(longest + BUNDLE_SERVER_MAX - 5, ":7410", 6);
        ck_assert_uint_eq(strlen(longest), BUNDLE_SERVER_MAX);
        ck_assert(bundle_server_valid(longest));
        memset(longest, 'h', sizeof longest);
        memcpy(longest + BUNDLE_SERVER_MAX - 4, ":7410", 6);
        ck_assert(!bundle_server_valid(longest));
}
END_TEST

/* ---- format and parse ----------------------------------------------------------------- */

START_TEST(test_round_trip) {
        static const struct {
                const char *id;
                uint8_t profile;
                uint16_t n;
                uint8_t m, p;
                uint64_t epoch;
                const char *server;
        } cases[] = {
                { "sensor-0042", SV_PROFILE_HARDENED, 256, 16, 16, 0, "auth.example.net:7410" },
                { "sensor-0042", SV_PROFILE_HARDENED, 256, 16, 16, 0, "" },
                { "p", SV_PROFILE_PAPER, 8, 32, 4, UINT64_MAX, "" },
                { "p", SV_PROFILE_PAPER, 13, 32, 6, 1, "[::1]:1" },
                { "Z.9_:-", SV_PROFILE_HARDENED, 4096, 32, 64, UINT64_MAX, "h:65535" },
                { "n4095", SV_PROFILE_HARDENED, 4095, 16, 1, 12345678901234567890ull, "" },
        };
        struct unit_rng g;

        unit_rng_init(&g, "bundle_round_trip");
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct bundle b = { 0 }, back;
                unsigned line = 77;
                char *text = NULL;
                size_t len = 0;

                b.params = unit_params(cases[i].id, cases[i].profile, cases[i].n, cases[i].m, cases[i].p, cases[i].epoch);
                snprintf(b.server, sizeof b.server, "%s", cases[i].server);
                b.vault = malloc(vault_size(&b.params));
                ck_assert_ptr_nonnull(b.vault);
                unit_rng_bytes(&g, b.vault, vault_size(&b.params));

                ck_assert_int_eq(bundle_format(&b, &text, &len), 0);
                ck_assert_uint_eq(strlen(text), len);
                ck_assert_msg(text[len - 1] == '\n', "case %zu: no final newline", i);
                ck_assert_msg(strstr(text, "\nformat: 1\n") != NULL, "case %zu: %s", i, text);
                ck_assert_msg((strstr(text, "\nserver: ") != NULL) == (cases[i].server[0] != '\0'), "case %zu: server line", i);
                ck_assert_int_eq(bundle_parse(text, len, 0, &back, &line), 0);
                ck_assert_str_eq(back.params.device_id, cases[i].id);
                ck_assert_uint_eq(back.params.id_len, strlen(cases[i].id));
                ck_assert_uint_eq(back.params.profile, cases[i].profile);
                ck_assert_uint_eq(back.params.n, cases[i].n);
                ck_assert_uint_eq(back.params.m, cases[i].m);
                ck_assert_uint_eq(back.params.p, cases[i].p);
                ck_assert(back.params.epoch == cases[i].epoch);
                ck_assert_str_eq(back.server, cases[i].server);
                ck_assert_msg(memcmp(back.vault, b.vault, vault_size(&b.params)) == 0, "case %zu: vault", i);
                bundle_free(&back);
                {
                        static const struct bundle zero;

                        ck_assert_msg(memcmp(&back, &zero, sizeof back) == 0, "bundle_free left data");
                }
                bundle_text_free(text, len);
                bundle_free(&b);
        }
}
END_TEST

START_TEST(test_format_invalid) {
        struct bundle b = { 0 };
        uint8_t keys[8 * 16] = { 0 };
        char *text = (char *) "untouched";
        size_t len = 5;

        b.params = unit_params("x", SV_PROFILE_HARDENED, 8, 16, 4, 0);
        b.vault = keys;
        ck_assert_int_eq(bundle_format(&b, &text, &len), 0);
        bundle_text_free(text, len);
        text = (char *) "untouched";
        len = 5;
        b.params.p = 5;
        ck_assert_int_eq(bundle_format(&b, &text, &len), -EINVAL);
        b.params.p = 4;
        b.vault = NULL;
        ck_assert_int_eq(bundle_format(&b, &text, &len), -EINVAL);
        b.vault = keys;
        snprintf(b.server, sizeof b.server, "no-port");
        ck_assert_int_eq(bundle_format(&b, &text, &len), -EINVAL);
        ck_assert_str_eq(text, "untouched");
        ck_assert_uint_eq(len, 5);
}
END_TEST

/*
 * The reference bundle the bad cases start from, one field per line:
 *   1 comment, 2 format, 3 device_id, 4 profile, 5 n, 6 m, 7 p, 8 epoch, 9 server, 10 vault
 * n = 8, m = 16: a 128-byte vault, 172 base64 characters ending in one '='.
 */
static const char *const keys_in_order[] = {
        NULL, "format", "device_id", "profile", "n", "m", "p", "epoch", "server", "vault",
};

static char vault_b64[256], vault_b64_short[256], vault_b64_long[256];

static void reference_vault(void) {
        uint8_t v[129];

        for (int i = 0; i < 129; i++)
                v[i] = (uint8_t) (i * 37 + 11);
        base64_encode(v, 128, vault_b64);
        base64_encode(v, 127, vault_b64_short);
        base64_encode(v, 129, vault_b64_long);
}

static const char *reference_line(size_t i) {
        static char line[300];

        switch (i) {
        case 0: return "# secure-vault enrollment bundle";
        case 1: return "format: 1";
        case 2: return "device_id: sensor-0042";
        case 3: return "profile: hardened";
        case 4: return "n: 8";
        case 5: return "m: 16";
        case 6: return "p: 2";
        case 7: return "epoch: 0";
        case 8: return "server: auth.example.net:7410";
        default:
                snprintf(line, sizeof line, "vault: %s", vault_b64);
                return line;
        }
}

#define LINE_OF_KEY 1000        /* want_line: the line of the case's key */
#define LINE_EXTRA 1001         /* want_line: the extra line appended at the end */

struct bad_case {
        const char *name;
        const char *key;        /* the reference line to replace, or NULL */
        const char *line;       /* its replacement; NULL drops it */
        const char *extra;      /* a line appended at the end, or NULL */
        unsigned want_line;
};

/* Renders the reference with one change; returns the text length. */
static size_t render(const struct bad_case *c, char *out, size_t cap, unsigned *key_line, unsigned *extra_line) {
        size_t len = 0;
        unsigned line = 0;

        *key_line = *extra_line = 0;
        for (size_t i = 0; i < ARRAY_SIZE(keys_in_order); i++) {
                const char *text = reference_line(i);

                if (c->key && keys_in_order[i] && strcmp(c->key, keys_in_order[i]) == 0) {
                        if (!c->line)
                                continue;
                        text = c->line;
                        *key_line = line + 1;
                }
                len += (size_t) snprintf(out + len, cap - len, "%s\n", text);
                line++;
        }
        if (c->extra) {
                len += (size_t) snprintf(out + len, cap - len, "%s\n", c->extra);
                *extra_line = ++line;
        }
        ck_assert_uint_lt(len, cap);
        return len;
}

START_TEST(test_bad_bundles) {
        char id65[80], vault_badchar[256], vault_nopad[256], vault_noncanon[256], vault_pad2[256];
        char l_badchar[300], l_nopad[300], l_noncanon[300], l_pad2[300], l_short[300], l_long[300], l_url[300];
        char l_space[300];
        size_t b64len;

        reference_vault();
        b64len = strlen(vault_b64);
        ck_assert_uint_eq(b64len, 172);
        ck_assert_int_eq(vault_b64[171], '=');
        ck_assert_int_ne(vault_b64[170], '=');
        snprintf(id65, sizeof id65, "device_id: %.65s",
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        memcpy(vault_badchar, vault_b64, b64len + 1);
        vault_badchar[40] = '!';
        memcpy(vault_nopad, vault_b64, b64len + 1);
        vault_nopad[171] = '\0';
        memcpy(vault_noncanon, vault_b64, b64len + 1);
        /* The last character before '=' carries 2 bits that must be zero. */
        vault_noncanon[170] = vault_noncanon[170] == 'A' ? 'B' : (char) (vault_noncanon[170] + 1);
        memcpy(vault_pad2, vault_b64, b64len + 1);
        vault_pad2[170] = '=';
        snprintf(l_badchar, sizeof l_badchar, "vault: %s", vault_badchar);
        snprintf(l_nopad, sizeof l_nopad, "vault: %s", vault_nopad);
        snprintf(l_noncanon, sizeof l_noncanon, "vault: %s", vault_noncanon);
        snprintf(l_pad2, sizeof l_pad2, "vault: %s", vault_pad2);
        snprintf(l_short, sizeof l_short, "vault: %s", vault_b64_short);
        snprintf(l_long, sizeof l_long, "vault: %s", vault_b64_long);
        snprintf(l_url, sizeof l_url, "vault: %.40s-%s", vault_b64, vault_b64 + 41);
        snprintf(l_space, sizeof l_space, "vault: %.40s %s", vault_b64, vault_b64 + 40);

        {
                const struct bad_case cases[] = {
                        { "unknown key", NULL, NULL, "color: blue", LINE_EXTRA },
                        { "key in capitals", NULL, NULL, "N: 8", LINE_EXTRA },
                        { "key with a space", "device_id", "device id: sensor-0042", NULL, LINE_OF_KEY },
                        { "duplicate key", NULL, NULL, "n: 8", LINE_EXTRA },
                        { "duplicate vault", NULL, NULL, "vault: AAAA", LINE_EXTRA },
                        { "duplicate optional key", NULL, NULL, "server: other:1", LINE_EXTRA },
                        { "missing format", "format", NULL, NULL, 0 },
                        { "missing device_id", "device_id", NULL, NULL, 0 },
                        { "missing profile", "profile", NULL, NULL, 0 },
                        { "missing n", "n", NULL, NULL, 0 },
                        { "missing m", "m", NULL, NULL, 0 },
                        { "missing p", "p", NULL, NULL, 0 },
                        { "missing epoch", "epoch", NULL, NULL, 0 },
                        { "missing vault", "vault", NULL, NULL, 0 },
                        { "format 2", "format", "format: 2", NULL, LINE_OF_KEY },
                        { "format 0", "format", "format: 0", NULL, LINE_OF_KEY },
                        { "format 01", "format", "format: 01", NULL, LINE_OF_KEY },
                        { "profile weird", "profile", "profile: weird", NULL, LINE_OF_KEY },
                        { "profile Hardened", "profile", "profile: Hardened", NULL, LINE_OF_KEY },
                        { "profile number", "profile", "profile: 1", NULL, LINE_OF_KEY },
                        { "n 7", "n", "n: 7", NULL, LINE_OF_KEY },
                        { "n 4097", "n", "n: 4097", NULL, LINE_OF_KEY },
                        { "n 08", "n", "n: 08", NULL, LINE_OF_KEY },
                        { "n -1", "n", "n: -1", NULL, LINE_OF_KEY },
                        { "n +8", "n", "n: +8", NULL, LINE_OF_KEY },
                        { "n 1e3", "n", "n: 1e3", NULL, LINE_OF_KEY },
                        { "n 0x10", "n", "n: 0x10", NULL, LINE_OF_KEY },
                        { "n 8 8", "n", "n: 8 8", NULL, LINE_OF_KEY },
                        { "n 65544 (wraps to 8)", "n", "n: 65544", NULL, LINE_OF_KEY },
                        { "m 24", "m", "m: 24", NULL, LINE_OF_KEY },
                        { "m 15", "m", "m: 15", NULL, LINE_OF_KEY },
                        { "m 272 (wraps to 16)", "m", "m: 272", NULL, LINE_OF_KEY },
                        { "p 0", "p", "p: 0", NULL, LINE_OF_KEY },
                        { "p 5 > n/2", "p", "p: 5", NULL, LINE_OF_KEY },
                        { "p 65", "p", "p: 65", NULL, LINE_OF_KEY },
                        { "p 258 (wraps to 2)", "p", "p: 258", NULL, LINE_OF_KEY },
                        { "epoch 2^64", "epoch", "epoch: 18446744073709551616", NULL, LINE_OF_KEY },
                        { "epoch 10^20", "epoch", "epoch: 100000000000000000000", NULL, LINE_OF_KEY },
                        { "epoch -1", "epoch", "epoch: -1", NULL, LINE_OF_KEY },
                        { "id with a space", "device_id", "device_id: sensor 0042", NULL, LINE_OF_KEY },
                        { "id with a slash", "device_id", "device_id: sensor/0042", NULL, LINE_OF_KEY },
                        { "id of 65 characters", "device_id", id65, NULL, LINE_OF_KEY },
                        { "server without port", "server", "server: auth.example.net", NULL, LINE_OF_KEY },
                        { "server with empty port", "server", "server: auth.example.net:", NULL, LINE_OF_KEY },
                        { "server port 0", "server", "server: auth.example.net:0", NULL, LINE_OF_KEY },
                        { "server port 65536", "server", "server: auth.example.net:65536", NULL, LINE_OF_KEY },
                        { "server bad character", "server", "server: auth.example.net:74x0", NULL, LINE_OF_KEY },
                        { "server bad host", "server", "server: auth_example.net:7410", NULL, LINE_OF_KEY },
                        { "vault bad character", "vault", l_badchar, NULL, LINE_OF_KEY },
                        { "vault base64url character", "vault", l_url, NULL, LINE_OF_KEY },
                        { "vault with a space", "vault", l_space, NULL, LINE_OF_KEY },
                        { "vault without padding", "vault", l_nopad, NULL, LINE_OF_KEY },
                        { "vault with wrong padding", "vault", l_pad2, NULL, LINE_OF_KEY },
                        { "vault non-canonical", "vault", l_noncanon, NULL, LINE_OF_KEY },
                        { "vault one byte short", "vault", l_short, NULL, LINE_OF_KEY },
                        { "vault one byte long", "vault", l_long, NULL, LINE_OF_KEY },
                        { "line without colon", NULL, NULL, "just some words", LINE_EXTRA },
                        { "empty value", "p", "p:", NULL, LINE_OF_KEY },
                        { "blank value", "p", "p:   \t ", NULL, LINE_OF_KEY },
                        { "value only a comment", "epoch", "epoch: # none", NULL, LINE_OF_KEY },
                        { "empty key", NULL, NULL, ": 8", LINE_EXTRA },
                };

                for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                        char text[2048];
                        unsigned key_line, extra_line, line = 999, want;
                        size_t len = render(&cases[i], text, sizeof text, &key_line, &extra_line);
                        struct bundle b;
                        int r;

                        want = cases[i].want_line == LINE_OF_KEY ? key_line :
                               cases[i].want_line == LINE_EXTRA ? extra_line : cases[i].want_line;
                        memset(&b, 0x5a, sizeof b);
                        r = bundle_parse(text, len, BUNDLE_ACCEPT_UNCHECKED, &b, &line);
                        ck_assert_msg(r == -EINVAL, "%s: %d", cases[i].name, r);
                        ck_assert_msg(line == want, "%s: line %u, want %u", cases[i].name, line, want);
                        ck_assert_msg(((uint8_t *) &b)[0] == 0x5a, "%s: output written", cases[i].name);
                }
        }
}
END_TEST

/* The reference itself, and harmless variations of it, parse. */
START_TEST(test_accepted_variants) {
        enum { AS_IS, CRLF, NO_FINAL_NEWLINE, WRAPPED };
        static const struct {
                int mode;
                const char *head, *tail;        /* WRAPPED: head || vault || tail */
                bool server;
        } variants[] = {
                { AS_IS, NULL, NULL, true },
                { CRLF, NULL, NULL, true },
                { NO_FINAL_NEWLINE, NULL, NULL, true },
                /* comments, blank lines, spacing */
                { WRAPPED,
                  "# a comment\n\n   \n\t\nformat: 1   # trailing comment\n  device_id :  sensor-0042\t\n"
                  "profile:hardened\n#n: 9\nn: 8\nm: 16 #\np: 2\nepoch: 0\n\n"
                  "server: auth.example.net:7410 # where\nvault: ",
                  " # the keys\n# end", true },
                /* CRLF with comments */
                { WRAPPED,
                  "# bundle\r\nformat: 1 # one\r\ndevice_id: sensor-0042\r\nprofile: hardened\r\n\r\n"
                  "n: 8\r\nm: 16\r\np: 2\r\nepoch: 0\r\nvault: ",
                  "\r\n", false },
                /* another order, no server */
                { WRAPPED, "vault: ", "\nepoch: 0\np: 2\nm: 16\nn: 8\nprofile: hardened\ndevice_id: sensor-0042\nformat: 1\n",
                  false },
        };
        char ref[2048];
        size_t ref_len = 0;

        reference_vault();
        for (size_t i = 0; i < ARRAY_SIZE(keys_in_order); i++)
                ref_len += (size_t) snprintf(ref + ref_len, sizeof ref - ref_len, "%s\n", reference_line(i));
        for (size_t v = 0; v < ARRAY_SIZE(variants); v++) {
                char text[4096];
                size_t len = 0;
                struct bundle b;
                unsigned line = 99;
                int r;

                switch (variants[v].mode) {
                case CRLF:
                        for (size_t i = 0; i < ref_len; i++) {
                                if (ref[i] == '\n')
                                        text[len++] = '\r';
                                text[len++] = ref[i];
                        }
                        break;
                case NO_FINAL_NEWLINE:
                        memcpy(text, ref, ref_len - 1);
                        len = ref_len - 1;
                        break;
                case AS_IS:
                        memcpy(text, ref, ref_len);
                        len = ref_len;
                        break;
                default:
                        len = (size_t) snprintf(text, sizeof text, "%s%s%s", variants[v].head, vault_b64, variants[v].tail);
                        break;
                }
                r = bundle_parse(text, len, BUNDLE_ACCEPT_UNCHECKED, &b, &line);
                ck_assert_msg(r == 0, "variant %zu: %d at line %u", v, r, line);
                ck_assert_str_eq(b.params.device_id, "sensor-0042");
                ck_assert_uint_eq(b.params.id_len, 11);
                ck_assert_uint_eq(b.params.n, 8);
                ck_assert_uint_eq(b.params.m, 16);
                ck_assert_uint_eq(b.params.p, 2);
                ck_assert_uint_eq(b.params.profile, SV_PROFILE_HARDENED);
                ck_assert(b.params.epoch == 0);
                ck_assert_str_eq(b.server, variants[v].server ? "auth.example.net:7410" : "");
                for (int k = 0; k < 128; k++)
                        ck_assert_uint_eq(b.vault[k], (uint8_t) (k * 37 + 11));
                bundle_free(&b);
        }
}
END_TEST

/*
 * A NUL byte anywhere is refused. It is checked over the whole text before lines are
 * split, so bundle.h's "0: the bundle as a whole" applies.
 */
START_TEST(test_nul_byte) {
        char ref[2048];
        size_t ref_len = 0;

        reference_vault();
        for (size_t i = 0; i < ARRAY_SIZE(keys_in_order); i++)
                ref_len += (size_t) snprintf(ref + ref_len, sizeof ref - ref_len, "%s\n", reference_line(i));
        for (size_t at = 0; at < ref_len; at += 7) {
                char text[2048];
                struct bundle b;
                unsigned line = 99;

                memcpy(text, ref, ref_len);
                text[at] = '\0';
                ck_assert_msg(bundle_parse(text, ref_len, BUNDLE_ACCEPT_UNCHECKED, &b, &line) == -EINVAL, "NUL at %zu accepted", at);
                ck_assert_uint_eq(line, 0);
        }
}
END_TEST

START_TEST(test_too_long) {
        size_t len = BUNDLE_TEXT_MAX + 1;
        char *text = malloc(len);
        struct bundle b;
        unsigned line = 99;

        ck_assert_ptr_nonnull(text);
        memset(text, '#', len);
        ck_assert_int_eq(bundle_parse(text, len, BUNDLE_ACCEPT_UNCHECKED, &b, &line), -EINVAL);
        ck_assert_uint_eq(line, 0);
        /* All comment, within the limit: every field is missing. */
        ck_assert_int_eq(bundle_parse(text, len - 1, BUNDLE_ACCEPT_UNCHECKED, &b, &line), -EINVAL);
        ck_assert_uint_eq(line, 0);
        ck_assert_int_eq(bundle_parse("", 0, BUNDLE_ACCEPT_UNCHECKED, &b, NULL), -EINVAL);
        free(text);
}
END_TEST

/* ---- revision 1.1: check and kex ------------------------------------------------------ */

static void hex_of(const uint8_t *b, size_t len, char *out) {
        for (size_t i = 0; i < len; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

/* One case of extensions.txt for test_check_vectors; userdata counts them. */
static int check_vector(const struct kat_case *c, void *userdata) {
        unsigned *done = userdata;
        const char *want = kat_get(c, "bundle_check"), *kex_name = kat_get(c, "kex");
        struct kat_bytes vault;
        struct bundle b = { 0 }, back;
        uint8_t check[BUNDLE_CHECK_LEN];
        char hex[2 * BUNDLE_CHECK_LEN + 1], line[64], *text = NULL;
        unsigned long n, m, p;
        unsigned long long epoch;
        int profile, kex;
        size_t len = 0;

        ck_assert_msg(want && kex_name, "case at line %u: no bundle_check or kex", c->line);
        profile = vault_profile_from_string(kat_get(c, "profile"));
        kex = profile_kex_from_name(kex_name);
        ck_assert_int_ge(profile, 0);
        ck_assert_int_ge(kex, 0);
        n = strtoul(kat_get(c, "n"), NULL, 10);
        m = strtoul(kat_get(c, "m"), NULL, 10);
        p = strtoul(kat_get(c, "p"), NULL, 10);
        epoch = strtoull(kat_get(c, "epoch"), NULL, 10);
        b.params = unit_params(kat_get(c, "device_id"), (uint8_t) profile, (uint16_t) n, (uint8_t) m,
                               (uint8_t) p, epoch);
        b.kex = (uint8_t) kex;
        vault = unit_kat_bytes(c, "vault");
        ck_assert_uint_eq(vault.len, vault_size(&b.params));
        b.vault = vault.data;

        ck_assert_int_eq(bundle_check(&b.params, b.kex, b.vault, check), 0);
        hex_of(check, sizeof check, hex);
        ck_assert_msg(strcmp(hex, want) == 0, "case at line %u: check %s, want %s", c->line, hex, want);

        ck_assert_int_eq(bundle_format(&b, &text, &len), 0);
        snprintf(line, sizeof line, "\ncheck: %s\n", want);
        ck_assert_msg(strstr(text, line) != NULL, "case at line %u: no check line in\n%s", c->line, text);
        ck_assert_msg((strstr(text, "\nkex: x25519\n") != NULL) == (kex == SV_KEX_X25519),
                      "case at line %u: kex line", c->line);
        ck_assert_msg(strstr(text, "\nkex: none") == NULL, "kex none is written as no line");
        ck_assert_int_eq(bundle_parse(text, len, 0, &back, NULL), 0);
        ck_assert(back.checked);
        ck_assert_uint_eq(back.kex, kex);
        ck_assert(memcmp(back.vault, vault.data, vault.len) == 0);
        bundle_free(&back);
        bundle_text_free(text, len);
        free(vault.data);
        (*done)++;
        return 0;
}

/* Every bundle_check of extensions.txt, from bundle_check() and in the text bundle_format() writes. */
START_TEST(test_check_vectors) {
        unsigned done = 0;

        ck_assert_int_ge(kat_each("extensions.txt", check_vector, &done), 0);
        ck_assert_uint_ge(done, 4);
}
END_TEST

/* A checked bundle: hardened, kex x25519, a server line; its text in *ret_text. */
static size_t checked_reference(char **ret_text) {
        struct bundle b = { 0 };
        uint8_t keys[8 * 16];
        size_t len = 0;

        for (size_t i = 0; i < sizeof keys; i++)
                keys[i] = (uint8_t) (i * 37 + 11);
        b.params = unit_params("sensor-0042", SV_PROFILE_HARDENED, 8, 16, 2, 41);
        b.kex = SV_KEX_X25519;
        b.vault = keys;
        snprintf(b.server, sizeof b.server, "auth.example.net:7410");
        ck_assert_int_eq(bundle_format(&b, ret_text, &len), 0);
        return len;
}

/*
 * Damage, as a bad copy or a bad medium makes it: every bit of every character flipped in turn.
 * Outside the comment, the server's value (not covered by the check, §8) and the key of the
 * check line itself, every flip is refused as damaged (-EBADMSG), with or without
 * BUNDLE_ACCEPT_UNCHECKED; the vault line is all of that.
 */
START_TEST(test_check_damage) {
        char *ref = NULL;
        size_t len = checked_reference(&ref);
        char *copy = malloc(len);
        const char *vault_line = strstr(ref, "\nvault: "), *check_line = strstr(ref, "\ncheck: ");
        const char *server_line = strstr(ref, "\nserver: "), *first_nl = strchr(ref, '\n');
        unsigned vault_refused = 0, vault_flips = 0;
        struct bundle b;

        ck_assert_ptr_nonnull(copy);
        ck_assert(ref[0] == '#' && vault_line && check_line && server_line && strstr(ref, "\nkex: x25519\n"));
        ck_assert_int_eq(bundle_parse(ref, len, 0, &b, NULL), 0);
        ck_assert(b.checked);
        bundle_free(&b);
        for (size_t at = 0; at < len; at++) {
                const char *pos = ref + at;
                bool comment = pos < first_nl, check_key = pos > check_line && pos < check_line + 7;
                bool server = pos > server_line && pos < strchr(server_line + 1, '\n') && pos >= server_line + 8;
                bool in_vault = pos > vault_line && pos <= strchr(vault_line + 1, '\n');

                for (int bit = 0; bit < 8; bit++) {
                        unsigned line = 999;
                        int r, r2;

                        memcpy(copy, ref, len);
                        copy[at] = (char) (copy[at] ^ (1 << bit));
                        memset(&b, 0x5a, sizeof b);
                        r = bundle_parse(copy, len, 0, &b, &line);
                        if (r == 0)
                                bundle_free(&b);
                        if (in_vault)
                                vault_flips++;
                        if (comment)
                                ck_assert_msg(r == 0 || r == -EBADMSG, "comment flip at %zu bit %d: %d", at, bit, r);
                        else if (check_key)
                                ck_assert_msg(r == -EINVAL || r == -EBADMSG || r == -ENOMSG,
                                              "check key flip at %zu bit %d: %d", at, bit, r);
                        else if (server)
                                ck_assert_msg(r == 0 || r == -EBADMSG, "server flip at %zu bit %d: %d", at, bit, r);
                        else {
                                ck_assert_msg(r == -EBADMSG, "flip at %zu ('%c') bit %d accepted or not damaged: %d",
                                              at, ref[at], bit, r);
                                ck_assert_msg(((uint8_t *) &b)[0] == 0x5a, "flip at %zu: output written", at);
                                r2 = bundle_parse(copy, len, BUNDLE_ACCEPT_UNCHECKED, &b, NULL);
                                ck_assert_msg(r2 == -EBADMSG, "flip at %zu bit %d with ACCEPT_UNCHECKED: %d", at, bit, r2);
                                if (in_vault)
                                        vault_refused++;
                        }
                }
        }
        ck_assert_uint_gt(vault_flips, 8 * 170);
        ck_assert_uint_eq(vault_refused, vault_flips);
        free(copy);
        bundle_text_free(ref, len);
}
END_TEST

/* The check line alone: a check of another bundle, a wrong length, uppercase hex. */
START_TEST(test_check_line) {
        char *ref = NULL;
        size_t len = checked_reference(&ref);
        char *check = strstr(ref, "\ncheck: ") + 8;
        struct bundle b;
        unsigned line = 99;

        /* Uppercase hex is not the lowercase the writer emits. */
        for (size_t i = 0; i < 2 * BUNDLE_CHECK_LEN; i++)
                if (check[i] >= 'a' && check[i] <= 'f') {
                        check[i] = (char) (check[i] - 'a' + 'A');
                        ck_assert_int_eq(bundle_parse(ref, len, 0, &b, &line), -EBADMSG);
                        ck_assert_uint_gt(line, 0);
                        check[i] = (char) (check[i] - 'A' + 'a');
                        break;
                }
        /* The whole check of an all-zero bundle: a mismatch, reported for the bundle as a whole. */
        memset(check, '0', 2 * BUNDLE_CHECK_LEN);
        ck_assert_int_eq(bundle_parse(ref, len, 0, &b, &line), -EBADMSG);
        ck_assert_uint_eq(line, 0);
        ck_assert_int_eq(bundle_parse(ref, len, BUNDLE_ACCEPT_UNCHECKED, &b, &line), -EBADMSG);
        bundle_text_free(ref, len);
}
END_TEST

/* A bundle without check (before revision 1.1): refused unless the caller accepts it. */
START_TEST(test_unchecked) {
        char *ref = NULL;
        size_t len = checked_reference(&ref), cut;
        char *check = strstr(ref, "\ncheck: ");
        struct bundle b;
        unsigned line = 99;

        cut = (size_t) (check - ref) + 1;       /* keep the vault line's newline */
        memset(&b, 0x5a, sizeof b);
        ck_assert_int_eq(bundle_parse(ref, cut, 0, &b, &line), -ENOMSG);
        ck_assert_uint_eq(line, 0);
        ck_assert(((uint8_t *) &b)[0] == 0x5a);
        ck_assert_int_eq(bundle_parse(ref, cut, BUNDLE_ACCEPT_UNCHECKED, &b, &line), 0);
        ck_assert(!b.checked);
        ck_assert_uint_eq(b.kex, SV_KEX_X25519);
        ck_assert_uint_eq(b.params.epoch, 41);
        bundle_free(&b);
        /* Without check, a broken line is only invalid: nothing says it was ever a bundle. */
        ref[cut - 2] = '!';
        ck_assert_int_eq(bundle_parse(ref, cut, BUNDLE_ACCEPT_UNCHECKED, &b, &line), -EINVAL);
        ck_assert_int_eq(bundle_parse(ref, cut, 0, &b, &line), -EINVAL);
        bundle_text_free(ref, len);
}
END_TEST

/* kex: none or x25519, x25519 only with the hardened profile, absent means none. */
START_TEST(test_kex_line) {
        static const struct {
                const char *profile, *kex;
                int want, want_kex;
        } cases[] = {
                { "hardened", NULL, 0, SV_KEX_NONE },
                { "hardened", "none", 0, SV_KEX_NONE },
                { "hardened", "x25519", 0, SV_KEX_X25519 },
                { "paper", "none", 0, SV_KEX_NONE },
                { "paper", "x25519", -EINVAL, 0 },
                { "hardened", "X25519", -EINVAL, 0 },
                { "hardened", "x448", -EINVAL, 0 },
                { "hardened", "1", -EINVAL, 0 },
        };
        uint8_t keys[128];
        char b64[200];

        for (size_t i = 0; i < sizeof keys; i++)
                keys[i] = (uint8_t) i;
        base64_encode(keys, sizeof keys, b64);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                char text[1024];
                struct bundle b;
                unsigned line = 99;
                size_t len;
                int r;

                len = (size_t) snprintf(text, sizeof text,
                                        "format: 1\ndevice_id: d\nprofile: %s\nn: 8\nm: 16\np: 2\nepoch: 0\n%s%s%svault: %s\n",
                                        cases[i].profile, cases[i].kex ? "kex: " : "", cases[i].kex ? cases[i].kex : "",
                                        cases[i].kex ? "\n" : "", b64);
                r = bundle_parse(text, len, BUNDLE_ACCEPT_UNCHECKED, &b, &line);
                ck_assert_msg(r == cases[i].want, "%s/%s: %d", cases[i].profile, cases[i].kex, r);
                if (r == 0) {
                        ck_assert_uint_eq(b.kex, cases[i].want_kex);
                        bundle_free(&b);
                } else
                        ck_assert_uint_eq(line, 8);
        }
        {
                struct vault_params v = unit_params("d", SV_PROFILE_PAPER, 8, 16, 2, 0);
                struct bundle b = { .params = v, .kex = SV_KEX_X25519, .vault = keys };
                uint8_t check[BUNDLE_CHECK_LEN];
                char *text = (char *) "untouched";
                size_t len = 5;

                ck_assert_int_eq(bundle_check(&v, SV_KEX_X25519, keys, check), -EINVAL);
                ck_assert_int_eq(bundle_check(&v, 2, keys, check), -EINVAL);
                ck_assert_int_eq(bundle_format(&b, &text, &len), -EINVAL);
                ck_assert_str_eq(text, "untouched");
        }
}
END_TEST

static Suite *bundle_suite(void) {
        Suite *s = suite_create("bundle");
        TCase *tc = tcase_create("base64");

        tcase_add_test(tc, test_base64_rfc4648);
        tcase_add_test(tc, test_base64_alphabet);
        tcase_add_test(tc, test_base64_round_trip);
        tcase_add_test(tc, test_base64_malformed);
        suite_add_tcase(s, tc);

        tc = tcase_create("bundle");
        tcase_add_test(tc, test_server_valid);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_format_invalid);
        tcase_add_test(tc, test_bad_bundles);
        tcase_add_test(tc, test_accepted_variants);
        tcase_add_test(tc, test_nul_byte);
        tcase_add_test(tc, test_too_long);
        suite_add_tcase(s, tc);

        tc = tcase_create("check");
        tcase_add_test(tc, test_check_vectors);
        tcase_add_test(tc, test_check_damage);
        tcase_add_test(tc, test_check_line);
        tcase_add_test(tc, test_unchecked);
        tcase_add_test(tc, test_kex_line);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(bundle_suite());
}
