EXTRA_DIST += tests/vectors/public.txt

check_PROGRAMS += tests/vectors-check
tests_vectors_check_SOURCES = tests/vectors-check.c
tests_vectors_check_LDADD = $(SVCOMMON_LIBS)
