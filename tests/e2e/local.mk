check_PROGRAMS += tests/e2e/sv-proxy
tests_e2e_sv_proxy_SOURCES = tests/e2e/sv-proxy.c
tests_e2e_sv_proxy_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl $(CRYPTO_CFLAGS)
tests_e2e_sv_proxy_LDADD = devicectl/libdevnet.a $(SVCOMMON_LIBS)

E2E_TESTS = \
	tests/e2e/auth.test \
	tests/e2e/send.test \
	tests/e2e/proxy.test \
	tests/e2e/crash.test \
	tests/e2e/lossy.test \
	tests/e2e/attack-replay-m3.test \
	tests/e2e/attack-replay-m4.test \
	tests/e2e/attack-replay-m5.test \
	tests/e2e/attack-m3-other-device.test \
	tests/e2e/attack-reflection.test \
	tests/e2e/attack-wrong-epoch.test \
	tests/e2e/attack-unknown-device.test \
	tests/e2e/attack-revoked-device.test \
	tests/e2e/attack-tampered-vault-file.test \
	tests/e2e/attack-rolled-back-vault-file.test \
	tests/e2e/attack-swapped-vault-files.test \
	tests/e2e/attack-unauthorised-user.test \
	tests/e2e/attack-two-devicectl.test \
	tests/e2e/attack-oversized-frames.test \
	tests/e2e/attack-truncated-frames.test \
	tests/e2e/attack-slowloris.test \
	tests/e2e/attack-wrong-server.test \
	tests/e2e/forward-secrecy.test \
	tests/e2e/attack-kex-downgrade.test \
	tests/e2e/attack-small-order-share.test \
	tests/e2e/attack-record-replay.test \
	tests/e2e/attack-record-reorder.test \
	tests/e2e/attack-record-reflection.test \
	tests/e2e/attack-record-truncation.test \
	tests/e2e/attack-data-before-m5.test \
	tests/e2e/devicectl-cli.test \
	tests/e2e/cli-conventions.test \
	tests/e2e/postgresql.test \
	tests/e2e/migrate.test \
	tests/e2e/multi-server.test \
	tests/e2e/crash-postgresql.test
TESTS += $(E2E_TESTS)
EXTRA_DIST += $(E2E_TESTS) tests/e2e/lib.sh tests/e2e/attacks.sh

# The forward-secrecy test (protocol §10): a passive wiretap and the attacker with a stolen vault.
check_PROGRAMS += tests/e2e/sv-tap tests/e2e/sv-fsattack
tests_e2e_sv_tap_SOURCES = tests/e2e/sv-tap.c
tests_e2e_sv_tap_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl $(CRYPTO_CFLAGS)
tests_e2e_sv_tap_LDADD = devicectl/libdevnet.a $(SVCOMMON_LIBS)
tests_e2e_sv_fsattack_SOURCES = tests/e2e/sv-fsattack.c
tests_e2e_sv_fsattack_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authserver -I$(top_srcdir)/tests/lib \
	$(CRYPTO_CFLAGS) $(SQLITE_CFLAGS)
tests_e2e_sv_fsattack_LDADD = authserver/libstore.a $(TESTBUNDLE_LIBS) $(TESTKAT_LIBS) $(SVIO_LIBS) \
	$(SVCOMMON_LIBS) $(SQLITE_LIBS) $(LIBPQ_LIBS)
