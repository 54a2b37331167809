# tests/vaultd: vaultd as a process, against a private swtpm per test, driven by devicectl and
# by fake-server (the server side of the handshake from common/, without authserver).
check_PROGRAMS += tests/vaultd/mkbundle tests/vaultd/fake-server tests/vaultd/sockpoke
tests_vaultd_mkbundle_SOURCES = tests/vaultd/mkbundle.c
tests_vaultd_mkbundle_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_vaultd_mkbundle_LDADD = $(TESTBUNDLE_LIBS) $(SVCOMMON_LIBS)
tests_vaultd_fake_server_SOURCES = tests/vaultd/fake-server.c
tests_vaultd_fake_server_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_vaultd_fake_server_LDADD = $(TESTBUNDLE_LIBS) $(SVCOMMON_LIBS)
tests_vaultd_sockpoke_SOURCES = tests/vaultd/sockpoke.c
tests_vaultd_sockpoke_LDADD = $(SVCOMMON_LIBS)

VAULTD_TESTS = \
	tests/vaultd/provision.test \
	tests/vaultd/handshake.test \
	tests/vaultd/refuse.test \
	tests/vaultd/crash.test \
	tests/vaultd/busy.test \
	tests/vaultd/peercred.test \
	tests/vaultd/impostor.test \
	tests/vaultd/systemd.test \
	tests/vaultd/fdleak.test \
	tests/vaultd/dirsync.test \
	tests/vaultd/ratelimit.test \
	tests/vaultd/replaced.test \
	tests/vaultd/keybind.test \
	tests/vaultd/loglevel.test \
	tests/vaultd/notpm.test \
	tests/vaultd/badbundle.test
TESTS += $(VAULTD_TESTS)
EXTRA_DIST += $(VAULTD_TESTS) tests/vaultd/lib.sh
