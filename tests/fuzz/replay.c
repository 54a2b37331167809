/* SPDX-License-Identifier: MIT */
/*
 * The main() of a fuzz target built without libFuzzer: replays files through
 * LLVMFuzzerTestOneInput() and reports one TAP line per file.
 *
 *   fuzz-NAME [FILE|DIR]...
 *
 * A directory stands for every regular file in it, sorted by name. With no argument the
 * target replays its committed corpus, $top_srcdir/tests/fuzz/corpus/fuzz-NAME (NAME from
 * argv[0]), which is how make check runs it. A missing or empty directory, or an
 * unreadable file, is a failure, so that a broken corpus path cannot pass silently.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

struct entry {
        char *path;
        char *error;            /* why it cannot be replayed, NULL if it can */
};

struct list {
        struct entry *v;
        size_t len, cap;
};

static void *xmalloc(size_t len) {
        void *p = malloc(len ? len : 1);

        if (!p) {
                fputs("Bail out! out of memory\n", stdout);
                exit(1);
        }
        return p;
}

static char *xstrdup(const char *s) {
        size_t len = strlen(s) + 1;

        return memcpy(xmalloc(len), s, len);
}

static char *path_join(const char *dir, const char *name) {
        size_t dl = strlen(dir), nl = strlen(name);
        char *p = xmalloc(dl + 1 + nl + 1);

        memcpy(p, dir, dl);
        p[dl] = '/';
        memcpy(p + dl + 1, name, nl + 1);
        return p;
}

static void list_add(struct list *l, char *path, const char *error) {
        if (l->len == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                struct entry *v = realloc(l->v, cap * sizeof *v);

                if (!v) {
                        fputs("Bail out! out of memory\n", stdout);
                        exit(1);
                }
                l->v = v;
                l->cap = cap;
        }
        l->v[l->len++] = (struct entry) { path, error ? xstrdup(error) : NULL };
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Adds a file, or every regular file of a directory in byte order of the names. */
static void collect(struct list *l, const char *arg) {
        struct stat st;
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0, cap = 0, added = 0;

        if (stat(arg, &st) < 0) {
                list_add(l, xstrdup(arg), strerror(errno));
                return;
        }
        if (!S_ISDIR(st.st_mode)) {
                list_add(l, xstrdup(arg), S_ISREG(st.st_mode) ? NULL : "not a regular file");
                return;
        }
        d = opendir(arg);
        if (!d) {
                list_add(l, xstrdup(arg), strerror(errno));
                return;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
                        continue;
                if (n == cap) {
                        char **v;

                        cap = cap ? 2 * cap : 64;
                        v = realloc(names, cap * sizeof *v);
                        if (!v) {
                                fputs("Bail out! out of memory\n", stdout);
                                exit(1);
                        }
                        names = v;
                }
                names[n++] = xstrdup(de->d_name);
        }
        closedir(d);
        if (n > 0)
                qsort(names, n, sizeof *names, cmp_names);
        for (size_t i = 0; i < n; i++) {
                char *path = path_join(arg, names[i]);

                if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        list_add(l, path, NULL);
                        added++;
                } else
                        free(path);
                free(names[i]);
        }
        free(names);
        if (added == 0)
                list_add(l, xstrdup(arg), "directory holds no regular file");
}

/* Reads a whole file into a buffer of exactly its size, so that ASan sees any over-read. */
static int read_file(const char *path, uint8_t **ret, size_t *ret_len) {
        FILE *f;
        uint8_t *data = NULL;
        size_t len = 0, cap = 0;
        int err = 0;

        f = fopen(path, "rb");
        if (!f)
                return -errno;
        for (;;) {
                uint8_t chunk[4096];
                size_t got = fread(chunk, 1, sizeof chunk, f);

                if (got > 0) {
                        if (len + got > cap) {
                                uint8_t *v;

                                cap = 2 * (len + got);
                                v = realloc(data, cap);
                                if (!v) {
                                        err = -ENOMEM;
                                        break;
                                }
                                data = v;
                        }
                        memcpy(data + len, chunk, got);
                        len += got;
                }
                if (got < sizeof chunk) {
                        if (ferror(f))
                                err = -EIO;
                        break;
                }
        }
        fclose(f);
        if (err == 0) {
                /* The exact-size copy the target sees; malloc(0) is fine, it is never read. */
                uint8_t *exact = malloc(len);

                if (!exact && len > 0)
                        err = -ENOMEM;
                else {
                        if (len > 0)
                                memcpy(exact, data, len);
                        *ret = exact;
                        *ret_len = len;
                }
        }
        free(data);
        return err;
}

static const char *target_name(const char *argv0) {
        static char name[256];
        const char *base = strrchr(argv0, '/');
        size_t len;

        base = base ? base + 1 : argv0;
        len = strlen(base);
        if (len > 4 && strcmp(base + len - 4, ".exe") == 0)
                len -= 4;
        if (len >= sizeof name)
                len = sizeof name - 1;
        memcpy(name, base, len);
        name[len] = '\0';
        return name;
}

int main(int argc, char **argv) {
        const char *target = target_name(argc > 0 ? argv[0] : "fuzz");
        struct list l = { 0 };
        unsigned failed = 0;

        if (argc > 1)
                for (int i = 1; i < argc; i++)
                        collect(&l, argv[i]);
        else {
                const char *top = getenv("top_srcdir");
                char *dir, *sub = path_join("tests/fuzz/corpus", target);

                dir = path_join(top && *top ? top : ".", sub);
                collect(&l, dir);
                free(dir);
                free(sub);
        }

        printf("1..%zu\n", l.len);
        fflush(stdout);
        for (size_t i = 0; i < l.len; i++) {
                struct entry *e = &l.v[i];
                uint8_t *data = NULL;
                size_t len = 0;
                int r;

                if (e->error) {
                        printf("not ok %zu - %s %s: %s\n", i + 1, target, e->path, e->error);
                        failed++;
                        continue;
                }
                r = read_file(e->path, &data, &len);
                if (r < 0) {
                        printf("not ok %zu - %s %s: %s\n", i + 1, target, e->path, strerror(-r));
                        failed++;
                        continue;
                }
                /* Should the target crash, the log says on which input. */
                fprintf(stderr, "# %s %s (%zu bytes)\n", target, e->path, len);
                fflush(stdout);
                LLVMFuzzerTestOneInput(data, len);
                free(data);
                printf("ok %zu - %s %s\n", i + 1, target, e->path);
        }
        fflush(stdout);

        for (size_t i = 0; i < l.len; i++) {
                free(l.v[i].path);
                free(l.v[i].error);
        }
        free(l.v);
        return failed ? 1 : 0;
}
