# The store's unit tests (authserver/libstore.a is defined in authserver/local.mk).
check_PROGRAMS += tests/store/check_store
TESTS += tests/store/check_store
tests_store_check_store_SOURCES = tests/store/check_store.c tests/lib/vfs-count.c tests/lib/vfs-count.h \
	tests/lib/store-plain.c tests/lib/store-plain.h
tests_store_check_store_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authserver -I$(top_srcdir)/tests/lib \
	$(SQLITE_CFLAGS) $(LIBPQ_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)
tests_store_check_store_LDADD = authserver/libstore.a $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SQLITE_LIBS) $(LIBPQ_LIBS) $(CHECK_LIBS)

# The same suite against a private PostgreSQL cluster (skipped without the binaries or libpq).
TESTS += tests/store/pg.test
EXTRA_DIST += tests/store/pg.test

# Fail-over to a promoted synchronous standby under load (two private clusters; skipped
# without the binaries or libpq).
TESTS += tests/store/failover.test
EXTRA_DIST += tests/store/failover.test

# A PostgreSQL server that stops answering (SIGSTOP): authserver gives up in bounded time.
TESTS += tests/store/pg-stall.test
EXTRA_DIST += tests/store/pg-stall.test

# One worker's lookup stalled on PostgreSQL must not stall the others through the decoy lock.
TESTS += tests/store/pg-decoy-lock.test
EXTRA_DIST += tests/store/pg-decoy-lock.test

# Many devices racing on three servers that share one PostgreSQL database.
TESTS += tests/store/pg-race.test
EXTRA_DIST += tests/store/pg-race.test

# The back-off shared by two servers on one PostgreSQL database.
TESTS += tests/store/pg-backoff.test
EXTRA_DIST += tests/store/pg-backoff.test
