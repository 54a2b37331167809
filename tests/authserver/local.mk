check_PROGRAMS += tests/authserver/sv-client
tests_authserver_sv_client_SOURCES = tests/authserver/sv-client.c tests/authserver/sv-net.c tests/authserver/sv-net.h
tests_authserver_sv_client_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl -I$(top_srcdir)/tests/lib $(CRYPTO_CFLAGS)
tests_authserver_sv_client_LDADD = devicectl/libdevnet.a $(TESTBUNDLE_LIBS) $(SVCOMMON_LIBS)

check_PROGRAMS += tests/authserver/sv-flood
tests_authserver_sv_flood_SOURCES = tests/authserver/sv-flood.c tests/authserver/sv-net.c tests/authserver/sv-net.h
tests_authserver_sv_flood_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl $(CRYPTO_CFLAGS)
tests_authserver_sv_flood_LDADD = devicectl/libdevnet.a $(SVCOMMON_LIBS)

check_PROGRAMS += tests/authserver/sv-probe
tests_authserver_sv_probe_SOURCES = tests/authserver/sv-probe.c
tests_authserver_sv_probe_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl -I$(top_srcdir)/tests/lib $(CRYPTO_CFLAGS)
tests_authserver_sv_probe_LDADD = devicectl/libdevnet.a $(TESTBUNDLE_LIBS) $(SVCOMMON_LIBS)

check_PROGRAMS += tests/authserver/sv-sink
tests_authserver_sv_sink_SOURCES = tests/authserver/sv-sink.c
tests_authserver_sv_sink_LDADD = $(SVCOMMON_LIBS)

check_PROGRAMS += tests/authserver/sv-sql
tests_authserver_sv_sql_SOURCES = tests/authserver/sv-sql.c
tests_authserver_sv_sql_CPPFLAGS = $(AM_CPPFLAGS) $(SQLITE_CFLAGS)
tests_authserver_sv_sql_LDADD = $(SQLITE_LIBS)

AUTHSERVER_TESTS = \
	tests/authserver/admin.test \
	tests/authserver/init.test \
	tests/authserver/options.test \
	tests/authserver/badinput.test \
	tests/authserver/crash.test \
	tests/authserver/load.test \
	tests/authserver/serve.test \
	tests/authserver/data.test \
	tests/authserver/sink.test \
	tests/authserver/recovery.test \
	tests/authserver/attacks.test \
	tests/authserver/limits.test \
	tests/authserver/config.test \
	tests/authserver/control.test \
	tests/authserver/admin-deadline.test \
	tests/authserver/control-relpath.test \
	tests/authserver/control-bind.test \
	tests/authserver/caps.test \
	tests/authserver/backoff.test \
	tests/authserver/lockout.test \
	tests/authserver/idle-flood.test \
	tests/authserver/ipv6-network.test \
	tests/authserver/harden.test \
	tests/authserver/timing.test \
	tests/authserver/shapes.test \
	tests/authserver/flood.test \
	tests/authserver/syscalls.test \
	tests/authserver/writer.test \
	tests/authserver/workers.test
TESTS += $(AUTHSERVER_TESTS)
EXTRA_DIST += $(AUTHSERVER_TESTS) tests/authserver/lib.sh
