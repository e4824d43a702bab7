/*
 * check_faketime.c: libfaketime specs and child setup (quiesce/faketime.h).
 *
 * Parsing and formatting are checked as pure functions; the child setup is
 * checked end to end by running /bin/sleep under the environment it builds
 * (skipped where libfaketime is not installed). Timing uses the raw kernel
 * clock, which libfaketime cannot touch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <valgrind/valgrind.h>

#include <quiesce/faketime.h>

#include "alloc.h" /* fault injection: qc__alloc_fail_after */

static long long raw_now_ns(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Runs fn with stderr captured into out (size n). */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t n)
{
	char path[] = "/tmp/qc-ft-stderr-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	int saved = dup(2);
	fflush(stderr);
	dup2(fd, 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t len = pread(fd, out, n - 1, 0);
	out[len > 0 ? len : 0] = '\0';
	close(fd);
	unlink(path);
}

static bool have_libfaketime(void)
{
	char lib[512];
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	dup2(null, 2);
	bool ok = qc_faketime_library(lib, sizeof lib) == 0;
	dup2(saved, 2);
	close(saved);
	close(null);
	return ok;
}

START_TEST(test_faketime_parse_offset_forms)
{
	qc_faketime ft;
	ck_assert_int_eq(qc_faketime_parse("+0", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.kind, QC_FAKETIME_OFFSET);
	ck_assert_int_eq(ft.offset, 0);
	ck_assert(ft.speed == 1.0);
	ck_assert_int_eq(qc_faketime_parse("-2d", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.offset, -2 * 86400 * QC_SECOND);
	ck_assert_int_eq(qc_faketime_parse("+1.5h", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.offset, 5400 * QC_SECOND);
	ck_assert_int_eq(qc_faketime_parse("+0.25", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.offset, 250 * QC_MILLISECOND);
	ck_assert_int_eq(qc_faketime_parse("+0 x100", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.offset, 0);
	ck_assert(ft.speed == 100.0);
	ck_assert_int_eq(qc_faketime_parse("+1y x0.5", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.offset, 365 * 86400 * QC_SECOND);
	ck_assert(ft.speed == 0.5);
	ck_assert_int_eq(qc_faketime_parse("-90m", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.offset, -90 * QC_MINUTE);
}
END_TEST

START_TEST(test_faketime_parse_absolute_forms)
{
	qc_faketime ft;
	ck_assert_int_eq(
	    qc_faketime_parse("@2020-02-29 12:30:45 x2", &ft, NULL, 0), 0);
	ck_assert_int_eq(ft.kind, QC_FAKETIME_START);
	ck_assert_int_eq(ft.year, 2020);
	ck_assert_int_eq(ft.month, 2);
	ck_assert_int_eq(ft.day, 29);
	ck_assert_int_eq(ft.hour, 12);
	ck_assert_int_eq(ft.minute, 30);
	ck_assert_int_eq(ft.second, 45);
	ck_assert(ft.speed == 2.0);
	ck_assert_int_eq(qc_faketime_parse("2021-06-30 23:59:59", &ft, NULL, 0),
			 0);
	ck_assert_int_eq(ft.kind, QC_FAKETIME_FROZEN);
	ck_assert(ft.speed == 0.0);
}
END_TEST

START_TEST(test_faketime_parse_rejects_malformed)
{
	static const char *const bad[] = {
	    "",
	    "x10",
	    "+",
	    "+0x10",
	    "+0 x0",
	    "+0 x-1",
	    "+0 x1e3",
	    "+0 x10 ",
	    "+0  x10",
	    "+3q",
	    "+1000y",
	    "+0 i0.5",
	    "+0.1234567891",
	    "2020-02-30 00:00:00",
	    "2021-02-29 00:00:00",
	    "@2020-01-01 24:00:00",
	    "@2020-1-1 00:00:00",
	    "2020-01-01 00:00:00 x2",
	    "now",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		qc_faketime ft = {.kind = QC_FAKETIME_OFFSET, .offset = 77};
		char err[512] = "";
		ck_assert_msg(qc_faketime_parse(bad[i], &ft, err, sizeof err) ==
				  EINVAL,
			      "'%s' was accepted", bad[i]);
		ck_assert_int_eq(ft.offset, 77); /* untouched */
		ck_assert_msg(strstr(err, "accepted:") &&
				  strstr(err, "'+0 x10'"),
			      "message '%s' lists no forms", err);
		char quoted[64];
		snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
		ck_assert_msg(strstr(err, quoted), "message '%s' lacks %s", err,
			      quoted);
	}
	char err[512];
	ck_assert_int_eq(qc_faketime_parse("+0", NULL, err, sizeof err),
			 EINVAL);
	ck_assert_int_eq(
	    qc_faketime_parse(NULL, &(qc_faketime){0}, err, sizeof err),
	    EINVAL);
}
END_TEST

static void parse_garbage(void *arg)
{
	qc_faketime ft;
	*(int *)arg = qc_faketime_parse("garbage", &ft, NULL, 0);
}

START_TEST(test_faketime_parse_error_goes_to_stderr_as_one_line)
{
	char out[1024];
	int rc = 0;
	capture_stderr(parse_garbage, &rc, out, sizeof out);
	ck_assert_int_eq(rc, EINVAL);
	ck_assert_msg(
	    strncmp(out, "quiesce: bad faketime spec 'garbage'", 36) == 0,
	    "got '%s'", out);
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

START_TEST(test_faketime_format_is_canonical_and_round_trips)
{
	static const char *const pairs[][2] = {
	    {"+0 x100", "+0 x100"},
	    {"-2d", "-172800"},
	    {"+1.5h", "+5400"},
	    {"+0.25", "+0.25"},
	    {"+1y x0.5", "+31536000 x0.5"},
	    {"+10s x1", "+10"},
	    {"+0 x1.125", "+0 x1.125"},
	    {"@2020-02-29 12:30:45 x2", "@2020-02-29 12:30:45 x2"},
	    {"@2020-01-01 00:00:00", "@2020-01-01 00:00:00"},
	    {"2021-06-30 23:59:59", "2021-06-30 23:59:59"},
	};
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		qc_faketime a, b;
		char text[96];
		ck_assert_int_eq(qc_faketime_parse(pairs[i][0], &a, NULL, 0),
				 0);
		ck_assert_int_eq(qc_faketime_format(&a, text, sizeof text), 0);
		ck_assert_str_eq(text, pairs[i][1]);
		ck_assert_int_eq(qc_faketime_parse(text, &b, NULL, 0), 0);
		ck_assert_int_eq(a.kind, b.kind);
		ck_assert_int_eq(a.offset, b.offset);
		ck_assert(a.speed == b.speed);
		ck_assert_int_eq(a.year * 10000 + a.month * 100 + a.day,
				 b.year * 10000 + b.month * 100 + b.day);
	}
}
END_TEST

START_TEST(test_faketime_format_rejects_bad_input)
{
	qc_faketime ft;
	char small[4];
	ck_assert_int_eq(qc_faketime_parse("+0 x100", &ft, NULL, 0), 0);
	ck_assert_int_eq(qc_faketime_format(&ft, small, sizeof small), ERANGE);
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(qc_faketime_format(NULL, small, sizeof small), EINVAL);
	ft.speed = 0;
	ck_assert_int_eq(qc_faketime_format(&ft, small, sizeof small), EINVAL);
	qc_faketime zero = {0};
	ck_assert_int_eq(qc_faketime_format(&zero, small, sizeof small),
			 EINVAL);
}
END_TEST

static void find_missing_library(void *arg)
{
	char lib[256];
	*(int *)arg = qc_faketime_library(lib, sizeof lib);
}

START_TEST(test_faketime_library_found_or_named)
{
	char lib[512], out[1024];
	int rc = 0;
	if (have_libfaketime()) {
		ck_assert_int_eq(qc_faketime_library(lib, sizeof lib), 0);
		ck_assert_msg(strstr(lib, "libfaketimeMT.so.1"), "got %s", lib);
		ck_assert_int_eq(access(lib, R_OK), 0);
		ck_assert_int_eq(qc_faketime_library(lib, 8), ERANGE);
	}
	setenv("QC_FAKETIME_LIB", "/nonexistent/libfaketimeMT.so.1", 1);
	capture_stderr(find_missing_library, &rc, out, sizeof out);
	unsetenv("QC_FAKETIME_LIB");
	ck_assert_int_eq(rc, ENOENT);
	ck_assert_msg(strstr(out, "quiesce: ") && strstr(out, "'libfaketime'"),
		      "got '%s'", out);
	ck_assert_int_eq(qc_faketime_library(NULL, 1), EINVAL);
}
END_TEST

static const char *env_get(char *const *envp, const char *name)
{
	size_t len = strlen(name);
	for (; *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

static void read_text(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t len = fread(out, 1, n - 1, f);
	out[len] = '\0';
	fclose(f);
}

START_TEST(test_faketime_child_env_and_timestamp_file)
{
	qc_faketime ft;
	char text[128];
	if (!have_libfaketime())
		return;
	setenv("FAKETIME", "+1d", 1);
	setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
	setenv("LD_PRELOAD", "libfoo.so", 1);
	ck_assert_int_eq(qc_faketime_parse("+0 x10", &ft, NULL, 0), 0);
	qc_faketime_child *c = qc_faketime_child_new(&ft, "true", "/tmp");
	unsetenv("LD_PRELOAD");
	ck_assert_ptr_nonnull(c);
	const char *file = qc_faketime_child_file(c);
	ck_assert_ptr_nonnull(file);
	ck_assert(strncmp(file, "/tmp/quiesce-faketime-", 22) == 0);
	read_text(file, text, sizeof text);
	ck_assert_str_eq(text, "+0 x10\n");

	char *const *envp = qc_faketime_child_envp(c);
	ck_assert_str_eq(env_get(envp, "FAKETIME_TIMESTAMP_FILE"), file);
	ck_assert_str_eq(env_get(envp, "FAKETIME_NO_CACHE"), "1");
	ck_assert_ptr_null(env_get(envp, "FAKETIME"));
	ck_assert_ptr_null(env_get(envp, "FAKETIME_DONT_FAKE_MONOTONIC"));
	const char *pre = env_get(envp, "LD_PRELOAD");
	ck_assert_ptr_nonnull(pre);
	/* libfaketime first (no asan here), then the old list. */
	ck_assert_msg(pre[0] == '/' &&
			  strstr(pre, "libfaketimeMT.so.1:libfoo.so"),
		      "got %s", pre);
	ck_assert_ptr_nonnull(env_get(envp, "PATH"));

	ck_assert_int_eq(qc_faketime_parse("-1h", &ft, NULL, 0), 0);
	ck_assert_int_eq(qc_faketime_child_update(c, &ft), 0);
	read_text(file, text, sizeof text);
	ck_assert_str_eq(text, "-3600\n");

	char copy[256];
	snprintf(copy, sizeof copy, "%s", file);
	ck_assert_int_eq(qc_faketime_child_free(c), 0);
	ck_assert_int_ne(access(copy, F_OK), 0); /* removed */
	ck_assert_int_eq(qc_faketime_child_free(NULL), 0);
	unsetenv("FAKETIME");
	unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
}
END_TEST

START_TEST(test_faketime_child_puts_asan_first)
{
	qc_faketime ft;
	char so[64];
	if (!have_libfaketime())
		return;
	ck_assert_int_eq(qc_faketime_asan_runtime("/bin/true", so, sizeof so),
			 ENOENT);
	ck_assert_int_eq(qc_faketime_asan_runtime("/nonexistent", so, 64),
			 ENOENT);
	ck_assert_int_eq(qc_faketime_asan_runtime("/etc/passwd", so, 64),
			 ENOEXEC);
	/* An LD_PRELOAD that already holds libasan keeps it first. */
	setenv("LD_PRELOAD", "libbar.so /usr/lib/libasan.so.8", 1);
	ck_assert_int_eq(qc_faketime_parse("+0", &ft, NULL, 0), 0);
	qc_faketime_child *c = qc_faketime_child_new(&ft, NULL, NULL);
	unsetenv("LD_PRELOAD");
	ck_assert_ptr_nonnull(c);
	const char *pre = env_get(qc_faketime_child_envp(c), "LD_PRELOAD");
	ck_assert_msg(strncmp(pre, "/usr/lib/libasan.so.8:/", 23) == 0 &&
			  strstr(pre, "libfaketimeMT.so.1:libbar.so"),
		      "got %s", pre);
	qc_faketime_child_free(c);

	/* A real ASan program, when the compiler can make one (not under
	 * valgrind, which makes the compiler too slow for this suite). */
	if (RUNNING_ON_VALGRIND)
		return;
	char dir[] = "/tmp/qc-ft-asan-XXXXXX", cmd[512], exe[300];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(exe, sizeof exe, "%s/a", dir);
	snprintf(cmd, sizeof cmd,
		 "echo 'int main(void){return 0;}' | cc -x c -fsanitize=address"
		 " -o %s - 2>/dev/null",
		 exe);
	if (system(cmd) == 0) {
		ck_assert_int_eq(qc_faketime_asan_runtime(exe, so, sizeof so),
				 0);
		ck_assert_msg(strncmp(so, "libasan.so.", 11) == 0, "got %s",
			      so);
		c = qc_faketime_child_new(&ft, exe, NULL);
		ck_assert_ptr_nonnull(c);
		pre = env_get(qc_faketime_child_envp(c), "LD_PRELOAD");
		ck_assert_msg(strncmp(pre, so, strlen(so)) == 0 &&
				  pre[strlen(so)] == ':',
			      "got %s", pre);
		qc_faketime_child_free(c);
		unlink(exe);
	}
	rmdir(dir);
}
END_TEST

struct new_args {
	const char *dir;
	qc_faketime_child *c;
	int err;
};

static void try_new(void *arg)
{
	struct new_args *a = arg;
	qc_faketime ft;
	qc_faketime_parse("+0 x10", &ft, NULL, 0);
	errno = 0;
	a->c = qc_faketime_child_new(&ft, NULL, a->dir);
	a->err = errno;
}

static void try_new_null(void *arg)
{
	struct new_args *a = arg;
	errno = 0;
	a->c = qc_faketime_child_new(NULL, NULL, NULL);
	a->err = errno;
}

START_TEST(test_faketime_child_unwritable_dir_fails_loudly)
{
	char out[1024];
	struct new_args a = {.dir = "/nonexistent/dir"};
	if (!have_libfaketime())
		return;
	capture_stderr(try_new, &a, out, sizeof out);
	ck_assert_ptr_null(a.c);
	ck_assert_int_eq(a.err, ENOENT);
	ck_assert_msg(strstr(out, "quiesce: cannot write the faketime "
				  "timestamp file in /nonexistent/dir"),
		      "got '%s'", out);
	/* A file where a directory should be. */
	a.dir = "/etc/passwd";
	capture_stderr(try_new, &a, out, sizeof out);
	ck_assert_ptr_null(a.c);
	ck_assert_int_eq(a.err, ENOTDIR);
	/* /proc refuses new files even to root. */
	a.dir = "/proc";
	capture_stderr(try_new, &a, out, sizeof out);
	ck_assert_ptr_null(a.c);
	ck_assert_int_ne(a.err, 0);
	capture_stderr(try_new_null, &a, out, sizeof out);
	ck_assert_ptr_null(a.c);
	ck_assert_int_eq(a.err, EINVAL);
	ck_assert_msg(strstr(out, "quiesce: invalid faketime spec"), "got '%s'",
		      out);
}
END_TEST

/* Starts argv under c's environment, off the test's output and killed if
 * the test process dies first; returns the pid. */
static pid_t spawn_under(qc_faketime_child *c, char *const argv[])
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execve(argv[0], argv, qc_faketime_child_envp(c));
		_exit(127);
	}
	return pid;
}

START_TEST(test_faketime_child_sleep_runs_100x_faster)
{
	qc_faketime ft;
	int status;
	if (!have_libfaketime())
		return;
	ck_assert_int_eq(qc_faketime_parse("+0 x100", &ft, NULL, 0), 0);
	qc_faketime_child *c = qc_faketime_child_new(&ft, "/bin/sleep", NULL);
	ck_assert_ptr_nonnull(c);
	char *argv[] = {"/bin/sleep", "5", NULL};
	long long t0 = raw_now_ns();
	pid_t pid = spawn_under(c, argv);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	long long took = raw_now_ns() - t0;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* 5 s at x100 is 50 ms; unfaked it is 5 s. Allow a loaded machine
	 * plenty in between. */
	ck_assert_msg(took >= 40000000LL && took < 4000000000LL,
		      "sleep 5 took %lld ns", took);
	ck_assert_int_eq(qc_faketime_cleanup_pid(pid), 0);
	qc_faketime_child_free(c);
}
END_TEST

START_TEST(test_faketime_cleanup_removes_shm_of_killed_child)
{
	qc_faketime ft;
	char shm[64], sem[64];
	if (!have_libfaketime())
		return;
	ck_assert_int_eq(qc_faketime_parse("+0", &ft, NULL, 0), 0);
	qc_faketime_child *c = qc_faketime_child_new(&ft, "/bin/sleep", NULL);
	ck_assert_ptr_nonnull(c);
	char *argv[] = {"/bin/sleep", "30", NULL};
	pid_t pid = spawn_under(c, argv);
	snprintf(shm, sizeof shm, "/dev/shm/faketime_shm_%d", (int)pid);
	snprintf(sem, sizeof sem, "/dev/shm/sem.faketime_sem_%d", (int)pid);
	for (int i = 0; i < 2000 && access(shm, F_OK) != 0; i++)
		usleep(1000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_msg(access(shm, F_OK) == 0, "libfaketime made no %s", shm);
	ck_assert_int_eq(qc_faketime_cleanup_pid(pid), 0);
	ck_assert_int_ne(access(shm, F_OK), 0);
	ck_assert_int_ne(access(sem, F_OK), 0);
	ck_assert_int_eq(qc_faketime_cleanup_pid(pid), 0); /* idempotent */
	ck_assert_int_eq(qc_faketime_cleanup_pid(0), EINVAL);
	qc_faketime_child_free(c);
}
END_TEST

static void new_in_dir(void *arg)
{
	struct new_args *a = arg;
	qc_faketime ft;
	qc_faketime_parse("+0 x10", &ft, NULL, 0);
	errno = 0;
	a->c = qc_faketime_child_new(&ft, NULL, a->dir);
	a->err = errno;
}

static int files_in(const char *path)
{
	int n = 0;
	struct dirent *e;
	DIR *dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) != NULL)
		n +=
		    strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(dir);
	return n;
}

START_TEST(test_faketime_child_new_fails_cleanly_out_of_memory)
{
	char dir[] = "/tmp/qc-ft-oom-XXXXXX", err[512];
	struct new_args a = {.dir = dir};
	if (!have_libfaketime())
		return;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	int n;
	for (n = 0; n < 1000; n++) {
		qc__alloc_fail_after(n);
		capture_stderr(new_in_dir, &a, err, sizeof err);
		qc__alloc_fail_after(-1);
		if (a.c)
			break;
		ck_assert_int_eq(a.err, ENOMEM);
		ck_assert_msg(strstr(err, "quiesce: out of memory"), "got '%s'",
			      err);
		/* Nothing written or left half-made. */
		ck_assert_int_eq(files_in(dir), 0);
	}
	ck_assert_ptr_nonnull(a.c);
	ck_assert_int_gt(n, 2); /* it does allocate */
	ck_assert_int_eq(files_in(dir), 1);
	ck_assert_int_eq(qc_faketime_child_free(a.c), 0);
	ck_assert_int_eq(files_in(dir), 0);
	rmdir(dir);
}
END_TEST

static Suite *faketime_suite(void)
{
	Suite *s = suite_create("faketime");
	TCase *tc = tcase_create("faketime");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_faketime_parse_offset_forms);
	tcase_add_test(tc, test_faketime_parse_absolute_forms);
	tcase_add_test(tc, test_faketime_parse_rejects_malformed);
	tcase_add_test(tc,
		       test_faketime_parse_error_goes_to_stderr_as_one_line);
	tcase_add_test(tc, test_faketime_format_is_canonical_and_round_trips);
	tcase_add_test(tc, test_faketime_format_rejects_bad_input);
	tcase_add_test(tc, test_faketime_library_found_or_named);
	tcase_add_test(tc, test_faketime_child_env_and_timestamp_file);
	tcase_add_test(tc, test_faketime_child_puts_asan_first);
	tcase_add_test(tc, test_faketime_child_unwritable_dir_fails_loudly);
	tcase_add_test(tc, test_faketime_child_new_fails_cleanly_out_of_memory);
	tcase_add_test(tc, test_faketime_child_sleep_runs_100x_faster);
	tcase_add_test(tc, test_faketime_cleanup_removes_shm_of_killed_child);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(faketime_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
