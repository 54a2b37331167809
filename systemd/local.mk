# systemd units, sysusers.d/tmpfiles.d fragments, the udev rule and example settings.
# The install directories come from configure (pkg-config systemd/udev, --with-*dir).

SYSTEMD_UNITS_GEN = systemd/vaultd.service systemd/authserver.service systemd/authserver@.service
SYSTEMD_UNITS_STATIC = systemd/vaultd.socket systemd/authserver.socket

if INSTALL_SYSTEMDSYSTEMUNITDIR
nodist_systemdsystemunit_DATA = $(SYSTEMD_UNITS_GEN)
dist_systemdsystemunit_DATA = $(SYSTEMD_UNITS_STATIC)
endif
if INSTALL_SYSUSERSDIR
dist_sysusers_DATA = systemd/sysusers.d/secure-vault.conf systemd/sysusers.d/authserver.conf
endif
if INSTALL_TMPFILESDIR
dist_tmpfiles_DATA = systemd/tmpfiles.d/secure-vault.conf systemd/tmpfiles.d/authserver.conf
endif
if INSTALL_UDEVRULESDIR
dist_udevrules_DATA = udev/60-secure-vault-tpm.rules
endif

# Example settings, every line commented out with its default.
examplesdir = $(docdir)/examples
dist_examples_DATA = etc/vaultd.conf.example etc/authserver.conf.example \
	etc/authserver-control-group.conf
# The documents the man pages cite, by their installed path.
doc_DATA = docs/install.md docs/user-guide.md docs/protocol.md docs/vault-file.md docs/ipc.md \
	docs/architecture.md docs/sink.md docs/control.md

# The .service files name the installed binaries. A make rule rather than
# AC_CONFIG_FILES: `make` redoes them when configure's paths change, and they
# expand ${prefix} fully, as a unit file needs.
systemd_subst = $(SED) \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@bindir[@]|$(bindir)|g'

systemd/vaultd.service: $(srcdir)/systemd/vaultd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	$(systemd_subst) $(srcdir)/systemd/vaultd.service.in > $@.tmp && mv -f $@.tmp $@

systemd/authserver.service: $(srcdir)/systemd/authserver.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	$(systemd_subst) $(srcdir)/systemd/authserver.service.in > $@.tmp && mv -f $@.tmp $@

# authserver@NAME.service: several authservers on one host (e.g. on one PostgreSQL database,
# docs/install.md), each with its settings in /etc/secure-vault/authserver-NAME.conf. Made from
# authserver.service.in, so that the template has the same sandbox, never a copy to keep in
# step; it takes no sockets from authserver.socket (each instance listens where its file says),
# and each instance has its own runtime directory and control socket, /run/authserver-NAME/control
# (one shared /run/authserver: the second instance could not bind the socket, and stopping
# either would remove the other's).
systemd/authserver@.service: $(srcdir)/systemd/authserver.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	$(systemd_subst) \
	    -e '1a # authserver@.service: made from authserver.service.in (systemd/local.mk). The instance\n# name picks the settings file: authserver@east.service reads\n# /etc/secure-vault/authserver-east.conf (its db, listen, ...).\n#' \
	    -e 's|^Description=.*|& (%i)|' \
	    -e 's|^\(ExecStart=.*/authserver serve\)$$|\1 --config /etc/secure-vault/authserver-%i.conf --control /run/authserver-%i/control|' \
	    -e 's|^RuntimeDirectory=authserver$$|RuntimeDirectory=authserver-%i|' \
	    -e 's|^# The control socket /run/authserver/control |# The control socket /run/authserver-%i/control |' \
	    $(srcdir)/systemd/authserver.service.in > $@.tmp && \
	grep -q '^ExecStart=.* --config /etc/secure-vault/authserver-%i.conf --control /run/authserver-%i/control$$' $@.tmp && \
	grep -q '^RuntimeDirectory=authserver-%i$$' $@.tmp && mv -f $@.tmp $@

# Built with `make all` whether or not they are installed, so that the tests see them.
noinst_DATA = $(SYSTEMD_UNITS_GEN)
EXTRA_DIST += \
	systemd/vaultd.service.in \
	systemd/authserver.service.in \
	$(SYSTEMD_UNITS_STATIC) \
	systemd/sysusers.d/secure-vault.conf \
	systemd/sysusers.d/authserver.conf \
	systemd/tmpfiles.d/secure-vault.conf \
	systemd/tmpfiles.d/authserver.conf \
	udev/60-secure-vault-tpm.rules
CLEANFILES += $(SYSTEMD_UNITS_GEN)

# daemon(7): `make distcheck` installs below a staging prefix and fails on any file written
# outside it, so the directories that pkg-config gave as absolute paths move below it.
AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir="$$dc_install_base/$(systemdsystemunitdir)" \
	--with-sysusersdir="$$dc_install_base/$(sysusersdir)" \
	--with-tmpfilesdir="$$dc_install_base/$(tmpfilesdir)" \
	--with-udevrulesdir="$$dc_install_base/$(udevrulesdir)"
