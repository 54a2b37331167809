/* SPDX-License-Identifier: MIT */
/*
 * vaultd's TPM layer against a real (software) TPM. Every test case gets its own swtpm, started
 * and stopped by unchecked fixtures, i.e. in the runner process: a test that fails, crashes or
 * times out in its forked child still has its swtpm stopped and its directory removed.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "swtpm-helper.h"
#include "tpm.h"
#include "tpm-test.h"

#define TEST_TIMEOUT 60
#define TEST_PCR 16             /* the debug PCR: extendable at any locality, unused by firmware */
#define STRESS_ROUNDS 8         /* > 3 slots: a leaked handle would exhaust swtpm's slots */

/* The TCG SRK template's attributes, for tpm2_createprimary (its default lacks noda). */
#define SRK_ATTRS_TOOLS "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda"

static struct swtpm tpm_a, tpm_b;
static int start_err;

static void setup_one(void) {
        int r = swtpm_start(&tpm_a);
        start_err = r < 0 ? r : 0;
}

static void setup_two(void) {
        int r = swtpm_start(&tpm_a);
        if (r >= 0)
                r = swtpm_start(&tpm_b);
        start_err = r < 0 ? r : 0;
}

static void teardown(void) {
        swtpm_stop(&tpm_a);
        swtpm_stop(&tpm_b);
}

static void require_swtpm(void) {
        ck_assert_msg(start_err == 0, "swtpm did not start: %s", strerror(-start_err));
}

static struct tpm_ctx *open_tpm(const struct swtpm *s) {
        struct tpm_ctx *t = NULL;
        int r;

        require_swtpm();
        r = tpm_open(s->tcti, &t);
        ck_assert_msg(r == 0, "tpm_open(%s): %s: %s", s->tcti, strerror(-r), tpm_last_error(NULL));
        ck_assert_ptr_nonnull(t);
        return t;
}

/* No transient object and no session may remain in the TPM after any operation; while a counter
 * is bound, exactly one session (its salted session) and nothing else. */
static void assert_loaded(struct tpm_ctx *t, unsigned want_sessions) {
        unsigned objects = 99, sessions = 99;
        int r = tpm_test_count_loaded(t, &objects, &sessions);

        ck_assert_msg(r == 0, "count loaded: %s", tpm_last_error(t));
        ck_assert_uint_eq(objects, 0);
        ck_assert_uint_eq(sessions, want_sessions);
}

static void assert_clean(struct tpm_ctx *t) {
        assert_loaded(t, 0);
}

static void random_bytes(uint8_t *buf, size_t n) {
        ck_assert_int_eq(getrandom(buf, n, 0), (ssize_t) n);
}

static void seal_ok(struct tpm_ctx *t, const uint8_t kek[TPM_KEK_SIZE], uint32_t mask, struct tpm_sealed *s) {
        int r = tpm_seal(t, kek, mask, s);
        ck_assert_msg(r == 0, "tpm_seal: %s: %s", strerror(-r), tpm_last_error(t));
        ck_assert_uint_gt(s->pub_len, 0);
        ck_assert_uint_gt(s->priv_len, 0);
        ck_assert_uint_eq(s->pcr_mask, mask);
        assert_clean(t);
}

static void unseal_ok(struct tpm_ctx *t, const struct tpm_sealed *s, const uint8_t kek[TPM_KEK_SIZE]) {
        uint8_t out[TPM_KEK_SIZE] = { 0 };
        int r = tpm_unseal(t, s, out);

        ck_assert_msg(r == 0, "tpm_unseal: %s: %s", strerror(-r), tpm_last_error(t));
        ck_assert_mem_eq(out, kek, TPM_KEK_SIZE);
        assert_clean(t);
}

/* An unseal that must fail with want (0: any error) and leave the output untouched. */
static void unseal_fails(struct tpm_ctx *t, const struct tpm_sealed *s, int want) {
        uint8_t out[TPM_KEK_SIZE], pristine[TPM_KEK_SIZE];
        int r;

        memset(out, 0xaa, sizeof(out));
        memset(pristine, 0xaa, sizeof(pristine));
        r = tpm_unseal(t, s, out);
        if (want != 0)
                ck_assert_msg(r == want, "tpm_unseal returned %d (%s), want %d; error: %s",
                              r, strerror(-r), want, tpm_last_error(t));
        else
                ck_assert_msg(r < 0, "tpm_unseal succeeded on a bad blob");
        ck_assert_str_ne(tpm_last_error(t), "");
        ck_assert_mem_eq(out, pristine, TPM_KEK_SIZE);
        assert_clean(t);
}

