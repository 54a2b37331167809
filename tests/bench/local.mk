# Benchmarks: `make bench` (never part of `make check`). See docs/benchmarks.md.
#
# svload drives a running authserver with common/'s device state machine; svgen fills a
# database with many devices through the store API; svstore counts the SQLite pages a group
# commit writes per handshake; vaultbench times the vault update and the record layer of
# common/ alone; peer/ is the TLS 1.3 PSK baseline and the bare TCP floor (copied as-is from
# the shared bench kit); tls13_echo is our own TLS 1.3 baseline for the data channel; devtime
# times devicectl from its process start, interleaved with vaultd's one TPM command alone.
noinst_PROGRAMS += tests/bench/svload tests/bench/svgen tests/bench/svstore tests/bench/vaultbench \
	tests/bench/tls13_echo tests/bench/syncfloor tests/bench/devtime \
	tests/bench/peer/tls13_psk_bench tests/bench/peer/tcp_floor

tests_bench_svload_SOURCES = tests/bench/svload.c tests/bench/benchutil.c tests/bench/benchutil.h
tests_bench_svload_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl -I$(top_srcdir)/tests/lib $(CRYPTO_CFLAGS)
tests_bench_svload_LDADD = devicectl/libdevnet.a $(TESTBUNDLE_LIBS) $(SVCOMMON_LIBS)

tests_bench_svgen_SOURCES = tests/bench/svgen.c
tests_bench_svgen_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authserver -I$(top_srcdir)/tests/lib $(CRYPTO_CFLAGS) $(SQLITE_CFLAGS)
tests_bench_svgen_LDADD = authserver/libstore.a $(TESTBUNDLE_LIBS) $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SQLITE_LIBS) $(LIBPQ_LIBS)

# Our own TLS 1.3 baseline for the data channel (one connection, N round trips): not part of
# the peer kit, which measures handshakes only.
tests_bench_tls13_echo_SOURCES = tests/bench/tls13_echo.c tests/bench/benchutil.c tests/bench/benchutil.h
tests_bench_tls13_echo_CPPFLAGS = $(AM_CPPFLAGS) $(SSL_CFLAGS)
tests_bench_tls13_echo_LDADD = $(SSL_LIBS) $(CRYPTO_LIBS)

tests_bench_svstore_SOURCES = tests/bench/svstore.c tests/lib/vfs-count.c tests/lib/vfs-count.h \
	tests/lib/store-plain.c tests/lib/store-plain.h
tests_bench_svstore_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authserver -I$(top_srcdir)/tests/lib $(CRYPTO_CFLAGS) $(SQLITE_CFLAGS)
tests_bench_svstore_LDADD = authserver/libstore.a $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SQLITE_LIBS) $(LIBPQ_LIBS)

# The durable-write floor: one append + fdatasync, the wait of every C = 1 handshake.
tests_bench_syncfloor_SOURCES = tests/bench/syncfloor.c

tests_bench_devtime_SOURCES = tests/bench/devtime.c tests/bench/benchutil.c tests/bench/benchutil.h
tests_bench_devtime_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vaultd
tests_bench_devtime_LDADD = vaultd/libvaulttpm.a $(TSS2_LIBS) $(CRYPTO_LIBS)

tests_bench_vaultbench_SOURCES = tests/bench/vaultbench.c
tests_bench_vaultbench_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS)
tests_bench_vaultbench_LDADD = $(SVCOMMON_LIBS)

# The peer sources are kept byte-for-byte as shipped. They build warning-free under the
# project's flags, but not with config.h forced in (they define _GNU_SOURCE themselves):
# their own CPPFLAGS, without AM_CPPFLAGS.
tests_bench_peer_tls13_psk_bench_SOURCES = tests/bench/peer/tls13_psk_bench.c \
	tests/bench/peer/netbench.c tests/bench/peer/netbench.h
tests_bench_peer_tls13_psk_bench_CPPFLAGS = $(SSL_CFLAGS)
tests_bench_peer_tls13_psk_bench_LDADD = $(SSL_LIBS) $(CRYPTO_LIBS)
tests_bench_peer_tcp_floor_SOURCES = tests/bench/peer/tcp_floor.c \
	tests/bench/peer/netbench.c tests/bench/peer/netbench.h
tests_bench_peer_tcp_floor_CPPFLAGS =

EXTRA_DIST += tests/bench/run tests/bench/peer/README.md

bench_deps = tests/bench/svload tests/bench/svgen tests/bench/vaultbench tests/bench/tls13_echo tests/bench/syncfloor \
	tests/bench/peer/tls13_psk_bench \
	tests/bench/peer/tcp_floor authserver/authserver devicectl/devicectl

# Results go to $(abs_top_builddir)/bench-results/<UTC timestamp>/. vaultd is optional: the
# device-side part is skipped when it does not build. BENCH_ARGS passes options to the
# script (e.g. BENCH_ARGS=--quick for a smoke run).
bench: $(bench_deps)
	@$(MAKE) $(AM_MAKEFLAGS) vaultd/vaultd tests/bench/devtime >/dev/null 2>&1 || \
		echo "bench: vaultd/vaultd does not build; the device-side part will be skipped"
	bash $(srcdir)/tests/bench/run --builddir '$(abs_top_builddir)' --srcdir '$(abs_top_srcdir)' $(BENCH_ARGS)

# The workers section alone (serve --workers 1 and 2 against TLS psk_ke at C = 16 and 64).
bench-workers: $(bench_deps)
	bash $(srcdir)/tests/bench/run --builddir '$(abs_top_builddir)' --srcdir '$(abs_top_srcdir)' --only workers $(BENCH_ARGS)
.PHONY: bench bench-workers
