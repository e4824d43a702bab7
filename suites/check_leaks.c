/*
 * check_leaks.c: qc_h_check_leaks: each kind of thing a test can leave
 * behind (contexts, threads, timers, fds, child processes, heap bytes,
 * wrong parents), named so its cause can be found; and a clean test has no
 * findings.
 *
 * Every test releases what it leaked once the check has seen it, so the
 * suite itself stays clean under valgrind.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <threads.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include <quiesce/harness.h>
#include <quiesce/wait.h>

#include "support.h"

static qc_h *h;

static void setup(void)
{
	qc_h_opts o = {.guard = 100 * QC_MILLISECOND};
	h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
}

static void teardown(void)
{
	if (getenv("QC_SHOW_REPORTS"))
		fprintf(stderr, "%s\n", qc_h_report(h));
	ck_assert_int_eq(qc_h_free(h), 0);
}

/* Fails with the leak report when h left anything behind. */
#define ck_no_leaks(h)                                                       \
	do {                                                                 \
		int n_ = qc_h_check_leaks(h);                                \
		ck_assert_msg(n_ == 0, "%d leaks:\n%s", n_, qc_h_report(h)); \
	} while (0)

#define ck_report_has(s)                                                   \
	ck_assert_msg(strstr(qc_h_report(h), (s)), "no '%s' in:\n%s", (s), \
		      qc_h_report(h))

static int wait_ctx(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_wait(ctx) == ECANCELED ? 0 : -1;
}

START_TEST(test_leaks_clean_test_has_no_findings)
{
	qc_ctx *c = qc_with_timeout(qc_h_ctx(h), QC_MINUTE);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(qc_h_spawn(h, c, "worker", wait_ctx, NULL), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_release(c);
	ck_no_leaks(h);
	ck_assert_str_eq(qc_h_report(h), "");
}
END_TEST

START_TEST(test_leaks_context_never_released_names_its_line)
{
	qc_ctx *c = qc_with_timeout(qc_h_ctx(h), 5 * QC_SECOND);
	int line = __LINE__ - 1;
	qc_ctx_set_name(c, "search");
	ck_assert_msg(qc_h_check_leaks(h) == 1, "%s", qc_h_report(h));
	char want[256];
	snprintf(want, sizeof want,
		 "context \"search\" created at check_leaks.c:%d in "
		 "test_leaks_context_never_released_names_its_line_fn(): 1 "
		 "user reference never released (a lost cancel)",
		 line);
	ck_report_has(want);
	ck_report_has("quiesce: leaks (qc_h_check_leaks): ");
	ck_report_has("timer at +5s for context \"search\" still armed");
	qc_cancel(c);
	qc_release(c);
	ck_no_leaks(h);
}
END_TEST

START_TEST(test_leaks_lost_cancel_lets_free_succeed)
{
	/* The leaked context and its clock stay allocated and reachable. */
	qc_ctx *lost = qc_with_cancel(qc_h_ctx(h));
	ck_assert_msg(qc_h_check_leaks(h) == 1, "%s", qc_h_report(h));
	ck_assert_int_eq(qc_h_free(h), 0);
	h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qc_err(lost), ECANCELED); /* cancelled by the free */
	qc_release(lost);
}
END_TEST

static int derive_from_background(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	int *line = arg;
	qc_ctx *c = qc_with_cancel(qc_background());
	*line = __LINE__ - 1;
	qc_cancel(c);
	qc_release(c);
	return 0;
}

START_TEST(test_leaks_wrong_parent_is_named)
{
	qc_ctx *c = qc_with_timeout(qc_background(), QC_HOUR);
	int line = __LINE__ - 1;
	qc_cancel(c);
	qc_release(c);
	int wline = 0;
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "deriver",
				    derive_from_background, &wline),
			 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_clock *other = qc_clock_virtual_new(0);
	qc_ctx *o = qc_with_cancel(qc_clock_root(other));
	qc_release(o);
	ck_assert_msg(qc_h_check_leaks(h) == 3, "%s", qc_h_report(h));
	char want[256];
	snprintf(want, sizeof want,
		 "wrong parent: the context created at check_leaks.c:%d in "
		 "test_leaks_wrong_parent_is_named_fn() (by the test thread) "
		 "derives from qc_background()",
		 line);
	ck_report_has(want);
	snprintf(want, sizeof want,
		 "check_leaks.c:%d in derive_from_background() (by thread ",
		 wline);
	ck_report_has(want);
	ck_report_has("\"deriver\") derives from qc_background()");
	ck_report_has("derives from a context of a clock no harness owns");
	ck_assert_int_eq(qc_clock_free(other), 0);
}
END_TEST

START_TEST(test_leaks_fd_says_what_it_is)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_msg(qc_h_check_leaks(h) == 2, "%s", qc_h_report(h));
	char want[64];
	snprintf(want, sizeof want, "fd %d: pipe:[", fds[0]);
	ck_report_has(want);
	ck_report_has("still open");
	close(fds[0]);
	close(fds[1]);
	ck_no_leaks(h);
}
END_TEST

static void *returns_at_once(void *arg)
{
	return arg;
}