/* Run a tpm2-tools command against s, with stdout (our TAP stream) sent to /dev/null.
 * swtpm serves one client at a time: call it only while no tpm_ctx is open on s. */
static int run_tool(const struct swtpm *s, const char *const argv[]) {
        int status;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || setenv("TPM2TOOLS_TCTI", s->tcti, 1) < 0)
                        _exit(126);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                ck_assert_int_eq(errno, EINTR);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define TOOL(s, ...) do { \
                const char *const _argv[] = { __VA_ARGS__, NULL }; \
                int _r = run_tool((s), _argv); \
                ck_assert_msg(_r == 0, "%s exited with %d%s", _argv[0], _r, \
                              _r == 127 ? " (tpm2-tools not installed?)" : ""); \
        } while (0)

/* Persist a primary made by tpm2_createprimary with extra args at 0x81000001 and return its name
 * as tpm2_readpublic reports it. tpm2-tools leave transient objects behind without a resource
 * manager, hence the flushcontext. */
static void persist_srk(const struct swtpm *s, const char *alg, const char *attrs, struct tpm_name *ret) {
        char ctx[SWTPM_DIR_MAX + 16], namefile[SWTPM_DIR_MAX + 16];
        FILE *f;

        snprintf(ctx, sizeof(ctx), "%s/srk.ctx", s->dir);
        snprintf(namefile, sizeof(namefile), "%s/srk.name", s->dir);
        if (attrs)
                TOOL(s, "tpm2_createprimary", "-Q", "-C", "o", "-G", alg, "-a", attrs, "-c", ctx);
        else
                TOOL(s, "tpm2_createprimary", "-Q", "-C", "o", "-G", alg, "-c", ctx);
        TOOL(s, "tpm2_evictcontrol", "-Q", "-C", "o", "-c", ctx, "0x81000001");
        TOOL(s, "tpm2_flushcontext", "-t");
        TOOL(s, "tpm2_readpublic", "-Q", "-c", "0x81000001", "-n", namefile);

        f = fopen(namefile, "re");
        ck_assert_ptr_nonnull(f);
        ret->len = fread(ret->buf, 1, sizeof(ret->buf), f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_uint_eq(ret->len, 34);
}

static uint8_t *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        uint8_t *buf;
        long n;

        ck_assert_msg(f != NULL, "no capture at %s", path);
        ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        ck_assert_int_gt(n, 0);
        rewind(f);
        buf = malloc((size_t) n);
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(fread(buf, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        *ret_len = (size_t) n;
        return buf;
}

static int name_eq(const struct tpm_name *a, const struct tpm_name *b) {
        return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0;
}

START_TEST(test_open_close) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        struct tpm_name name = { .len = 0 };

        ck_assert_uint_eq(tpm_command_count(t), 1);    /* Startup */
        ck_assert_int_eq(tpm_parent_name(t, &name), 0);
        ck_assert_uint_eq(name.len, 34);
        ck_assert_int_eq(name.buf[0], 0x00);            /* nameAlg SHA256 = 0x000b */
        ck_assert_int_eq(name.buf[1], 0x0b);
        assert_clean(t);
        tpm_close(t);
        tpm_close(NULL);

        /* The same TPM again: the transient SRK is the same key. */
        t = open_tpm(&tpm_a);
        struct tpm_name again = { .len = 0 };
        ck_assert_int_eq(tpm_parent_name(t, &again), 0);
        ck_assert(name_eq(&name, &again));
        assert_clean(t);
        tpm_close(t);
}
END_TEST

START_TEST(test_open_bogus) {
        struct tpm_ctx *sentinel = (struct tpm_ctx *) &start_err, *t = sentinel;
        char tcti[PATH_MAX];
        int r;

        /* A socket path that does not exist (in a real, private directory). */
        require_swtpm();
        snprintf(tcti, sizeof(tcti), "swtpm:path=%s/nonexistent", tpm_a.dir);
        r = tpm_open(tcti, &t);
        ck_assert_int_eq(r, -ENODEV);
        ck_assert_ptr_eq(t, sentinel);
        ck_assert_msg(strstr(tpm_last_error(NULL), "nonexistent") != NULL,
                      "message does not name the TCTI: '%s'", tpm_last_error(NULL));

        ck_assert_int_eq(tpm_open(NULL, &t), -EINVAL);
        ck_assert_int_eq(tpm_open("", &t), -EINVAL);
        ck_assert_ptr_eq(t, sentinel);
        ck_assert_str_ne(tpm_last_error(NULL), "");

        /* A success clears the open error. */
        t = open_tpm(&tpm_a);
        ck_assert_str_eq(tpm_last_error(NULL), "");
        ck_assert_str_eq(tpm_last_error(t), "");
        tpm_close(t);
}
END_TEST

START_TEST(test_seal_unseal) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s1, s2, bad;
        struct tpm_name parent;
        uint64_t before;

        random_bytes(kek, sizeof(kek));
        before = tpm_command_count(t);
        seal_ok(t, kek, 0, &s1);
        fprintf(stderr, "# seal: %llu TPM commands\n", (unsigned long long) (tpm_command_count(t) - before - 3));
        before = tpm_command_count(t);
        unseal_ok(t, &s1, kek);
        fprintf(stderr, "# unseal: %llu TPM commands\n", (unsigned long long) (tpm_command_count(t) - before - 3));

        /* Fresh randomness (seed value, IV) in every seal. */
        seal_ok(t, kek, 0, &s2);
        ck_assert(s1.priv_len != s2.priv_len || memcmp(s1.priv, s2.priv, s1.priv_len) != 0);
        ck_assert(name_eq(&s1.parent, &s2.parent));
        ck_assert_int_eq(tpm_parent_name(t, &parent), 0);
        ck_assert(name_eq(&s1.parent, &parent));
        unseal_ok(t, &s2, kek);

        /* PCRs above 23 do not exist. */
        bad = s1;
        ck_assert_int_eq(tpm_seal(t, kek, 1u << 24, &bad), -EINVAL);
        ck_assert_mem_eq(&bad, &s1, sizeof(bad));

        /* Blobs must decode exactly. */
        bad = s1;
        bad.pub_len--;
        unseal_fails(t, &bad, -EBADMSG);
        bad = s1;
        bad.priv_len++;
        unseal_fails(t, &bad, -EBADMSG);
        bad = s1;
        bad.pub_len = TPM_SEALED_MAX + 1;
        unseal_fails(t, &bad, -EBADMSG);
        tpm_close(t);
}
END_TEST

