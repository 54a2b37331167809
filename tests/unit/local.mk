# tests/unit: Check suites for the modules of common/, one program per module,
# TAP on stdout through build-aux/tap-driver.sh (extension-less TESTS).
noinst_LIBRARIES += tests/unit/libunit.a
tests_unit_libunit_a_SOURCES = tests/unit/unit.c tests/unit/unit.h tests/unit/unit-kat.c tests/unit/unit-kat.h
tests_unit_libunit_a_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/tests/lib

UNIT_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)
UNIT_LDADD = tests/unit/libunit.a $(SVCOMMON_LIBS) $(CHECK_LIBS)

UNIT_TESTS = \
	tests/unit/check_buf \
	tests/unit/check_wire \
	tests/unit/check_profile \
	tests/unit/check_vault \
	tests/unit/check_keysched \
	tests/unit/check_hmac \
	tests/unit/check_handshake \
	tests/unit/check_bundle \
	tests/unit/check_text \
	tests/unit/check_netprefix \
	tests/unit/check_ratelimit \
	tests/unit/check_decoy \
	tests/unit/check_aggregate \
	tests/unit/check_sysio \
	tests/unit/check_kex \
	tests/unit/check_record \
	tests/unit/check_sinkmsg \
	tests/unit/check_vaultfile \
	tests/unit/check_ipc \
	tests/unit/check_randpool

check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

tests_unit_check_buf_SOURCES = tests/unit/check_buf.c
tests_unit_check_buf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_buf_LDADD = $(UNIT_LDADD)

tests_unit_check_wire_SOURCES = tests/unit/check_wire.c
tests_unit_check_wire_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_wire_LDADD = $(UNIT_LDADD)

tests_unit_check_profile_SOURCES = tests/unit/check_profile.c
tests_unit_check_profile_CPPFLAGS = $(UNIT_CPPFLAGS) -DVECTORS_PUBLIC='"$(abs_top_srcdir)/tests/vectors/public.txt"'
tests_unit_check_profile_LDADD = $(UNIT_LDADD)

tests_unit_check_vault_SOURCES = tests/unit/check_vault.c
tests_unit_check_vault_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_vault_LDADD = $(UNIT_LDADD)

tests_unit_check_keysched_SOURCES = tests/unit/check_keysched.c
tests_unit_check_keysched_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_keysched_LDADD = $(UNIT_LDADD)

tests_unit_check_hmac_SOURCES = tests/unit/check_hmac.c
tests_unit_check_hmac_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_hmac_LDADD = $(UNIT_LDADD)

tests_unit_check_handshake_SOURCES = tests/unit/check_handshake.c
tests_unit_check_handshake_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_handshake_LDADD = $(UNIT_LDADD)

tests_unit_check_bundle_SOURCES = tests/unit/check_bundle.c
tests_unit_check_bundle_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_unit_check_bundle_LDADD = tests/unit/libunit.a $(TESTKAT_LIBS) $(SVCOMMON_LIBS) $(CHECK_LIBS)

tests_unit_check_text_SOURCES = tests/unit/check_text.c
tests_unit_check_text_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_text_LDADD = tests/unit/libunit.a common/libsvio.a $(SVCOMMON_LIBS) $(SYSTEMD_LIBS) $(CHECK_LIBS)

tests_unit_check_netprefix_SOURCES = tests/unit/check_netprefix.c
tests_unit_check_netprefix_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_netprefix_LDADD = $(UNIT_LDADD)

# Also checks vaultd's default authentication limit (vaultd/vaultd.h).
tests_unit_check_ratelimit_SOURCES = tests/unit/check_ratelimit.c
tests_unit_check_ratelimit_CPPFLAGS = $(UNIT_CPPFLAGS) $(SYSTEMD_CFLAGS)
tests_unit_check_ratelimit_LDADD = $(UNIT_LDADD)

# authserver's pure decoy-shape table, compiled in: the program itself is not a library.
tests_unit_check_decoy_SOURCES = tests/unit/check_decoy.c authserver/decoy.c
tests_unit_check_decoy_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/authserver
tests_unit_check_decoy_LDADD = $(UNIT_LDADD)

# authserver's built-in data handler (aggregate.c), pure like decoy.c.
tests_unit_check_randpool_SOURCES = tests/unit/check_randpool.c authserver/randpool.c
tests_unit_check_randpool_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/authserver
tests_unit_check_randpool_LDADD = $(UNIT_LDADD) -lpthread

tests_unit_check_aggregate_SOURCES = tests/unit/check_aggregate.c authserver/aggregate.c
tests_unit_check_aggregate_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/authserver
tests_unit_check_aggregate_LDADD = $(UNIT_LDADD)

tests_unit_check_sysio_SOURCES = tests/unit/check_sysio.c
tests_unit_check_sysio_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_sysio_LDADD = tests/unit/libunit.a common/libsvio.a $(SVCOMMON_LIBS) $(SYSTEMD_LIBS) $(CHECK_LIBS)

# The known answers of revision 1.1 (tests/vectors/extensions.txt) through tests/lib/kat.c.
tests_unit_check_kex_SOURCES = tests/unit/check_kex.c
tests_unit_check_kex_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_unit_check_kex_LDADD = tests/unit/libunit.a $(TESTKAT_LIBS) $(SVCOMMON_LIBS) $(CHECK_LIBS)

tests_unit_check_record_SOURCES = tests/unit/check_record.c
tests_unit_check_record_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_unit_check_record_LDADD = tests/unit/libunit.a $(TESTKAT_LIBS) $(SVCOMMON_LIBS) $(CHECK_LIBS)

tests_unit_check_vaultfile_SOURCES = tests/unit/check_vaultfile.c
tests_unit_check_vaultfile_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_vaultfile_LDADD = $(UNIT_LDADD)

tests_unit_check_ipc_SOURCES = tests/unit/check_ipc.c
tests_unit_check_ipc_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_ipc_LDADD = $(UNIT_LDADD)

tests_unit_check_sinkmsg_SOURCES = tests/unit/check_sinkmsg.c
tests_unit_check_sinkmsg_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_check_sinkmsg_LDADD = $(UNIT_LDADD)