START_TEST(test_leaks_exited_unjoined_thread)
{
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, returns_at_once, NULL), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_msg(qc_h_check_leaks(h) == 1, "%s", qc_h_report(h));
	ck_report_has("exited but never joined or detached (its stack is "
		      "leaked): thread ");
	ck_report_has("start routine returns_at_once (check_leaks.c:");
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_no_leaks(h);
	/* Detached threads are no leak. */
	ck_assert_int_eq(pthread_create(&t, NULL, returns_at_once, NULL), 0);
	ck_assert_int_eq(pthread_detach(t), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_no_leaks(h);
}
END_TEST

static int pipefd[2];

static void *reads_pipe(void *arg)
{
	char c;
	return read(pipefd[0], &c, 1) == 1 ? NULL : arg;
}

START_TEST(test_leaks_running_thread)
{
	ck_assert_int_eq(pipe(pipefd), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, reads_pipe, NULL), 0);
	ck_assert_int_ge(qc_h_check_leaks(h), 3); /* the thread, two fds */
	ck_report_has("still running: thread ");
	ck_report_has("start routine reads_pipe (check_leaks.c:");
	ck_report_has("created at check_leaks.c:");
	ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	close(pipefd[0]);
	close(pipefd[1]);
	ck_no_leaks(h);
}
END_TEST

static int c11_fn(void *arg)
{
	char c;
	return read(*(int *)arg, &c, 1) == 1 ? 0 : 1;
}

START_TEST(test_leaks_thread_no_pthread_create_made)
{
	/* gcc 12's ThreadSanitizer does not intercept thrd_create: the
	 * thread would crash in its first instrumented access. */
	if (dlsym(RTLD_DEFAULT, "__tsan_init"))
		return;
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	thrd_t t;
	ck_assert_int_eq(thrd_create(&t, c11_fn, &fds[0]), thrd_success);
	ck_assert_int_ge(qc_h_check_leaks(h), 1);
	ck_report_has("appeared since qc_h_new but no pthread_create made it");
	ck_report_has("threads: +1 since the baseline (/proc/self/task: ");
	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	int res;
	ck_assert_int_eq(thrd_join(t, &res), thrd_success);
	close(fds[0]);
	close(fds[1]);
	ck_no_leaks(h);
}
END_TEST

START_TEST(test_leaks_child_processes_and_zombies)
{
	pid_t z = fork();
	ck_assert_int_ge(z, 0);
	if (z == 0)
		_exit(0);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t r = fork();
	ck_assert_int_ge(r, 0);
	if (r == 0) {
		char c;
		close(fds[1]);
		_exit(read(fds[0], &c, 1) == 1 ? 0 : 1);
	}
	/* Wait until the first child is a zombie. */
	siginfo_t si;
	ck_assert_int_eq(waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT), 0);
	ck_assert_int_ge(qc_h_check_leaks(h), 2);
	char want[64];
	snprintf(want, sizeof want, "child process %d ", (int)z);
	ck_report_has(want);
	ck_report_has("is a zombie (exited, never waited for)");
	snprintf(want, sizeof want, "child process %d ", (int)r);
	ck_report_has(want);
	ck_report_has("still running (state ");
	ck_assert_int_eq(waitpid(z, NULL, 0), z);
	close(fds[0]);
	close(fds[1]); /* the child's read sees EOF */
	ck_assert_int_eq(waitpid(r, NULL, 0), r);
	ck_no_leaks(h);
}
END_TEST

/* The pointer is hidden while the check runs (a definite leak), then
 * restored and freed, so the suite itself ends clean. */
static uintptr_t hidden;

START_TEST(test_leaks_heap_bytes_under_valgrind)
{
	if (!qcs_on_memcheck()) {
		/* No tool to count them (helgrind and drd count none): the
		 * check must still work. */
		void *p = malloc(100);
		ck_no_leaks(h);
		free(p);
		return;
	}
	hidden = (uintptr_t)malloc(100) ^ UINTPTR_MAX;
	ck_assert_int_ge(qc_h_check_leaks(h), 1);
	ck_report_has("heap: 100 bytes in 1 blocks lost since qc_h_new");
	free((void *)(hidden ^ UINTPTR_MAX));
}
END_TEST

static Suite *leaks_suite(void)
{
	Suite *s = suite_create("leaks");
	TCase *tc = tcase_create("findings");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_leaks_clean_test_has_no_findings);
	tcase_add_test(tc, test_leaks_context_never_released_names_its_line);
	tcase_add_test(tc, test_leaks_lost_cancel_lets_free_succeed);
	tcase_add_test(tc, test_leaks_wrong_parent_is_named);
	tcase_add_test(tc, test_leaks_fd_says_what_it_is);
	tcase_add_test(tc, test_leaks_exited_unjoined_thread);
	tcase_add_test(tc, test_leaks_running_thread);
	tcase_add_test(tc, test_leaks_thread_no_pthread_create_made);
	tcase_add_test(tc, test_leaks_child_processes_and_zombies);
	tcase_add_test(tc, test_leaks_heap_bytes_under_valgrind);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(leaks_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