START_TEST(test_reopen) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s;

        random_bytes(kek, sizeof(kek));
        seal_ok(t, kek, 0, &s);
        tpm_close(t);

        t = open_tpm(&tpm_a);
        unseal_ok(t, &s, kek);
        tpm_close(t);
}
END_TEST

START_TEST(test_persisted_srk) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        struct tpm_name transient, persisted, name;
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s;
        uint64_t before;

        random_bytes(kek, sizeof(kek));
        ck_assert_int_eq(tpm_parent_name(t, &transient), 0);
        seal_ok(t, kek, 0, &s);
        tpm_close(t);

        persist_srk(&tpm_a, "ecc256:aes128cfb", SRK_ATTRS_TOOLS, &persisted);

        t = open_tpm(&tpm_a);
        assert_clean(t);        /* tpm2-tools left nothing behind */
        before = tpm_command_count(t);
        ck_assert_int_eq(tpm_parent_name(t, &name), 0);
        /* Reused: TR_FromTPMPublic + ReadPublic, no CreatePrimary + FlushContext. */
        ck_assert_uint_eq(tpm_command_count(t) - before, 2);
        ck_assert(name_eq(&name, &persisted));
        /* Same template, same seed: the transient primary was this very key. */
        ck_assert(name_eq(&transient, &persisted));
        unseal_ok(t, &s, kek);
        seal_ok(t, kek, 0, &s);
        ck_assert(name_eq(&s.parent, &persisted));
        unseal_ok(t, &s, kek);
        tpm_close(t);
}
END_TEST

START_TEST(test_persisted_other) {
        struct tpm_ctx *t;
        struct tpm_name other, name;
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s;
        uint64_t before;

        require_swtpm();
        /* tpm2-tools' default attributes lack noDA: not the TCG template, so not reused. */
        persist_srk(&tpm_a, "ecc256:aes128cfb", NULL, &other);

        t = open_tpm(&tpm_a);
        before = tpm_command_count(t);
        ck_assert_int_eq(tpm_parent_name(t, &name), 0);
        /* TR_FromTPMPublic + ReadPublic, then CreatePrimary + FlushContext. */
        ck_assert_uint_eq(tpm_command_count(t) - before, 4);
        ck_assert(!name_eq(&name, &other));
        assert_clean(t);
        random_bytes(kek, sizeof(kek));
        seal_ok(t, kek, 0, &s);
        ck_assert(name_eq(&s.parent, &name));
        unseal_ok(t, &s, kek);
        tpm_close(t);
}
END_TEST

