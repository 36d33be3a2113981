/*
 * test_perms.c - permissions and hostile neighbours: who may write a ring,
 * who may read segments, and what the daemon and the writers do with what
 * someone else planted in the world-writable /dev/shm or in data_dir.
 *
 * Cases:
 *   planted   (any user) a symbolic link under a ring's name: writers get
 *             -ELOOP; the daemon refuses to attach it, to use a data_dir
 *             or a store directory that is a link, and to take an instance
 *             lock that is a link (whose target it would otherwise
 *             truncate); an unknown group is a config error
 *   users     (root only: unprivileged users are made with fork + setgid,
 *             setgroups, setuid) a writer outside the ring's group gets
 *             -EACCES and be-write names the ring and its group; in the
 *             group it writes; group = NAME gives the ring 0660 and the
 *             directories 02750 of that group even under umask 077, and
 *             segments 0640; be-read works for a member of the group who
 *             cannot write anything there; the daemon refuses a ring or a
 *             data_dir that belongs to another user
 *
 * Check has no "skip": when not root, the users case is not added and a
 * line "SKIP: ..." says so.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/segment.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define CAP 65536u
#define STORES_AB                                                                   \
	"[store A]\ntype = raw\ncapacity = 64K\nflush_interval = 50ms\n"              \
	"[store B]\ntype = raw\ncapacity = 64K\nflush_interval = 50ms\n"
/* A gid that no test user belongs to (it needs no name: chgrp takes numbers). */
#define ODD_GID 54321u

/* --- helpers ----------------------------------------------------------- */

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void ring_path(char *out, size_t len, const char *instance, const char *store)
{
	char name[RING_SHM_NAME_MAX];

	ck_assert_int_eq(ring_shm_name(name, sizeof(name), instance, store), 0);
	snprintf(out, len, RING_SHM_DIR "%s", name);
}

/* A valid ring of the config's geometry (raw, 64K, block), made by hand. */
static void make_ring(const char *instance, const char *store)
{
	struct ring_params p = {
		.store = store,
		.capacity = CAP,
		.store_type = BE_TYPE_RAW,
		.on_full = RING_ON_FULL_BLOCK,
		.first_seq = 1,
		.flush_bytes = CAP / 2,
		.mode = 0660,
	};
	struct ring_map m;
	int ret = ring_create(instance, &p, &m);

	ck_assert_msg(ret == 0, "ring_create(%s, %s): %s", instance, store, strerror(-ret));
	ring_unmap(&m);
}

/* The daemon_pid a ring's header holds (0: no daemon ever attached). */
static uint32_t ring_daemon_pid(const char *instance, const char *store)
{
	struct ring_map m;
	uint32_t pid;
	int ret = ring_open(instance, store, RING_OPEN_RDONLY | RING_OPEN_NO_PIDNS, &m);

	ck_assert_msg(ret == 0, "ring_open(%s): %s", store, strerror(-ret));
	pid = READ_ONCE(m.hdr->daemon_pid);
	ring_unmap(&m);
	return pid;
}

/* Wait up to ms for text to appear in the file at path. */
static int wait_file_has(const char *path, const char *text, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 10) {
		if (strstr(tu_file_text(path), text))
			return 1;
		nap_ms(10);
	}
	return strstr(tu_file_text(path), text) != NULL;
}

/*
 * run_daemon_fail() - run bufferengined on d->conf (stderr to d->log) and
 * wait up to 10 s for it to exit.  Returns its exit status, or -1 when it
 * is still running (then it is killed).
 */
