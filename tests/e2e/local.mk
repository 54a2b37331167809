check_PROGRAMS += tests/e2e/sv-proxy
tests_e2e_sv_proxy_SOURCES = tests/e2e/sv-proxy.c
tests_e2e_sv_proxy_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/devicectl $(CRYPTO_CFLAGS)
tests_e2e_sv_proxy_LDADD = devicectl/libdevnet.a $(SVCOMMON_LIBS)
