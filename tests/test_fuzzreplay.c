/*
 * test_fuzzreplay.c - replay every fuzz corpus and regression input through
 * its fuzz target, in the plain build (no clang, no libFuzzer).
 *
 * Each tests/fuzz/fuzz_NAME.c is compiled into check_main with
 * -DLLVMFuzzerTestOneInput=fuzz_NAME_one, and the Makefile lists them in
 * fuzz_targets.h (FUZZ_TARGET(NAME), one line each).  One test per
 * target feeds it every file of tests/fuzz/corpus/NAME/ (the seeds, which
 * must be there) and tests/fuzz/regress/NAME/ (inputs that once crashed
 * it), each in a buffer of exactly its size, so that the sanitizer build
 * (make check SANITIZE=address,undefined) sees any read past it.  A
 * target aborts on a broken property; the input's path is printed first.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#ifndef BE_SRC_DIR
#define BE_SRC_DIR "."
#endif

#define FUZZ_TARGET(name) int fuzz_##name##_one(const uint8_t *data, size_t size);
#include "fuzz_targets.h"
#undef FUZZ_TARGET

struct fuzz_target {
	const char *name;
	int (*one)(const uint8_t *data, size_t size);
};

static const struct fuzz_target targets[] = {
#define FUZZ_TARGET(name) { #name, fuzz_##name##_one },
#include "fuzz_targets.h"
#undef FUZZ_TARGET
};

#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

/* The input being replayed, for the message of a crash. */
static char current[4096];

static void say_current(void)
{
	static const char pre[] = "fuzzreplay: crashed on ";

	if (!current[0])
		return;
	/* async-signal-safe: write(2) only */
	if (write(STDERR_FILENO, pre, sizeof(pre) - 1) < 0 ||
	    write(STDERR_FILENO, current, strlen(current)) < 0 || write(STDERR_FILENO, "\n", 1) < 0)
		return;
}

static void on_fatal(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The sanitizers' death callback, there only in a sanitized build. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

/*
 * A failed check aborts; a sanitizer reports its own faults (then calls
 * the death callback), so SIGSEGV and the like are caught only without one.
 */
static void catch_crashes(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL };

	signal(SIGABRT, on_fatal);
	if (__sanitizer_set_death_callback) {
		__sanitizer_set_death_callback(say_current);
		return;
	}
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal);
}

/* The whole file in a buffer of exactly its size; 0 or -errno. */
static int read_input(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

/*
 * replay_dir() - every regular file of dir through the target.  Returns
 * the number replayed, -1 when the directory is not there.
 */
static long replay_dir(const struct fuzz_target *t, const char *dir)
{
	struct dirent **names;
	long count = 0;
	int n;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		uint8_t *data = NULL;
		size_t len = 0;
		int ret;

		if (names[i]->d_name[0] == '.') {
			free(names[i]);
			continue;
		}
		snprintf(current, sizeof(current), "%s/%s", dir, names[i]->d_name);
		free(names[i]);
		ret = read_input(current, &data, &len);
		if (ret == -EINVAL)
			continue; /* not a regular file */
		ck_assert_msg(ret == 0, "%s: %s", current, strerror(-ret));
		ck_assert_msg(t->one(data, len) == 0, "%s: the target returned non-zero", current);
		free(data);
		count++;
	}
	free(names);
	current[0] = 0;
	return count;
}

START_TEST(test_replay)
{
	const struct fuzz_target *t = &targets[_i];
	char dir[1024];
	long seeds, regress;

	catch_crashes();
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", BE_SRC_DIR, t->name);
	seeds = replay_dir(t, dir);
	ck_assert_msg(seeds > 0, "%s: no seed corpus (tests/fuzz/corpus/%s/ is %s)", t->name,
		      t->name, seeds < 0 ? "missing" : "empty");
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/regress/%s", BE_SRC_DIR, t->name);
	regress = replay_dir(t, dir);
	if (getenv("BE_VERBOSE"))
		printf("fuzzreplay: %s: %ld corpus and %ld regression inputs\n", t->name, seeds,
		       regress < 0 ? 0 : regress);
}
END_TEST

/* Every corpus directory belongs to a target (a renamed target leaves none behind). */
START_TEST(test_corpus_dirs)
{
	static const char *const kinds[] = { "corpus", "regress" };

	for (size_t k = 0; k < 2; k++) {
		char dir[1024];
		struct dirent *de;
		DIR *d;

		snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s", BE_SRC_DIR, kinds[k]);
		d = opendir(dir);
		if (!d) {
			ck_assert_msg(k == 1, "%s: %s", dir, strerror(errno));
			continue;
		}
		while ((de = readdir(d))) {
			size_t i;

			if (de->d_name[0] == '.')
				continue;
			for (i = 0; i < NTARGETS && strcmp(targets[i].name, de->d_name); i++)
				;
			ck_assert_msg(i < NTARGETS, "%s/%s: no target tests/fuzz/fuzz_%s.c", dir,
				      de->d_name, de->d_name);
		}
		closedir(d);
	}
}
END_TEST

Suite *fuzzreplay_suite(void)
{
	Suite *s = suite_create("fuzzreplay");
	TCase *tc = tcase_create("replay");

	/* Many inputs a target; sanitizers multiply the time. */
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_replay, 0, (int)NTARGETS);
	tcase_add_test(tc, test_corpus_dirs);
	suite_add_tcase(s, tc);
	return s;
}
