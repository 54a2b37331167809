# make check-system: the installed product booted in a Debian 12 container (systemd-nspawn)
# and VM (QEMU + a TPM 2.0 backed by swtpm). Root and network access to the Debian mirror;
# never part of `make check`. See "System tests" in docs/install.md.
#
# The roots are cached in tests/system/cache/ (keyed by their package list); logs of the
# last run are in tests/system/logs/. `make check-system-clean` removes both.
# SV_SYSTEM_TIERS=container (or vm) runs one tier.

SYSTEM_TEST_FILES = \
	tests/system/check-system.sh \
	tests/system/guest/checks.sh \
	tests/system/guest/secure-vault-check.service \
	tests/system/guest/vm.conf \
	tests/system/guest/vaultd-swtpm.conf
EXTRA_DIST += $(SYSTEM_TEST_FILES)

check-system: all
	@rm -rf $(abs_top_builddir)/tests/system/stage
	$(AM_V_GEN)$(MAKE) $(AM_MAKEFLAGS) install DESTDIR=$(abs_top_builddir)/tests/system/stage >/dev/null
	@top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' SWTPM='$(SWTPM)' \
		$(SHELL) $(abs_top_srcdir)/tests/system/check-system.sh $(abs_top_builddir)/tests/system/stage

# The same tiers on the Debian packages: `make deb`, then dpkg -i in each root instead of
# make install (their maintainer scripts run), and the checker also checks what they did and
# `systemctl start vaultd` on the packaged unit.
check-system-deb: deb
	@top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' SWTPM='$(SWTPM)' \
		$(SHELL) $(abs_top_srcdir)/tests/system/check-system.sh --debs $(abs_top_builddir)/deb

check-system-clean:
	rm -rf tests/system/cache tests/system/logs tests/system/stage tests/system/work.*

.PHONY: check-system check-system-deb check-system-clean
