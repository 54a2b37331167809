# A representative set of the authserver and e2e tests again with serve --workers 4 (the plain
# runs use the server's default, the number of CPUs): `make check` runs both, and so does CI.
WORKERS_TESTS = \
	tests/workers/authserver-serve.test \
	tests/workers/authserver-recovery.test \
	tests/workers/authserver-crash.test \
	tests/workers/authserver-caps.test \
	tests/workers/authserver-backoff.test \
	tests/workers/authserver-lockout.test \
	tests/workers/authserver-writer.test \
	tests/workers/authserver-idle-flood.test \
	tests/workers/e2e-auth.test \
	tests/workers/e2e-crash.test
TESTS += $(WORKERS_TESTS)
EXTRA_DIST += $(WORKERS_TESTS)

# Only these (and workers.test): make check-workers.
check-workers:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(WORKERS_TESTS) tests/authserver/workers.test'
.PHONY: check-workers