START_TEST(test_wrong_tpm) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s, forged;
        struct tpm_name name_b;

        random_bytes(kek, sizeof(kek));
        seal_ok(t, kek, 0, &s);
        tpm_close(t);

        t = open_tpm(&tpm_b);
        unseal_fails(t, &s, -EXDEV);
        ck_assert_msg(strstr(tpm_last_error(t), "Wrong TPM") != NULL, "error: '%s'", tpm_last_error(t));

        /* A blob whose pinned name was edited to match this TPM still fails, in the TPM. */
        ck_assert_int_eq(tpm_parent_name(t, &name_b), 0);
        forged = s;
        forged.parent = name_b;
        unseal_fails(t, &forged, -EXDEV);
        tpm_close(t);

        /* The right TPM still unseals it. */
        t = open_tpm(&tpm_a);
        unseal_ok(t, &s, kek);
        tpm_close(t);
}
END_TEST

START_TEST(test_tampered) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s, bad;

        random_bytes(kek, sizeof(kek));
        seal_ok(t, kek, 0, &s);

        /* In the encrypted sensitive area: the TPM's integrity check fails. */
        bad = s;
        bad.priv[bad.priv_len / 2] ^= 0x01;
        unseal_fails(t, &bad, -EXDEV);
        ck_assert_msg(strstr(tpm_last_error(t), "integrity") != NULL, "error: '%s'", tpm_last_error(t));

        /* Any single flipped byte, private or public, must fail one way or another. */
        for (size_t i = 0; i < s.priv_len; i++) {
                bad = s;
                bad.priv[i] ^= 0x80;
                unseal_fails(t, &bad, 0);
        }
        for (size_t i = 0; i < s.pub_len; i++) {
                bad = s;
                bad.pub[i] ^= 0x80;
                unseal_fails(t, &bad, 0);
        }
        unseal_ok(t, &s, kek);
        tpm_close(t);
}
END_TEST

START_TEST(test_pcr_policy) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t kek[TPM_KEK_SIZE];
        struct tpm_sealed s, downgraded;
        uint64_t before;

        random_bytes(kek, sizeof(kek));
        seal_ok(t, kek, 1u << TEST_PCR, &s);
        before = tpm_command_count(t);
        unseal_ok(t, &s, kek);
        fprintf(stderr, "# unseal with PCR policy: %llu TPM commands\n",
                (unsigned long long) (tpm_command_count(t) - before - 3));

        /* The object has no userWithAuth: claiming "no policy" does not get around it. */
        downgraded = s;
        downgraded.pcr_mask = 0;
        unseal_fails(t, &downgraded, 0);

        ck_assert_int_eq(tpm_test_pcr_extend(t, TEST_PCR), 0);
        unseal_fails(t, &s, -EPERM);
        ck_assert_msg(strstr(tpm_last_error(t), "PCR") != NULL, "error: '%s'", tpm_last_error(t));

        /* Sealed anew to the new value, it unseals again; and survives a reconnect. */
        seal_ok(t, kek, 1u << TEST_PCR, &s);
        unseal_ok(t, &s, kek);
        tpm_close(t);
        t = open_tpm(&tpm_a);
        unseal_ok(t, &s, kek);
        tpm_close(t);
}
END_TEST

