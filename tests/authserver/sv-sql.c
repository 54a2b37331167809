/* SPDX-License-Identifier: MIT */
/*
 * sv-sql DB SQL: runs one statement on a test database (read-only unless --write comes
 * first) and prints each row, columns separated by spaces. For checks of the audit trail
 * that no admin verb shows; the sqlite3 shell is not a build dependency.
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

int main(int argc, char *argv[]) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int write = argc == 4 && strcmp(argv[1], "--write") == 0, rc;

        if (argc != 3 + write) {
                fprintf(stderr, "usage: sv-sql [--write] DB SQL\n");
                return 2;
        }
        rc = sqlite3_open_v2(argv[1 + write], &db, write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(db, 5000);
                rc = sqlite3_prepare_v2(db, argv[2 + write], -1, &st, NULL);
        }
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (int i = 0; i < sqlite3_column_count(st); i++)
                        printf("%s%s", i ? " " : "", (const char *) sqlite3_column_text(st, i) ?: "NULL");
                printf("\n");
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_DONE) {
                fprintf(stderr, "sv-sql: %s\n", db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_finalize(st);
                sqlite3_close(db);
                return 1;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return 0;
}
