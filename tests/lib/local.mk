# Helpers shared by the test programs (never linked into the product).
noinst_LIBRARIES += tests/lib/libtestbundle.a
tests_lib_libtestbundle_a_SOURCES = tests/lib/bundle-file.c tests/lib/bundle-file.h
tests_lib_libtestbundle_a_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS)
TESTBUNDLE_LIBS = tests/lib/libtestbundle.a

# The reader of the known-answer files (tests/vectors/*.txt).
noinst_LIBRARIES += tests/lib/libtestkat.a
tests_lib_libtestkat_a_SOURCES = tests/lib/kat.c tests/lib/kat.h
TESTKAT_LIBS = tests/lib/libtestkat.a

# The file helpers of the shell test libraries.
EXTRA_DIST += tests/lib/files.sh tests/lib/pg.sh