START_TEST(test_counter) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t auth[TPM_COUNTER_AUTH_SIZE], wrong[TPM_COUNTER_AUTH_SIZE];
        uint32_t index = 0, lockout = 99;
        uint64_t v0 = 0, v = 0, before;
        int r;

        random_bytes(auth, sizeof(auth));
        memcpy(wrong, auth, sizeof(wrong));
        wrong[0] ^= 1;

        r = tpm_counter_define(t, auth, &index, &v0);
        ck_assert_msg(r == 0, "define: %s: %s", strerror(-r), tpm_last_error(t));
        ck_assert_uint_ge(index, TPM_COUNTER_FIRST);
        ck_assert_uint_le(index, TPM_COUNTER_LAST);
        ck_assert_uint_ge(v0, 1);
        assert_clean(t);

        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0);
        assert_clean(t);

        before = tpm_command_count(t);
        ck_assert_int_eq(tpm_counter_increment(t, index, auth, &v), 0);
        fprintf(stderr, "# counter increment: %llu TPM commands\n",
                (unsigned long long) (tpm_command_count(t) - before));
        ck_assert_uint_eq(v, v0 + 1);
        v = 0;
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0 + 1);
        assert_clean(t);

        /* The bound fast path: exactly one TPM command per bump; the bound counter's salted
         * session is the only thing left loaded, and reading the bound counter keeps it bound. */
        ck_assert_int_eq(tpm_counter_bump(t), -EINVAL);
        ck_assert_int_eq(tpm_counter_bind(t, index, auth), 0);
        assert_loaded(t, 1);
        before = tpm_command_count(t);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(tpm_counter_bump(t), 0);
        ck_assert_uint_eq(tpm_command_count(t) - before, 3);
        assert_loaded(t, 1);
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0 + 4);
        before = tpm_command_count(t);
        ck_assert_int_eq(tpm_counter_bump(t), 0);
        ck_assert_uint_eq(tpm_command_count(t) - before, 1);
        /* Rebinding (here the same index, with a wrong auth) replaces the session. */
        ck_assert_int_eq(tpm_counter_bind(t, index, wrong), 0);
        assert_loaded(t, 1);
        ck_assert_int_eq(tpm_counter_bump(t), -EACCES);
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0 + 5);
        v0 += 4;

        /* Wrong auth: refused, output untouched, and more failures than swtpm's lockout
         * threshold (3) leave the DA counter at 0 (NO_DA). */
        for (int i = 0; i < 5; i++) {
                v = 12345;
                ck_assert_int_eq(tpm_counter_read(t, index, wrong, &v), -EACCES);
                ck_assert_uint_eq(v, 12345);
                ck_assert_int_eq(tpm_counter_increment(t, index, wrong, &v), -EACCES);
                ck_assert_uint_eq(v, 12345);
                assert_loaded(t, 1);
        }
        ck_assert_int_eq(tpm_test_lockout_counter(t, &lockout), 0);
        ck_assert_uint_eq(lockout, 0);
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0 + 1);

        /* Survives a reconnect; tpm_close() flushed the bound session. */
        tpm_close(t);
        t = open_tpm(&tpm_a);
        assert_clean(t);
        ck_assert_int_eq(tpm_counter_increment(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0 + 2);

        ck_assert_int_eq(tpm_counter_read(t, TPM_COUNTER_LAST + 1, auth, &v), -EINVAL);
        ck_assert_int_eq(tpm_counter_undefine(t, index), 0);
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), -ENOENT);
        ck_assert_int_eq(tpm_counter_increment(t, index, auth, &v), -ENOENT);
        ck_assert_int_eq(tpm_counter_undefine(t, index), -ENOENT);
        assert_clean(t);
        tpm_close(t);
}
END_TEST

START_TEST(test_counter_not_ours) {
        struct tpm_ctx *t;
        uint8_t auth[TPM_COUNTER_AUTH_SIZE] = { 0 };
        uint64_t v = 7;

        require_swtpm();
        /* An ordinary index in our range, as an attacker with owner auth could plant one. */
        TOOL(&tpm_a, "tpm2_nvdefine", "-Q", "-C", "o", "-s", "8",
             "-a", "authread|authwrite|no_da", "0x01500001");
        t = open_tpm(&tpm_a);
        ck_assert_int_eq(tpm_counter_read(t, 0x01500001, auth, &v), -EMEDIUMTYPE);
        ck_assert_int_eq(tpm_counter_undefine(t, 0x01500001), -EMEDIUMTYPE);
        ck_assert_uint_eq(v, 7);
        assert_clean(t);
        tpm_close(t);
}
END_TEST

/* vaultd's one counter at a fixed index: a counter defined anew there (its auth value lost with a
 * refused vault file) starts above every value the removed one reached, which is what refuses
 * every vault file of before a provisioning (docs/vault-file.md §6). probe needs no auth value. */
