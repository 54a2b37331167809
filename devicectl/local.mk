bin_PROGRAMS += devicectl/devicectl
devicectl_devicectl_SOURCES = devicectl/main.c
devicectl_devicectl_LDADD = $(SVCOMMON_LIBS)