static int run_daemon_fail(struct tu_daemon *d)
{
	int status = 0;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(BE_BIN_DIR "/bufferengined", "bufferengined", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
	tu_note_pid(pid);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			tu_forget_pid(pid);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		nap_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tu_forget_pid(pid);
	return -1;
}

static void start_ok(struct tu_daemon *d, const char *store)
{
	ck_assert_msg(tu_daemon_start(d, store) == 0, "daemon did not come up:\n%s",
		      tu_file_text(d->log));
}

/* --- planted: any user --------------------------------------------------- */

/*
 * A link planted under a ring's name, pointing at a real ring: writers
 * and readers are refused with -ELOOP (documented in bufferengine.h), and
 * nothing is written through it.
 */
START_TEST(test_writer_symlink)
{
	char inst[64], real[128], link[128];
	struct be_open_opts o = { .write_timeout_ms = 0 };
	struct ring_map m;
	be_store *s = NULL;

	tu_instance(inst, sizeof(inst));
	o.instance = inst;
	make_ring(inst, "real");
	ring_path(real, sizeof(real), inst, "real");
	ring_path(link, sizeof(link), inst, "A");
	ck_assert_int_eq(symlink(real, link), 0);

	ck_assert_int_eq(be_open("A", &o, &s), -ELOOP);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(ring_open(inst, "A", RING_OPEN_RDONLY, &m), -ELOOP);
	ck_assert_int_eq(ring_open(inst, "A", 0, &m), -ELOOP);
	/* The real ring, opened by its own name, is untouched. */
	ck_assert_int_eq(ring_open(inst, "real", RING_OPEN_RDONLY, &m), 0);
	ck_assert_uint_eq(READ_ONCE(m.hdr->head), 0);
	ring_unmap(&m);
	unlink(link);
	ring_unlink(inst, "real");
}
END_TEST

/*
 * The daemon meets a link under store A's ring name (to a valid ring of
 * A's geometry, which it would happily attach if it followed): A is
 * refused with a log line naming the path, B is served, the link and its
 * target are left alone.
 */
START_TEST(test_daemon_symlink_ring)
{
	struct tu_daemon d;
	char real[128], link[128], want[256];
	struct stat sb;

	tu_daemon_config(&d, NULL, STORES_AB);
	make_ring(d.instance, "real");
	ring_path(real, sizeof(real), d.instance, "real");
	ring_path(link, sizeof(link), d.instance, "A");
	ck_assert_int_eq(symlink(real, link), 0);

	start_ok(&d, "B");
	snprintf(want, sizeof(want), "%s is a symbolic link", link);
	ck_assert_msg(wait_file_has(d.log, want, 5000), "no '%s' in the log:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_msg(strstr(tu_file_text(d.log), "[A]"), "the line does not name store A:\n%s",
		      tu_file_text(d.log));
	ck_assert_uint_eq(ring_daemon_pid(d.instance, "real"), 0);
	ck_assert_int_eq(lstat(link, &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
	ck_assert_uint_eq(ring_daemon_pid(d.instance, "B"), (uint32_t)d.pid);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A data_dir that is a symbolic link: the daemon exits non-zero, saying so, and makes no ring. */
START_TEST(test_data_dir_symlink)
{
	struct tu_daemon d;
	char real[400], want[400];
	struct ring_map m;

	tu_daemon_config(&d, NULL, STORES_AB);
	snprintf(real, sizeof(real), "%s/real", d.dir);
	ck_assert_int_eq(mkdir(real, 0750), 0);
	ck_assert_int_eq(symlink(real, d.data_dir), 0);

	ck_assert_int_eq(run_daemon_fail(&d), 1);
	snprintf(want, sizeof(want), "%s is a symbolic link", d.data_dir);
	ck_assert_msg(strstr(tu_file_text(d.log), want), "no '%s' in the log:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_int_eq(ring_open(d.instance, "A", RING_OPEN_RDONLY, &m), -ENOENT);
	ck_assert_int_eq(access(real, F_OK), 0);
	{
		char lock[450];

		snprintf(lock, sizeof(lock), "%s/.lock", real);
		ck_assert_int_eq(access(lock, F_OK), -1); /* nothing written through the link */
	}
}
END_TEST

/* A store directory that is a link: that store is refused, the others served. */
START_TEST(test_store_dir_symlink)
{
	struct tu_daemon d;
	char other[400], link[400], want[450];
	struct ring_map m;

	tu_daemon_config(&d, NULL, STORES_AB);
	snprintf(other, sizeof(other), "%s/elsewhere", d.dir);
	snprintf(link, sizeof(link), "%s/A", d.data_dir);
	ck_assert_int_eq(mkdir(d.data_dir, 0750), 0);
	ck_assert_int_eq(mkdir(other, 0750), 0);
	ck_assert_int_eq(symlink(other, link), 0);

	start_ok(&d, "B");
	snprintf(want, sizeof(want), "%s is a symbolic link", link);
	ck_assert_msg(wait_file_has(d.log, want, 5000), "no '%s' in the log:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_int_eq(ring_open(d.instance, "A", RING_OPEN_RDONLY, &m), -ENOENT);
	{
		char floor[450];

		snprintf(floor, sizeof(floor), "%s/seq-floor", other);
		ck_assert_int_eq(access(floor, F_OK), -1);
	}
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * The instance lock /dev/shm/bufferengine.<instance> planted as a link to a
 * file the daemon may write: refused, and the file keeps its bytes (a
 * daemon that followed the link would truncate it and write its pid).
 */
START_TEST(test_instance_lock_symlink)
{
	struct tu_daemon d;
	char lock[128], victim[400], want[200];
	FILE *f;

	tu_daemon_config(&d, NULL, STORES_AB);
	snprintf(victim, sizeof(victim), "%s/precious", d.dir);
	f = fopen(victim, "w");
	ck_assert_ptr_nonnull(f);
	fputs("precious bytes\n", f);
	fclose(f);
	snprintf(lock, sizeof(lock), RING_SHM_DIR "/" RING_SHM_PREFIX "%s", d.instance);
	ck_assert_int_eq(symlink(victim, lock), 0);

	ck_assert_int_eq(run_daemon_fail(&d), 1);
	snprintf(want, sizeof(want), "%s is a symbolic link", lock);
	ck_assert_msg(strstr(tu_file_text(d.log), want), "no '%s' in the log:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_str_eq(tu_file_text(victim), "precious bytes\n");
	unlink(lock);
}
END_TEST

/* group = an unknown name: a config error naming the file, the line and the key. */
START_TEST(test_unknown_group)
{
	struct tu_daemon d;
	char want[400];

	/* [engine], instance, data_dir, then the extra text: line 4. */
	tu_daemon_config(&d, "group = no-such-group-be-test", STORES_AB);
	ck_assert_int_eq(run_daemon_fail(&d), 1);
	snprintf(want, sizeof(want), "%s:4: key 'group': no group 'no-such-group-be-test'",
		 d.conf);
	ck_assert_msg(strstr(tu_file_text(d.log), want), "no '%s' in:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_int_eq(access(d.data_dir, F_OK), -1);
}
END_TEST

/* --- users: root only ---------------------------------------------------- */

static uid_t nobody_uid = 65534;
static gid_t nobody_gid = 65534;

/*
 * as_user() - fork a child that drops to nobody, with the supplementary
 * groups given (none when n is 0), and runs fn(arg).  The child's result
 * is its exit status.  Returns that status, or -1 (killed, or it could not
 * drop its privileges: 100).
 */
static int as_user(const gid_t *groups, size_t n, int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(n, groups) < 0 || setgid(nobody_gid) < 0 || setuid(nobody_uid) < 0)
			_exit(100);
		if (geteuid() != nobody_uid || setuid(0) == 0)
			_exit(100);
		_exit(fn(arg));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct write_arg {
	const char *instance;
	const char *store;
};

/* Open the store: 0, or the error as a positive exit code; with 0, write and flush. */
static int child_write(void *p)
{
	struct write_arg *a = p;
	struct be_open_opts o = { .instance = a->instance, .write_timeout_ms = 2000 };
	be_store *s;
	int ret = be_open(a->store, &o, &s);

	if (ret)
		return -ret < 100 ? -ret : 99;
	if (be_write(s, "from nobody", 11) != 0)
		return 101;
	if (be_flush(s, 5000) != 0)
		return 102;
	return be_close(s) ? 103 : 0;
}

/*
 * run_as() - run argv as nobody with the groups given, stdout and stderr
 * into out (NUL-terminated).  Returns the exit status, or -1.
 */
static int run_as(const gid_t *groups, size_t n, char *const argv[], char *out, size_t len)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		close(fds[0]);
		dup2(nul, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		if (setgroups(n, groups) < 0 || setgid(nobody_gid) < 0 || setuid(nobody_uid) < 0)
			_exit(100);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], out + got, len - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == len - 1)
			break;
	}
	out[got] = 0;
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Let nobody reach the scratch directory (whatever the runner's umask made it). */
static void open_scratch(const struct tu_daemon *d)
{
	char parent[256];

	snprintf(parent, sizeof(parent), "%s", d->dir);
	*strrchr(parent, '/') = 0;
	ck_assert_int_eq(chmod(parent, 0755), 0);
	ck_assert_int_eq(chmod(d->dir, 0755), 0);
}

/*
 * A writer outside the ring's group is refused with -EACCES, and be-write
 * says which ring and which group; with the group among its supplementary
 * groups, the same user writes and its record becomes durable.
 */
START_TEST(test_writer_needs_group)
{
	struct tu_daemon d;
	struct write_arg a = { .store = "A" };
	const gid_t grp = ODD_GID;
	char path[128], out[2048], want[256];
	char *argv[] = { BE_BIN_DIR "/be-write", "-i", NULL, "A", NULL };
	struct stat sb;

	tu_daemon_config(&d, "group = 54321", STORES_AB);
	start_ok(&d, "A");
	a.instance = d.instance;
	argv[2] = d.instance;
	ring_path(path, sizeof(path), d.instance, "A");
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_gid, ODD_GID);
	ck_assert_uint_eq(sb.st_mode & 07777, 0660);

	ck_assert_int_eq(as_user(NULL, 0, child_write, &a), EACCES);
	ck_assert_int_eq(run_as(NULL, 0, argv, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "permission denied on the ring %s (owner root, group %u, "
		 "mode 0660): join group %u", path, ODD_GID, ODD_GID);
	ck_assert_msg(strstr(out, want), "be-write said '%s', not '%s'", out, want);

	ck_assert_int_eq(as_user(&grp, 1, child_write, &a), 0);
	ck_assert_int_eq(tu_read_store(d.data_dir, "A", NULL, NULL), 1);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

static void assert_owned(const char *path, gid_t gid, unsigned mode)
{
	struct stat sb;

	ck_assert_msg(lstat(path, &sb) == 0, "%s: %s", path, strerror(errno));
	ck_assert_msg(sb.st_uid == 0 && sb.st_gid == gid && (sb.st_mode & 07777) == mode,
		      "%s: uid %u gid %u mode %04o, expected uid 0 gid %u mode %04o", path,
		      (unsigned)sb.st_uid, (unsigned)sb.st_gid, (unsigned)(sb.st_mode & 07777),
		      (unsigned)gid, mode);
}

struct read_arg {
	const char *dir; /* a store's directory */
};

/* As a member of the group: no file can be made in the store's directory. */
static int child_cannot_write(void *p)
{
	struct read_arg *a = p;
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/intruder", a->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0) {
		close(fd);
		unlink(path);
		return 1;
	}
	return errno == EACCES ? 0 : 2;
}

/*
 * group = NAME: under umask 077 the ring is still 0660 of that group, the
 * data and store directories 02750 of it, segments 0640 of it; a member of
 * the group who can write nothing there reads the store with be-read, and
 * a user outside it cannot.
 */
START_TEST(test_group_and_reader)
{
	struct tu_daemon d;
	struct group *g = getgrnam("users");
	char extra[64], path[512], out[8192], store_dir[400];
	char *argv[] = { BE_BIN_DIR "/be-read", store_dir, NULL };
	struct be_open_opts o = { .write_timeout_ms = 1000 };
	struct read_arg ra = { .dir = store_dir };
	const char *gname = g ? "users" : "daemon";
	gid_t gid;
	be_store *s;
	mode_t old;
	int ret;

	if (!g)
		g = getgrnam("daemon");
	ck_assert_msg(g != NULL, "neither group 'users' nor 'daemon' exists");
	gid = g->gr_gid;
	snprintf(extra, sizeof(extra), "group = %s", gname);
	tu_daemon_config(&d, extra, STORES_AB);
	open_scratch(&d);
	old = umask(077);
	ret = tu_daemon_start(&d, "A");
	umask(old);
	ck_assert_msg(ret == 0, "daemon did not come up:\n%s", tu_file_text(d.log));

	ring_path(path, sizeof(path), d.instance, "A");
	assert_owned(path, gid, 0660);
	assert_owned(d.data_dir, gid, 02750);
	snprintf(store_dir, sizeof(store_dir), "%s/A", d.data_dir);
	assert_owned(store_dir, gid, 02750);

	o.instance = d.instance;
	ck_assert_int_eq(be_open("A", &o, &s), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(be_write(s, "line", 4), 0);
	ck_assert_int_eq(be_flush(s, 5000), 0);
	ck_assert_int_eq(be_close(s), 0);
	{
		char seg[SEG_NAME_LEN + 1];

		seg_name(seg, 1);
		snprintf(path, sizeof(path), "%s/%s", store_dir, seg);
		assert_owned(path, gid, 0640);
	}

	ck_assert_int_eq(as_user(&gid, 1, child_cannot_write, &ra), 0);
	ret = run_as(&gid, 1, argv, out, sizeof(out));
	ck_assert_msg(ret == 0, "be-read as a member of group %s: exit %d:\n%s", gname, ret, out);
	ck_assert_msg(strstr(out, "seq=1 ") && strstr(out, "seq=2 ") && strstr(out, "seq=3 "),
		      "be-read as a member of group %s:\n%s", gname, out);
	ret = run_as(NULL, 0, argv, out, sizeof(out));
	ck_assert_msg(ret != 0, "be-read outside group %s succeeded:\n%s", gname, out);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * A ring of store A that belongs to another user (a neighbour made it
 * before the daemon): not attached, with a log line naming the path and
 * the owner; B is served.
 */
START_TEST(test_daemon_foreign_ring)
{
	struct tu_daemon d;
	char path[128], want[256];

	tu_daemon_config(&d, NULL, STORES_AB);
	make_ring(d.instance, "A");
	ring_path(path, sizeof(path), d.instance, "A");
	ck_assert_int_eq(chown(path, nobody_uid, nobody_gid), 0);

	start_ok(&d, "B");
	snprintf(want, sizeof(want), "%s belongs to uid %u", path, (unsigned)nobody_uid);
	ck_assert_msg(wait_file_has(d.log, want, 5000), "no '%s' in the log:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_msg(strstr(tu_file_text(d.log), "not to the daemon's uid 0"),
		      "the line does not name the daemon's uid:\n%s", tu_file_text(d.log));
	ck_assert_uint_eq(ring_daemon_pid(d.instance, "A"), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A data_dir that belongs to another user: the daemon exits non-zero, saying so. */
START_TEST(test_data_dir_foreign)
{
	struct tu_daemon d;
	char want[400];
	struct ring_map m;

	tu_daemon_config(&d, NULL, STORES_AB);
	ck_assert_int_eq(mkdir(d.data_dir, 0750), 0);
	ck_assert_int_eq(chown(d.data_dir, nobody_uid, nobody_gid), 0);

	ck_assert_int_eq(run_daemon_fail(&d), 1);
	snprintf(want, sizeof(want), "%s belongs to uid %u", d.data_dir, (unsigned)nobody_uid);
	ck_assert_msg(strstr(tu_file_text(d.log), want), "no '%s' in the log:\n%s", want,
		      tu_file_text(d.log));
	ck_assert_int_eq(ring_open(d.instance, "A", RING_OPEN_RDONLY, &m), -ENOENT);
}
END_TEST

Suite *perms_suite(void)
{
	Suite *s = suite_create("perms");
	TCase *tc;
	struct passwd *pw;

	tc = tcase_create("planted");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_writer_symlink);
	tcase_add_test(tc, test_daemon_symlink_ring);
	tcase_add_test(tc, test_data_dir_symlink);
	tcase_add_test(tc, test_store_dir_symlink);
	tcase_add_test(tc, test_instance_lock_symlink);
	tcase_add_test(tc, test_unknown_group);
	suite_add_tcase(s, tc);

	if (geteuid() != 0) {
		printf("SKIP: perms: the 'users' tests (a writer or reader as another user, rings "
		       "and data_dir of another user, group = NAME) need root\n");
		return s;
	}
	pw = getpwnam("nobody");
	if (pw) {
		nobody_uid = pw->pw_uid;
		nobody_gid = pw->pw_gid;
	}
	tc = tcase_create("users");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_writer_needs_group);
	tcase_add_test(tc, test_group_and_reader);
	tcase_add_test(tc, test_daemon_foreign_ring);
	tcase_add_test(tc, test_data_dir_foreign);
	suite_add_tcase(s, tc);
	return s;
}
