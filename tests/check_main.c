/*
 * check_main.c - the one Check runner: runs every suite of tests/test_*.c.
 *
 * The Makefile writes suites.h (in $(BUILD)/tests) with a line SUITE(name) for
 * each tests/test_name.c, which defines Suite *name_suite(void).  Every suite
 * goes into one SRunner and runs in Check's default fork mode.
 *
 * Environment:
 *   BE_SUITE=name[,name...]   run only these suites
 *   BE_VERBOSE=1              print every test's result (CK_VERBOSE), not only
 *                             the failures (CK_NORMAL)
 * Check's own variables (CK_DEFAULT_TIMEOUT, CK_TIMEOUT_MULTIPLIER, CK_RUN_CASE,
 * CK_FORK...) work as usual.
 *
 * Every test names its rings, daemons and files after this run's id
 * (BE_TEST_RUN, see testutil.h); after the suites, whatever they left is
 * removed here, since Check skips a fixture's teardown when a test fails or
 * times out.
 *
 * The output always ends with Check's summary line ("100%: Checks: N, Failures:
 * 0, Errors: 0"); the exit status is 0 only if every test that ran passed, 2 for
 * a bad BE_SUITE.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"

#define SUITE(name) Suite *name##_suite(void);
#include "suites.h"
#undef SUITE

struct suite_entry {
	const char *name;
	Suite *(*make)(void);
};

static const struct suite_entry suites[] = {
#define SUITE(name) { #name, name##_suite },
#include "suites.h"
#undef SUITE
	{ NULL, NULL },
};

static void list_suites(FILE *f)
{
	for (const struct suite_entry *e = suites; e->name; e++)
		fprintf(f, "%s%s", e == suites ? "" : " ", e->name);
	fputc('\n', f);
}

/* Is @name one of the comma-separated names in @list? */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

/* Does every name in @list name a suite?  Says which one does not. */
static bool list_valid(const char *list)
{
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		bool found = len == 0;

		for (const struct suite_entry *e = suites; e->name && !found; e++)
			found = strlen(e->name) == len && strncmp(p, e->name, len) == 0;
		if (!found) {
			fprintf(stderr,
				"check_main: BE_SUITE: no suite '%.*s'; there are: ", (int)len, p);
			list_suites(stderr);
			return false;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

static bool env_true(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

int main(int argc, char **argv)
{
	const char *only = getenv("BE_SUITE");
	enum print_output mode = env_true("BE_VERBOSE") ? CK_VERBOSE : CK_NORMAL;
	SRunner *sr;
	int nsuites = 0, failed;

	if (argc > 1) {
		if (strcmp(argv[1], "--list") == 0) {
			list_suites(stdout);
			return EXIT_SUCCESS;
		}
		fprintf(stderr,
			"usage: %s [--list]\n"
			"  env BE_SUITE=name[,name...] runs only those suites,\n"
			"  BE_VERBOSE=1 prints every test's result\n",
			argv[0]);
		return strcmp(argv[1], "--help") == 0 ? EXIT_SUCCESS : 2;
	}
	if (only && !*only)
		only = NULL;
	if (only && !list_valid(only))
		return 2;

	/* Name this run before any test forks, so that they all share it. */
	unsetenv("BE_TEST_RUN");
	tu_run_id();
	sr = srunner_create(NULL);
	for (const struct suite_entry *e = suites; e->name; e++) {
		if (only && !in_list(only, e->name))
			continue;
		srunner_add_suite(sr, e->make());
		nsuites++;
	}
	if (nsuites == 0)
		fprintf(stderr, "check_main: no test suites (no tests/test_*.c)\n");

	/*
	 * Check prints its summary line before the per-test lines (all of them
	 * in CK_VERBOSE, the failures in CK_NORMAL).  When any such line
	 * followed it, print the summary again so that it is the last line.
	 */
	if (nsuites == 0)
		mode = CK_SILENT; /* Check would print "Running suite(s):" alone */
	srunner_run_all(sr, mode);
	if (nsuites == 0)
		srunner_print(sr, CK_MINIMAL);
	failed = srunner_ntests_failed(sr);
	tu_cleanup_run();
	if (mode == CK_VERBOSE ? srunner_ntests_run(sr) > 0 : failed > 0) {
		fflush(stdout);
		srunner_print(sr, CK_MINIMAL);
	}
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
