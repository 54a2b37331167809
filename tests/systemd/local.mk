# Checks of the systemd units, sysusers.d/tmpfiles.d fragments and udev rule; no PID 1 needed.
SYSTEMD_TESTS = \
	tests/systemd/verify.test \
	tests/systemd/security.test \
	tests/systemd/sysusers.test \
	tests/systemd/udev.test
TESTS += $(SYSTEMD_TESTS)
EXTRA_DIST += $(SYSTEMD_TESTS) tests/systemd/lib.sh