START_TEST(test_counter_redefine) {
        const uint32_t index = TPM_COUNTER_FIRST;
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t auth[TPM_COUNTER_AUTH_SIZE], other[TPM_COUNTER_AUTH_SIZE];
        uint64_t v0 = 0, v = 0, again = 0;
        int r;

        random_bytes(auth, sizeof(auth));
        random_bytes(other, sizeof(other));
        ck_assert_int_eq(tpm_counter_probe(t, index), 0);
        r = tpm_counter_define_at(t, index, auth, &v0);
        ck_assert_msg(r == 0, "define_at: %s: %s", strerror(-r), tpm_last_error(t));
        ck_assert_int_eq(tpm_counter_define_at(t, index, other, &v), -EEXIST);
        ck_assert_int_eq(tpm_counter_probe(t, index), 1);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(tpm_counter_increment(t, index, auth, &v), 0);
        ck_assert_uint_eq(v, v0 + 5);
        ck_assert_int_eq(tpm_counter_undefine(t, index), 0);
        ck_assert_int_eq(tpm_counter_probe(t, index), 0);
        r = tpm_counter_define_at(t, index, other, &again);
        ck_assert_msg(r == 0, "define_at again: %s: %s", strerror(-r), tpm_last_error(t));
        ck_assert_uint_gt(again, v);
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), -EACCES);
        ck_assert_int_eq(tpm_counter_define_at(t, TPM_COUNTER_LAST + 1, other, &v), -EINVAL);
        ck_assert_int_eq(tpm_counter_undefine(t, index), 0);
        assert_clean(t);
        tpm_close(t);

        require_swtpm();
        TOOL(&tpm_a, "tpm2_nvdefine", "-Q", "-C", "o", "-s", "8",
             "-a", "authread|authwrite|no_da", "0x01500001");
        t = open_tpm(&tpm_a);
        ck_assert_int_eq(tpm_counter_probe(t, 0x01500001), -EMEDIUMTYPE);
        ck_assert_int_eq(tpm_counter_define_at(t, 0x01500001, other, &v), -EEXIST);
        tpm_close(t);
}
END_TEST

/* A sealed object made by someone else under the same SRK (anyone may create under it), holding
 * 16 bytes: loads and unseals in the TPM, but is refused for its size; the output stays put. */
START_TEST(test_foreign_size) {
        char data[SWTPM_DIR_MAX + 16], pub[SWTPM_DIR_MAX + 16], priv[SWTPM_DIR_MAX + 16];
        struct tpm_name srk;
        struct tpm_sealed s = { .pcr_mask = 0 };
        struct tpm_ctx *t;
        uint8_t *buf;
        size_t len;
        FILE *f;

        require_swtpm();
        persist_srk(&tpm_a, "ecc256:aes128cfb", SRK_ATTRS_TOOLS, &srk);
        snprintf(data, sizeof(data), "%s/data", tpm_a.dir);
        snprintf(pub, sizeof(pub), "%s/sealed.pub", tpm_a.dir);
        snprintf(priv, sizeof(priv), "%s/sealed.priv", tpm_a.dir);
        f = fopen(data, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite("0123456789abcdef", 1, 16, f), 16);
        ck_assert_int_eq(fclose(f), 0);
        TOOL(&tpm_a, "tpm2_create", "-Q", "-C", "0x81000001", "-i", data, "-u", pub, "-r", priv,
             "-a", "fixedtpm|fixedparent|userwithauth|noda");

        buf = read_file(pub, &len);
        ck_assert_uint_le(len, sizeof(s.pub));
        memcpy(s.pub, buf, len);
        s.pub_len = len;
        free(buf);
        buf = read_file(priv, &len);
        ck_assert_uint_le(len, sizeof(s.priv));
        memcpy(s.priv, buf, len);
        s.priv_len = len;
        free(buf);
        s.parent = srk;

        t = open_tpm(&tpm_a);
        unseal_fails(t, &s, -EBADMSG);
        ck_assert_msg(strstr(tpm_last_error(t), "16 bytes") != NULL, "error: '%s'", tpm_last_error(t));
        tpm_close(t);
}
END_TEST

/* Every kind of failure, more often than swtpm has slots: a handle leaked on any path would
 * make a later operation fail with out-of-memory for objects or sessions. */
START_TEST(test_no_leak_stress) {
        struct tpm_ctx *t = open_tpm(&tpm_a);
        uint8_t kek[TPM_KEK_SIZE], auth[TPM_COUNTER_AUTH_SIZE], wrong[TPM_COUNTER_AUTH_SIZE];
        struct tpm_sealed s, ps, bad;
        uint32_t index;
        uint64_t v;

        random_bytes(kek, sizeof(kek));
        random_bytes(auth, sizeof(auth));
        memset(wrong, 0, sizeof(wrong));
        seal_ok(t, kek, 0, &s);
        ck_assert_int_eq(tpm_counter_define(t, auth, &index, &v), 0);

        for (int i = 0; i < STRESS_ROUNDS; i++) {
                seal_ok(t, kek, 1u << TEST_PCR, &ps);
                unseal_ok(t, &ps, kek);
                unseal_ok(t, &s, kek);

                bad = s;
                bad.priv[bad.priv_len / 2] ^= 1;
                unseal_fails(t, &bad, -EXDEV);                  /* fails in Load */
                bad = s;
                bad.parent.buf[5] ^= 1;
                unseal_fails(t, &bad, -EXDEV);                  /* fails before any session */
                ck_assert_int_eq(tpm_test_pcr_extend(t, TEST_PCR), 0);
                unseal_fails(t, &ps, -EPERM);                   /* fails in Unseal, 2 sessions */

                ck_assert_int_eq(tpm_counter_increment(t, index, wrong, &v), -EACCES);
                ck_assert_int_eq(tpm_counter_increment(t, index, auth, &v), 0);
                assert_clean(t);
        }
        ck_assert_int_eq(tpm_counter_undefine(t, index), 0);
        assert_clean(t);
        tpm_close(t);
}
END_TEST

