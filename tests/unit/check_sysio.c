/* SPDX-License-Identifier: MIT */
/* libsvio.a: the logger, the fault-injection hook, secret memory and the list macros. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "list.h"
#include "log.h"
#include "secmem.h"
#include "unit.h"

/* Runs fn with stderr redirected into a pipe and returns what it wrote. */
static void capture_stderr(void (*fn)(void), char *out, size_t cap) {
        int p[2], saved;
        ssize_t n;

        ck_assert_int_eq(pipe(p), 0);
        saved = dup(STDERR_FILENO);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
        close(p[1]);
        fn();
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        n = read(p[0], out, cap - 1);
        ck_assert_int_ge(n, 0);
        out[n] = '\0';
        close(p[0]);
}

static void write_kmsg_lines(void) {
        log_open("check", LOG_TARGET_KMSG, LOG_TARGET_KMSG, NULL);
        log_set_max_level(LOG_INFO);
        log_warning("peer said %s", "hi\nthere\x1b[0m");
        log_debug("not shown at level info");
        ck_assert_int_eq(log_error_errno(-ENOENT, "open '%s': %m", "x"), -ENOENT);
        ck_assert_int_eq(log_info_errno(EACCES, "positive %d", 1), -EACCES);
        ck_assert_int_eq(log_notice("plain"), 0);
}

START_TEST(test_kmsg_format_levels_escapes) {
        char out[1024];

        capture_stderr(write_kmsg_lines, out, sizeof out);
        ck_assert_str_eq(out,
                         "<4>peer said hi\\nthere\\x1b[0m\n"
                         "<3>open 'x': No such file or directory\n"
                         "<6>positive 1\n"
                         "<5>plain\n");
}
END_TEST

static void write_console_lines(void) {
        log_open("devicectl", LOG_TARGET_CONSOLE, LOG_TARGET_CONSOLE, NULL);
        log_set_max_level(LOG_WARNING);
        log_error("cannot reach vaultd");
        log_notice("hidden");
}

START_TEST(test_console_format) {
        char out[256];

        capture_stderr(write_console_lines, out, sizeof out);
        ck_assert_str_eq(out, "devicectl: cannot reach vaultd\n");
}
END_TEST

static void write_long_line(void) {
        char big[3 * LOG_MESSAGE_MAX];

        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        log_open("check", LOG_TARGET_KMSG, LOG_TARGET_KMSG, NULL);
        log_set_max_level(LOG_DEBUG);
        log_info("%s", big);
}

START_TEST(test_long_line_cut) {
        char out[4 * LOG_MESSAGE_MAX];
        size_t len;

        capture_stderr(write_long_line, out, sizeof out);
        len = strlen(out);
        ck_assert_uint_lt(len, LOG_MESSAGE_MAX + 8);
        ck_assert_str_eq(out + len - 4, "...\n");
        ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1);
}
END_TEST

START_TEST(test_auto_without_journal) {
        unsetenv("JOURNAL_STREAM");
        log_open("check", LOG_TARGET_AUTO, LOG_TARGET_CONSOLE, NULL);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_CONSOLE);
        /* A stream that is not stderr's: inherited by a child, not ours. */
        setenv("JOURNAL_STREAM", "1:1", 1);
        log_open("check", LOG_TARGET_AUTO, LOG_TARGET_KMSG, NULL);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_KMSG);
        unsetenv("JOURNAL_STREAM");
}
END_TEST

/* A journal writer standing in for log_journal_sink (libsvjournal.a): records what it got;
 * sink_result is what it returns. */
static int sink_calls, sink_result, sink_level, sink_error;
static char sink_ident[32], sink_message[LOG_MESSAGE_MAX], sink_field[64];

static int fake_sink(const char *ident, int level, int error, const char *file, int line, const char *func,
                     const struct log_field *fields, size_t n_fields, const char *message) {
        (void) file, (void) line, (void) func;
        sink_calls++;
        sink_level = level;
        sink_error = error;
        snprintf(sink_ident, sizeof sink_ident, "%s", ident);
        snprintf(sink_message, sizeof sink_message, "%s", message);
        sink_field[0] = '\0';
        if (n_fields > 0)
                snprintf(sink_field, sizeof sink_field, "%s=%s", fields[0].name, fields[0].value);
        return sink_result;
}

/* JOURNAL_STREAM naming stderr (tail appended), as systemd sets it. */
static void set_journal_stream(const char *tail) {
        struct stat st;
        char v[64];

        ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
        snprintf(v, sizeof v, "%ju:%ju%s", (uintmax_t) st.st_dev, (uintmax_t) st.st_ino, tail);
        setenv("JOURNAL_STREAM", v, 1);
}

