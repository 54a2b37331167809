# debian/ against `make install` (no root, no dpkg-buildpackage); `make deb` builds the
# packages, `make check-system-deb` installs and runs them in the system-test tier.
DEBIAN_TESTS = tests/debian/packaging.test
TESTS += $(DEBIAN_TESTS)
EXTRA_DIST += $(DEBIAN_TESTS)