/* Record everything that crosses the TCTI (the pcap TCTI wraps the swtpm one), one capture per
 * operation, and check two things in it:
 *  - the secrets (the KEK, sealed and unsealed, with and without a PCR policy, and the counter's
 *    auth value) never appear in clear; the sealed public area, which does travel in clear, is the
 *    positive control that the search finds what is there;
 *  - the sessions that protect them are salted: parameter encryption under an unsalted, unbound
 *    session uses a key anyone on the wire can compute, so "not in clear" alone proves nothing. */
static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

#define TPM_CC_START_AUTH_SESSION 0x00000176u
#define TPM_RH_NULL 0x40000007u

struct capture {
        uint8_t *buf;
        size_t len;
        unsigned salted, unsalted;      /* TPM2_StartAuthSession commands seen */
};

/* Find TPM2_StartAuthSession commands (tag NO_SESSIONS, size, command code) and classify them:
 * salted = a tpmKey and a non-empty encryptedSalt. */
static void capture_sessions(struct capture *c) {
        c->salted = c->unsalted = 0;
        for (size_t i = 0; i + 22 <= c->len; i++) {
                const uint8_t *p = c->buf + i;
                uint32_t size, key;
                size_t salt;

                if (p[0] != 0x80 || p[1] != 0x01 || be32(p + 6) != TPM_CC_START_AUTH_SESSION)
                        continue;
                size = be32(p + 2);
                if (size < 22 || size > c->len - i)
                        continue;
                key = be32(p + 10);
                salt = 20 + ((size_t) p[18] << 8 | p[19]);      /* skip nonceCaller */
                if (salt + 2 > size)
                        continue;
                if (key != TPM_RH_NULL && (p[salt] << 8 | p[salt + 1]) > 0)
                        c->salted++;
                else
                        c->unsalted++;
        }
}

static struct tpm_ctx *capture_open(const char *name, char *path, size_t size) {
        char tcti[sizeof(tpm_a.tcti) + 8];
        struct tpm_ctx *t = NULL;
        int r;

        require_swtpm();
        snprintf(path, size, "%s/%s.pcap", tpm_a.dir, name);
        snprintf(tcti, sizeof(tcti), "pcap:%s", tpm_a.tcti);
        ck_assert_int_eq(setenv("TCTI_PCAP_FILE", path, 1), 0);
        r = tpm_open(tcti, &t);
        unsetenv("TCTI_PCAP_FILE");
        ck_assert_msg(r == 0, "tpm_open(%s): %s", tcti, tpm_last_error(NULL));
        return t;
}

/* Close t, then check its capture: no secret, and the expected session mix. */
static void capture_check(struct tpm_ctx *t, const char *path, const uint8_t *const secrets[], size_t nsecrets,
                          unsigned salted, unsigned unsalted) {
        struct capture c;

        tpm_close(t);
        c.buf = read_file(path, &c.len);
        for (size_t i = 0; i < nsecrets; i++)
                ck_assert_msg(memmem(c.buf, c.len, secrets[i], 8) == NULL,
                              "%s: secret %zu crossed the TCTI in clear", path, i);
        capture_sessions(&c);
        ck_assert_msg(c.salted == salted && c.unsalted == unsalted,
                      "%s: %u salted + %u unsalted sessions, want %u + %u",
                      path, c.salted, c.unsalted, salted, unsalted);
        free(c.buf);
}