START_TEST(test_auto_with_journal) {
        set_journal_stream("");
        log_open("check", LOG_TARGET_AUTO, LOG_TARGET_CONSOLE, fake_sink);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_JOURNAL);
        /* No journal writer (devicectl): never the journal, whatever stderr is. */
        log_open("check", LOG_TARGET_AUTO, LOG_TARGET_CONSOLE, NULL);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_CONSOLE);
        log_open("check", LOG_TARGET_JOURNAL, LOG_TARGET_CONSOLE, NULL);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_KMSG);
        set_journal_stream("x");
        log_open("check", LOG_TARGET_AUTO, LOG_TARGET_CONSOLE, fake_sink);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_CONSOLE);
        unsetenv("JOURNAL_STREAM");
}
END_TEST

/* vaultd's log_open() under systemd, with fake_sink as its journal writer. */
static void open_journal(void) {
        set_journal_stream("");
        log_open("vaultd", LOG_TARGET_AUTO, LOG_TARGET_KMSG, fake_sink);
        unsetenv("JOURNAL_STREAM");
        log_set_max_level(LOG_INFO);
        sink_calls = 0;
        sink_result = 0;
}

static void write_journal_lines(void) {
        open_journal();
        log_notice("taken");
        log_debug("below the level: not written");
        /* The journal took nothing: the line goes to stderr instead. */
        sink_result = -ENOENT;
        log_error("fallback");
}

START_TEST(test_journal_sink) {
        char out[256];

        capture_stderr(write_journal_lines, out, sizeof out);
        ck_assert_int_eq(sink_calls, 2);
        ck_assert_str_eq(sink_ident, "vaultd");
        ck_assert_int_eq(sink_level, LOG_ERR);
        ck_assert_int_eq(sink_error, 0);
        ck_assert_str_eq(sink_message, "fallback");
        ck_assert_str_eq(out, "<3>fallback\n");
}
END_TEST

static void write_journal_first(void) {
        const struct log_field f[] = { { "DEVICE_ID", "dev1" } };

        open_journal();
        log_struct_errno(LOG_WARNING, -EIO, f, 1, "taken %s", "a\tb");
}

START_TEST(test_journal_sink_fields) {
        char out[256];

        capture_stderr(write_journal_first, out, sizeof out);
        ck_assert_str_eq(out, "");
        ck_assert_int_eq(sink_calls, 1);
        ck_assert_int_eq(sink_level, LOG_WARNING);
        ck_assert_int_eq(sink_error, EIO);
        ck_assert_str_eq(sink_message, "taken a\\tb");
        ck_assert_str_eq(sink_field, "DEVICE_ID=dev1");
}
END_TEST

START_TEST(test_level_names) {
        ck_assert_int_eq(log_level_from_string("debug"), LOG_DEBUG);
        ck_assert_int_eq(log_level_from_string("WARNING"), LOG_WARNING);
        ck_assert_int_eq(log_level_from_string("warn"), LOG_WARNING);
        ck_assert_int_eq(log_level_from_string("error"), LOG_ERR);
        ck_assert_int_eq(log_level_from_string("err"), LOG_ERR);
        ck_assert_int_eq(log_level_from_string("3"), 3);
        ck_assert_int_eq(log_level_from_string("8"), -EINVAL);
        ck_assert_int_eq(log_level_from_string("33"), -EINVAL);
        ck_assert_int_eq(log_level_from_string(""), -EINVAL);
        ck_assert_int_eq(log_level_from_string("loud"), -EINVAL);
        ck_assert_str_eq(log_level_to_string(LOG_NOTICE), "notice");
        ck_assert_ptr_null(log_level_to_string(8));
}
END_TEST

START_TEST(test_escape_bounds) {
        char dst[6];

        ck_assert_str_eq(log_escape("ab\tc", dst, sizeof dst), "ab\\tc");
        /* An escape that does not fit is dropped whole, never cut in half. */
        ck_assert_str_eq(log_escape("abcd\x01", dst, sizeof dst), "abcd");
        ck_assert_str_eq(log_escape("\x7f", dst, sizeof dst), "\\x7f");
}
END_TEST

static const char *const known_points[] = { "before-file", "after-file", "dir-fsync", NULL };

START_TEST(test_fault_points) {
        const char *bad = NULL;

        unsetenv(FAULT_ENV);
        ck_assert_int_eq(fault_setup(known_points, &bad), 0);
        ck_assert(!fault_armed());
        ck_assert(!fault_fail("after-file"));

        setenv(FAULT_ENV, "after-file,dir-fsync", 1);
        ck_assert_int_eq(fault_setup(known_points, &bad), 0);
        ck_assert(fault_armed());
        ck_assert(fault_fail("after-file"));
        ck_assert(fault_fail("dir-fsync"));
        ck_assert(!fault_fail("before-file"));
        ck_assert(!fault_fail("file"));
        ck_assert(!fault_fail("after"));
        ck_assert(!fault_fail(""));
        ck_assert(!fault_fail("after-file,dir-fsync"));

        setenv(FAULT_ENV, "after-file,afterfile", 1);
        ck_assert_int_eq(fault_setup(known_points, &bad), -EINVAL);
        ck_assert_str_eq(bad, "after-file,afterfile");
        ck_assert(!fault_armed());
        unsetenv(FAULT_ENV);
}
END_TEST

