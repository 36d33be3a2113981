/*
 * test_install.c - `make install` and `make uninstall` into a staging directory
 * (DESTDIR, PREFIX=/usr): every file lands where it should, the .pc file builds a
 * client against the staged header and shared library, the library exports be_*
 * only, the config and unit are usable, the man pages render without warnings,
 * and uninstall removes exactly what install added, except a config that was
 * edited.
 *
 * The recursive make runs while `make check` waits for this test, maybe in a
 * sanitizer build: it gets the same build directory (BUILD=, from BE_BIN_DIR),
 * AUTO_DEPS=0, none of the outer make's MAKEFLAGS, and `-o all`, so that it
 * installs what is built and never compiles or links anything itself (it
 * could otherwise race another make in the tree, or rebuild a sanitizer build
 * without its flags).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bufferengine.h"
#include "tests/testutil.h"

#ifndef BE_SRC_DIR
#define BE_SRC_DIR "."
#endif

#define CMD_MAX	 8192
#define PATH_LEN 1024

/* The man pages the tree ships, by section; each must be installed and render. */
static const char *const man_pages[] = {
	"server/bufferengined.8", "server/shm-dump.1",	   "server/be-read.1",
	"client/be-write.1",	  "client/bufferengine.3",
};

/* The staging area of one test. */
struct stage {
	char dir[PATH_LEN];   /* scratch: logs, the client */
	char root[PATH_LEN];  /* DESTDIR */
	char usr[PATH_LEN];   /* DESTDIR/usr */
	char build[PATH_LEN]; /* the build directory of this test binary */
	char log[PATH_LEN];   /* the output of the last command */
};

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* Append s to out as one shell word, in single quotes. */
static void quote(char *out, size_t len, const char *s)
{
	size_t n = strlen(out);

	if (n + 1 < len)
		out[n++] = '\'';
	for (; *s && n + 5 < len; s++) {
		if (*s == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else {
			out[n++] = *s;
		}
	}
	if (n + 1 < len)
		out[n++] = '\'';
	out[n] = '\0';
}

/* A path as one quoted shell word, in a rotating static buffer (4 at once). */
static const char *q(const char *s)
{
	static char bufs[4][PATH_LEN * 2];
	static unsigned next;
	char *b = bufs[next++ % 4];

	b[0] = '\0';
	quote(b, sizeof(bufs[0]), s);
	return b;
}

/*
 * run() - `sh -c CMD` with stdout and stderr into st->log.
 * Returns the exit status, or 128 + signal, or -1 when it could not run.
 */
static int run(struct stage *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int run(struct stage *st, const char *fmt, ...)
{
	char cmd[CMD_MAX];
	va_list ap;
	pid_t pid;
	int n, status;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(n > 0 && (size_t)n < sizeof(cmd), "command too long: %.200s", cmd);

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(st->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

static void join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s/%s", a, b);

	ck_assert_msg(n > 0 && (size_t)n < len, "path too long: %s/%s", a, b);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* The whole (small) file into buf; returns buf. */
static char *read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, len - 1, f);
	ck_assert_msg(!ferror(f) && feof(f), "%s: unreadable or larger than %zu bytes", path,
		      len - 1);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* A fresh staging area; the build directory is BE_BIN_DIR's parent. */
static void stage_init(struct stage *st)
{
	char *slash;

	memset(st, 0, sizeof(*st));
	tu_tmpdir(st->dir, sizeof(st->dir));
	join(st->root, sizeof(st->root), st->dir, "root");
	join(st->usr, sizeof(st->usr), st->root, "usr");
	join(st->log, sizeof(st->log), st->dir, "out.log");
	snprintf(st->build, sizeof(st->build), "%s", BE_BIN_DIR);
	slash = strrchr(st->build, '/');
	ck_assert_msg(slash && slash != st->build && !strcmp(slash, "/bin"),
		      "BE_BIN_DIR is not <build>/bin: %s", BE_BIN_DIR);
	*slash = '\0';
}

/* make -s TARGET into the staging area; returns its exit status (output in st->log). */
static int make(struct stage *st, const char *target)
{
	return run(st,
		   "cd %s && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BINDIR -u LIBDIR "
		   "-u INCLUDEDIR -u PKGCONFIGDIR -u MANDIR -u SYSCONFDIR -u UNITDIR "
		   "make -s -o all %s DESTDIR=%s PREFIX=/usr BUILD=%s AUTO_DEPS=0",
		   q(BE_SRC_DIR), target, q(st->root), q(st->build));
}

static void make_ok(struct stage *st, const char *target)
{
	int rc = make(st, target);

	ck_assert_msg(rc == 0, "make %s: exit %d:\n%s", target, rc, tu_file_text(st->log));
}

/* DESTDIR + path */
static const char *staged(struct stage *st, const char *path)
{
	static char bufs[4][PATH_LEN];
	static unsigned next;
	char *b = bufs[next++ % 4];

	join(b, PATH_LEN, st->root, path[0] == '/' ? path + 1 : path);
	return b;
}

static void assert_file(const char *path, mode_t mode)
{
	struct stat sb;

	ck_assert_msg(lstat(path, &sb) == 0, "not installed: %s (%s)", path, strerror(errno));
	ck_assert_msg(S_ISREG(sb.st_mode), "not a regular file: %s", path);
	ck_assert_msg((sb.st_mode & 07777) == mode, "%s: mode %04o, expected %04o", path,
		      (unsigned)(sb.st_mode & 07777), (unsigned)mode);
}

static void assert_link(const char *path, const char *target)
{
	char buf[PATH_LEN];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	ck_assert_msg(n > 0, "not a symbolic link: %s (%s)", path, strerror(errno));
	buf[n] = '\0';
	ck_assert_msg(!strcmp(buf, target), "%s -> %s, expected -> %s", path, buf, target);
}

/* The programs the Makefile installs: those in the build's bin with a source. */
static int each_program(char names[][64], int max)
{
	DIR *d = opendir(BE_BIN_DIR);
	struct dirent *e;
	int n = 0;

	ck_assert_msg(d != NULL, "%s: %s", BE_BIN_DIR, strerror(errno));
	while ((e = readdir(d)) && n < max) {
		char src[PATH_LEN];

		if (e->d_name[0] == '.' || strlen(e->d_name) >= 64)
			continue;
		snprintf(src, sizeof(src), BE_SRC_DIR "/client/%s.c", e->d_name);
		if (access(src, F_OK) != 0)
			snprintf(src, sizeof(src), BE_SRC_DIR "/server/%s.c", e->d_name);
		if (access(src, F_OK) != 0)
			continue;
		snprintf(names[n++], 64, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

/* Every file and symlink left under the staging root, one per line, into list. */
static char *left_list;
static size_t left_len, left_cap;

static int note_left(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	size_t n = strlen(path);

	(void)sb;
	(void)ftw;
	if (type == FTW_D || type == FTW_DP)
		return 0;
	if (left_len + n + 2 > left_cap) {
		left_cap = (left_len + n + 2) * 2;
		left_list = realloc(left_list, left_cap);
		ck_assert(left_list != NULL);
	}
	memcpy(left_list + left_len, path, n);
	left_len += n;
	left_list[left_len++] = '\n';
	left_list[left_len] = '\0';
	return 0;
}

/* What is left under DESTDIR, as text ("" when nothing). */
static const char *files_left(struct stage *st)
{
	left_len = 0;
	if (left_list)
		left_list[0] = '\0';
	ck_assert_int_eq(nftw(st->root, note_left, 16, FTW_PHYS), 0);
	return left_list ? left_list : "";
}

/* ------------------------------------------------------------------ */
/* The checks                                                         */
/* ------------------------------------------------------------------ */

static void check_files(struct stage *st)
{
	char names[64][64], path[PATH_LEN], so_real[64], soname[64];
	int n = each_program(names, 64);

	ck_assert_msg(n >= 4, "only %d programs in %s", n, BE_BIN_DIR);
	for (int i = 0; i < n; i++) {
		join(path, sizeof(path), staged(st, "/usr/bin"), names[i]);
		assert_file(path, 0755);
	}
	snprintf(so_real, sizeof(so_real), "libbufferengine.so.%s", BE_VERSION_STRING);
	snprintf(soname, sizeof(soname), "libbufferengine.so.%d", BE_VERSION_MAJOR);
	assert_file(staged(st, "/usr/lib/libbufferengine.a"), 0644);
	join(path, sizeof(path), staged(st, "/usr/lib"), so_real);
	assert_file(path, 0755);
	join(path, sizeof(path), staged(st, "/usr/lib"), soname);
	assert_link(path, so_real);
	assert_link(staged(st, "/usr/lib/libbufferengine.so"), soname);
	assert_file(staged(st, "/usr/include/bufferengine.h"), 0644);
	assert_file(staged(st, "/usr/lib/pkgconfig/bufferengine.pc"), 0644);

	for (size_t i = 0; i < sizeof(man_pages) / sizeof(man_pages[0]); i++) {
		const char *base = strrchr(man_pages[i], '/') + 1;
		const char *sect = strrchr(base, '.') + 1;

		snprintf(path, sizeof(path), "%s/man%s/%s", staged(st, "/usr/share/man"), sect,
			 base);
		assert_file(path, 0644);
	}
	assert_file(staged(st, "/etc/bufferengine/bufferengined.conf"), 0644);
	assert_file(staged(st, "/usr/lib/systemd/system/bufferengined.service"), 0644);
}

/* The unit names the installed paths and has no @...@ left. */
static void check_unit(struct stage *st)
{
	static char text[16384];
	const char *p;

	read_file(staged(st, "/usr/lib/systemd/system/bufferengined.service"), text, sizeof(text));
	for (p = strchr(text, '@'); p; p = strchr(p + 1, '@')) {
		size_t k = strspn(p + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");

		ck_assert_msg(!(k > 0 && p[1 + k] == '@'), "unit: unsubstituted %.*s", (int)k + 2,
			      p);
	}
	ck_assert_msg(strstr(text, "\nExecStart=/usr/bin/bufferengined -c "
				   "/etc/bufferengine/bufferengined.conf\n"),
		      "unit: no ExecStart of the installed paths:\n%s", text);
	ck_assert_msg(strstr(text, "\nUser=bufferengine\n"), "unit: no User=bufferengine");
	ck_assert_msg(strstr(text, "\nStateDirectory=bufferengine\n"), "unit: no StateDirectory");
	ck_assert_msg(!strstr(text, "\nDynamicUser=") && !strstr(text, "\nRemoveIPC="),
		      "unit: DynamicUser= or RemoveIPC= would delete the rings");
}

/* The installed config is the example, and the installed daemon accepts it. */
static void check_config(struct stage *st)
{
	char conf[PATH_LEN];
	int rc;

	snprintf(conf, sizeof(conf), "%s", staged(st, "/etc/bufferengine/bufferengined.conf"));

	rc = run(st, "cmp %s %s", q(BE_SRC_DIR "/scripts/bufferengined.conf.example"), q(conf));
	ck_assert_msg(rc == 0, "installed config differs from the example: %s",
		      tu_file_text(st->log));
	rc = run(st, "%s --check-config -c %s", q(staged(st, "/usr/bin/bufferengined")), q(conf));
	ck_assert_msg(rc == 0, "bufferengined --check-config on the installed config: exit %d: %s",
		      rc, tu_file_text(st->log));
}

/* The .so defines be_* and nothing else but its version node. */
static void check_exports(struct stage *st)
{
	char so[PATH_LEN], nmout[PATH_LEN], line[512];
	int rc, n = 0, open_seen = 0;
	FILE *f;

	snprintf(so, sizeof(so), "%s/libbufferengine.so.%s", staged(st, "/usr/lib"),
		 BE_VERSION_STRING);
	join(nmout, sizeof(nmout), st->dir, "nm.txt");
	rc = run(st, "nm -D --defined-only %s > %s", q(so), q(nmout));
	ck_assert_msg(rc == 0, "nm -D: exit %d: %s", rc, tu_file_text(st->log));
	f = fopen(nmout, "r");
	ck_assert(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		char addr[64], type[8], name[256];

		if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3)
			continue;
		name[strcspn(name, "@")] = '\0';
		if (!strcmp(type, "A") && !strncmp(name, "LIBBUFFERENGINE_", 16))
			continue; /* the version script's node */
		ck_assert_msg(!strncmp(name, "be_", 3), "libbufferengine.so exports %s (%s)", name,
			      type);
		open_seen |= !strcmp(name, "be_open");
		n++;
	}
	fclose(f);
	ck_assert_msg(n >= 10 && open_seen, "libbufferengine.so exports %d be_* symbols", n);
}

static const char app_c[] =
	"#define _GNU_SOURCE\n"
	"#include <dlfcn.h>\n"
	"#include <errno.h>\n"
	"#include <stdio.h>\n"
	"#include <string.h>\n"
	"#include <bufferengine.h>\n"
	"\n"
	"/* argv[1]: an instance with no rings; argv[2]: the staged libdir. */\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\tstruct be_open_opts o;\n"
	"\tbe_store *s = NULL;\n"
	"\tDl_info info;\n"
	"\tint err;\n"
	"\n"
	"\tif (argc != 3)\n"
	"\t\treturn 2;\n"
	"\tmemset(&o, 0, sizeof(o));\n"
	"\to.instance = argv[1];\n"
	"\terr = be_open(\"nosuchstore\", &o, &s);\n"
	"\tprintf(\"be_open: %d: %s\\n\", err, be_strerror(err));\n"
	"\tif (!dladdr((void *)be_open, &info) || !info.dli_fname)\n"
	"\t\treturn 3;\n"
	"\tprintf(\"library: %s\\n\", info.dli_fname);\n"
	"\tif (strncmp(info.dli_fname, argv[2], strlen(argv[2])))\n"
	"\t\treturn 4;\n"
	"\treturn err == -ENOENT && s == NULL && strlen(be_strerror(err)) > 0 ? 0 : 1;\n"
	"}\n";

/*
 * The sanitizer flags the staged library needs in its clients: an ASan or TSan
 * runtime must come first in the initial library list.
 */
static const char *san_flags(struct stage *st, const char *so)
{
	static char flags[64];
	char out[PATH_LEN];
	int rc;

	join(out, sizeof(out), st->dir, "nm-undef.txt");
	rc = run(st, "nm -D --undefined-only %s > %s", q(so), q(out));
	ck_assert_msg(rc == 0, "nm -D: %s", tu_file_text(st->log));
	flags[0] = '\0';
	if (run(st, "grep -q __asan_init %s", q(out)) == 0)
		strcat(flags, " -fsanitize=address");
	if (run(st, "grep -q __tsan_init %s", q(out)) == 0)
		strcat(flags, " -fsanitize=thread");
	return flags;
}

/* Build a client with the staged .pc, run it against the staged .so. */
static void check_client(struct stage *st)
{
	char app[PATH_LEN], bin[PATH_LEN], flags_file[PATH_LEN], pcdir[PATH_LEN];
	char libdir[PATH_LEN], so[PATH_LEN], inst[64], expect[PATH_LEN + 16];
	static char flags[4096];
	const char *san;
	int rc;

	join(app, sizeof(app), st->dir, "app.c");
	join(bin, sizeof(bin), st->dir, "app");
	join(flags_file, sizeof(flags_file), st->dir, "flags.txt");
	snprintf(pcdir, sizeof(pcdir), "%s", staged(st, "/usr/lib/pkgconfig"));
	snprintf(libdir, sizeof(libdir), "%s", staged(st, "/usr/lib"));
	join(so, sizeof(so), libdir, "libbufferengine.so");
	write_file(app, app_c);

	/* The .pc says prefix=/usr; the files are under DESTDIR: move the prefix. */
	rc = run(st,
		 "PKG_CONFIG_PATH=%s PKG_CONFIG_LIBDIR=%s pkg-config --define-variable=prefix=%s "
		 "--cflags --libs bufferengine > %s",
		 q(pcdir), q(pcdir), q(st->usr), q(flags_file));
	ck_assert_msg(rc == 0, "pkg-config: exit %d: %s", rc, tu_file_text(st->log));
	read_file(flags_file, flags, sizeof(flags));
	flags[strcspn(flags, "\n")] = '\0';
	snprintf(expect, sizeof(expect), "-I%s/include", st->usr);
	ck_assert_msg(strstr(flags, expect), "pkg-config --cflags: '%s', no %s", flags, expect);
	snprintf(expect, sizeof(expect), "-L%s", libdir);
	ck_assert_msg(strstr(flags, expect), "pkg-config --libs: '%s', no %s", flags, expect);
	rc = run(st, "PKG_CONFIG_PATH=%s PKG_CONFIG_LIBDIR=%s pkg-config --modversion bufferengine",
		 q(pcdir), q(pcdir));
	ck_assert_msg(rc == 0 && !strncmp(tu_file_text(st->log), BE_VERSION_STRING "\n",
					  strlen(BE_VERSION_STRING) + 1),
		      "pkg-config --modversion: %s", tu_file_text(st->log));

	san = san_flags(st, so); /* before the q()s below: it runs commands of its own */
	rc = run(st, "cc -std=gnu11 -Wall -Wextra -Werror%s -o %s %s %s", san, q(bin), q(app),
		 flags);
	ck_assert_msg(rc == 0, "cc app.c %s: exit %d:\n%s", flags, rc, tu_file_text(st->log));

	tu_instance(inst, sizeof(inst));
	rc = run(st, "LD_LIBRARY_PATH=%s %s %s %s", q(libdir), q(bin), q(inst), q(libdir));
	ck_assert_msg(rc == 0, "the client: exit %d (3/4: not the staged library):\n%s", rc,
		      tu_file_text(st->log));
	ck_assert_msg(strstr(tu_file_text(st->log), be_strerror(-ENOENT)),
		      "the client did not print be_strerror(-ENOENT): %s", tu_file_text(st->log));
}

/* Each installed page renders with man -l, without a warning. */
static void check_man(struct stage *st)
{
	char out[PATH_LEN], err[PATH_LEN], page[PATH_LEN];
	static char text[65536];

	if (run(st, "command -v man") != 0) {
		printf("test_install: man not found: the man pages' rendering is not checked\n");
		return;
	}
	join(out, sizeof(out), st->dir, "man.out");
	join(err, sizeof(err), st->dir, "man.err");
	for (size_t i = 0; i < sizeof(man_pages) / sizeof(man_pages[0]); i++) {
		const char *base = strrchr(man_pages[i], '/') + 1;
		const char *sect = strrchr(base, '.') + 1;
		int rc;

		snprintf(page, sizeof(page), "%s/man%s/%s", staged(st, "/usr/share/man"), sect,
			 base);
		rc = run(st,
			 "LC_ALL=C MANPAGER=cat PAGER=cat MANWIDTH=80 man --warnings -l %s > %s 2> "
			 "%s",
			 q(page), q(out), q(err));
		ck_assert_msg(rc == 0, "man -l %s: exit %d: %s", base, rc, tu_file_text(err));
		ck_assert_msg(!tu_file_text(err)[0], "man -l %s warns:\n%s", base,
			      tu_file_text(err));
		read_file(out, text, sizeof(text));
		ck_assert_msg(strstr(text, "NAME") && strstr(text, "SEE ALSO"),
			      "man -l %s: no NAME or SEE ALSO section:\n%.500s", base, text);
	}
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

/* install: every file, usable; uninstall: nothing left, not even the config's directory. */
START_TEST(test_install_uninstall)
{
	struct stage st;
	const char *left;
	struct stat sb;

	stage_init(&st);
	make_ok(&st, "install");
	check_files(&st);
	check_unit(&st);
	check_config(&st);
	check_exports(&st);
	check_client(&st);
	check_man(&st);

	make_ok(&st, "uninstall");
	left = files_left(&st);
	ck_assert_msg(!left[0], "left after uninstall:\n%s", left);
	ck_assert_msg(stat(staged(&st, "/etc/bufferengine"), &sb) < 0 && errno == ENOENT,
		      "uninstall left the empty directory /etc/bufferengine");
}
END_TEST

/* An edited config survives a second install and the uninstall; the rest goes. */
START_TEST(test_edited_config_kept)
{
	static char text[65536], expect[PATH_LEN + 2], conf[PATH_LEN];
	const char *left;
	struct stage st;
	FILE *f;

	stage_init(&st);
	make_ok(&st, "install");
	snprintf(conf, sizeof(conf), "%s", staged(&st, "/etc/bufferengine/bufferengined.conf"));
	snprintf(expect, sizeof(expect), "%s\n", conf);
	f = fopen(conf, "a");
	ck_assert(f != NULL);
	fputs("; edited by test_install\n", f);
	ck_assert_int_eq(fclose(f), 0);

	make_ok(&st, "install");
	read_file(conf, text, sizeof(text));
	ck_assert_msg(strstr(text, "; edited by test_install\n"),
		      "a second install replaced the edited config");

	make_ok(&st, "uninstall");
	ck_assert_msg(strstr(tu_file_text(st.log), "edited"),
		      "uninstall did not say it kept the config: %s", tu_file_text(st.log));
	left = files_left(&st);
	ck_assert_msg(!strcmp(left, expect), "left after uninstall (expected the config only):\n%s",
		      left);
	read_file(conf, text, sizeof(text));
	ck_assert_msg(strstr(text, "; edited by test_install\n"), "uninstall changed the config");
}
END_TEST

Suite *install_suite(void);

Suite *install_suite(void)
{
	Suite *s = suite_create("install");
	TCase *tc = tcase_create("install");

	/* The recursive make reads the whole Makefile and checks the tree: room. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_install_uninstall);
	tcase_add_test(tc, test_edited_config_kept);
	suite_add_tcase(s, tc);
	return s;
}