START_TEST(test_no_secret_on_wire) {
        uint8_t kek[TPM_KEK_SIZE], auth[TPM_COUNTER_AUTH_SIZE], *buf;
        const uint8_t *const secrets[] = { kek, kek + 8, kek + 16, kek + 24, auth, auth + 24 };
        const size_t n = sizeof(secrets) / sizeof(secrets[0]);
        char path[SWTPM_DIR_MAX + 32];
        struct tpm_sealed s, ps;
        struct tpm_ctx *t;
        uint32_t index;
        uint64_t v;
        size_t len;

        random_bytes(kek, sizeof(kek));
        random_bytes(auth, sizeof(auth));

        t = capture_open("seal", path, sizeof(path));
        seal_ok(t, kek, 0, &s);
        capture_check(t, path, secrets, n, 1, 0);
        buf = read_file(path, &len);
        ck_assert_msg(memmem(buf, len, s.pub + 2, s.pub_len - 2) != NULL, "positive control not found");
        free(buf);

        t = capture_open("unseal", path, sizeof(path));
        unseal_ok(t, &s, kek);
        capture_check(t, path, secrets, n, 1, 0);

        /* With a policy: one more, unsalted, session (trial, resp. policy): it carries nothing secret. */
        t = capture_open("seal-pcr", path, sizeof(path));
        seal_ok(t, kek, 1u << TEST_PCR, &ps);
        capture_check(t, path, secrets, n, 1, 1);
        t = capture_open("unseal-pcr", path, sizeof(path));
        unseal_ok(t, &ps, kek);
        capture_check(t, path, secrets, n, 1, 1);

        t = capture_open("counter-define", path, sizeof(path));
        ck_assert_int_eq(tpm_counter_define(t, auth, &index, &v), 0);
        capture_check(t, path, secrets, n, 1, 0);
        /* Increment and read: salted HMAC sessions, so the TPM's answers cannot be forged; the
         * auth value is never sent. */
        t = capture_open("counter-use", path, sizeof(path));
        ck_assert_int_eq(tpm_counter_increment(t, index, auth, &v), 0);
        ck_assert_int_eq(tpm_counter_read(t, index, auth, &v), 0);
        capture_check(t, path, secrets, n, 2, 0);
        /* Bind + bumps: one salted session for all of them, never the auth value as a password. */
        t = capture_open("counter-bump", path, sizeof(path));
        ck_assert_int_eq(tpm_counter_bind(t, index, auth), 0);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(tpm_counter_bump(t), 0);
        ck_assert_int_eq(tpm_counter_undefine(t, index), 0);
        capture_check(t, path, secrets, n, 1, 0);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test, void (*setup)(void)) {
        TCase *tc = tcase_create(name);

        tcase_set_timeout(tc, TEST_TIMEOUT);
        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test);
        suite_add_tcase(s, tc);
}

static Suite *tpm_suite(void) {
        Suite *s = suite_create("tpm");

        /* One case per test so that each gets its own swtpm from the unchecked fixture. */
        add_case(s, "open_close", test_open_close, setup_one);
        add_case(s, "open_bogus", test_open_bogus, setup_one);
        add_case(s, "seal_unseal", test_seal_unseal, setup_one);
        add_case(s, "reopen", test_reopen, setup_one);
        add_case(s, "persisted_srk", test_persisted_srk, setup_one);
        add_case(s, "persisted_other", test_persisted_other, setup_one);
        add_case(s, "wrong_tpm", test_wrong_tpm, setup_two);
        add_case(s, "tampered", test_tampered, setup_one);
        add_case(s, "pcr_policy", test_pcr_policy, setup_one);
        add_case(s, "counter", test_counter, setup_one);
        add_case(s, "counter_not_ours", test_counter_not_ours, setup_one);
        add_case(s, "counter_redefine", test_counter_redefine, setup_one);
        add_case(s, "foreign_size", test_foreign_size, setup_one);
        add_case(s, "no_secret_on_wire", test_no_secret_on_wire, setup_one);
        add_case(s, "no_leak_stress", test_no_leak_stress, setup_one);
        return s;
}

int main(void) {
        char bin[PATH_MAX];
        SRunner *sr;
        int failed;

        if (swtpm_find(bin, sizeof(bin)) < 0) {
                printf("1..0 # SKIP swtpm not found\n");
                return 77;
        }
        /* tss2 logs expected failures (bogus TCTI, wrong auth) to stderr; keep the log readable.
         * Set TSS2_LOG yourself to see them. */
        setenv("TSS2_LOG", "all+none", 0);
        /* A dying swtpm must fail the test, not kill it with SIGPIPE mid-write. */
        signal(SIGPIPE, SIG_IGN);

        sr = srunner_create(tpm_suite());
        srunner_set_tap(sr, "-");
        srunner_run_all(sr, CK_SILENT);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