START_TEST(test_fault_crash_exits) {
        int status;
        pid_t pid;

        setenv(FAULT_ENV, "before-file", 1);
        ck_assert_int_eq(fault_setup(known_points, NULL), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                fault_crash("after-file");      /* not armed: goes on */
                fault_crash("before-file");
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), FAULT_CRASH_EXIT);
        unsetenv(FAULT_ENV);
        ck_assert_int_eq(fault_setup(known_points, NULL), 0);
}
END_TEST

struct item {
        int v;
        LIST_FIELDS(struct item, all);
};

START_TEST(test_list_queue_and_set) {
        LIST_HEAD(struct item) head = { 0 };
        struct item it[4] = { { .v = 0 }, { .v = 1 }, { .v = 2 }, { .v = 3 } };
        struct item *i, *n;
        int seen[4], k = 0;

        LIST_APPEND(all, &head, &it[1]);
        LIST_APPEND(all, &head, &it[2]);
        LIST_PREPEND(all, &head, &it[0]);
        LIST_APPEND(all, &head, &it[3]);
        ck_assert_uint_eq(head.n, 4);
        LIST_FOREACH(all, i, &head)
                seen[k++] = i->v;
        ck_assert_int_eq(k, 4);
        for (k = 0; k < 4; k++)
                ck_assert_int_eq(seen[k], k);

        LIST_REMOVE(all, &head, &it[2]);        /* middle */
        ck_assert(!LIST_LINKED(all, &head, &it[2]));
        ck_assert(LIST_LINKED(all, &head, &it[0]));
        LIST_REMOVE(all, &head, &it[0]);        /* first */
        ck_assert_ptr_eq(head.first, &it[1]);
        LIST_REMOVE(all, &head, &it[3]);        /* last */
        ck_assert_ptr_eq(head.last, &it[1]);
        ck_assert_uint_eq(head.n, 1);

        LIST_APPEND(all, &head, &it[2]);
        k = 0;
        LIST_FOREACH_SAFE(all, i, n, &head) {
                LIST_REMOVE(all, &head, i);
                k++;
        }
        ck_assert_int_eq(k, 2);
        ck_assert_ptr_null(head.first);
        ck_assert_ptr_null(head.last);
        ck_assert_uint_eq(head.n, 0);
}
END_TEST

START_TEST(test_secmem_harden) {
        struct rlimit rl;

        /* Check runs each test in its own child: the settings do not outlive it. */
        ck_assert_int_eq(secmem_harden_process(), 0);
        ck_assert_int_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
        ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
        ck_assert_uint_eq(rl.rlim_cur, 0);
        ck_assert_uint_eq(rl.rlim_max, 0);
        /* Again, with the hard limit 0 already: still fine. */
        ck_assert_int_eq(secmem_harden_process(), 0);
}
END_TEST

static void check_secret_pages(void) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        unsigned char *p = NULL;

        ck_assert_int_eq(secmem_alloc(0, (void **) &p), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_int_eq(secmem_alloc(page + 1, (void **) &p), 0);
        ck_assert_ptr_nonnull(p);
        /* Zeroed, and two whole pages usable. */
        for (size_t i = 0; i < 2 * page; i++)
                ck_assert_uint_eq(p[i], 0);
        memset(p, 0xa5, 2 * page);
        secmem_free(p, page + 1);
        secmem_free(NULL, 1);
}

START_TEST(test_secmem_mlock) {
        ck_assert_str_eq(secmem_mechanism(), "mlock+MADV_DONTDUMP");
        check_secret_pages();
        secmem_init(false);
        ck_assert_str_eq(secmem_mechanism(), "mlock+MADV_DONTDUMP");
        check_secret_pages();
}
END_TEST

START_TEST(test_secmem_best) {
        secmem_init(true);
        ck_assert(strcmp(secmem_mechanism(), "memfd_secret") == 0 ||
                  strcmp(secmem_mechanism(), "mlock+MADV_DONTDUMP") == 0);
        check_secret_pages();
}
END_TEST

static Suite *sysio_suite(void) {
        Suite *s = suite_create("sysio");
        TCase *tc = tcase_create("sysio");

        tcase_add_test(tc, test_kmsg_format_levels_escapes);
        tcase_add_test(tc, test_console_format);
        tcase_add_test(tc, test_long_line_cut);
        tcase_add_test(tc, test_auto_without_journal);
        tcase_add_test(tc, test_auto_with_journal);
        tcase_add_test(tc, test_journal_sink);
        tcase_add_test(tc, test_journal_sink_fields);
        tcase_add_test(tc, test_level_names);
        tcase_add_test(tc, test_escape_bounds);
        tcase_add_test(tc, test_fault_points);
        tcase_add_test(tc, test_fault_crash_exits);
        tcase_add_test(tc, test_list_queue_and_set);
        tcase_add_test(tc, test_secmem_harden);
        tcase_add_test(tc, test_secmem_mlock);
        tcase_add_test(tc, test_secmem_best);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(sysio_suite());
}
