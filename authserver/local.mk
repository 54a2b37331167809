sbin_PROGRAMS += authserver/authserver
authserver_authserver_SOURCES = authserver/main.c
authserver_authserver_LDADD = $(SVCOMMON_LIBS)
