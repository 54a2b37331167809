# The authserver's device store (SQLite, vaults sealed at rest) and its tests.
noinst_LIBRARIES += authserver/libstore.a
authserver_libstore_a_SOURCES = \
	authserver/harden.c \
	authserver/harden.h \
	authserver/store.c \
	authserver/store.h \
	authserver/store-crypto.c \
	authserver/store-crypto.h
authserver_libstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)

check_PROGRAMS += tests/store/check_store
TESTS += tests/store/check_store
tests_store_check_store_SOURCES = tests/store/check_store.c
tests_store_check_store_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authserver \
	$(SQLITE_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)
tests_store_check_store_LDADD = authserver/libstore.a $(SVCOMMON_LIBS) $(SQLITE_LIBS) $(CHECK_LIBS)
