/*
 * check_report.c: the words of qc_h_expect_quiet's failure report for each
 * shape of cancellation bug (real buggy code under test), the event trace
 * and qc_h_write_json, and qc_h_ignore.
 *
 * Linked statically, so the pthread_create interposer reaches this suite
 * the way it reaches users of libquiesce.a. Each failing case cleans up
 * once the verdict is in (writes to the pipe, sets the flag), and then
 * expects quiet.
 */
/* quiesce-suite: static */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <quiesce/chan.h>
#include <quiesce/harness.h>
#include <quiesce/wait.h>

#include "support.h"

#define GUARD (100 * QC_MILLISECOND)

static qc_h *h;

static void setup(void)
{
	qc_h_opts o = {.guard = GUARD};
	h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
}

static void teardown(void)
{
	/* QC_SHOW_REPORTS=1 prints each test's last report (to read them). */
	if (getenv("QC_SHOW_REPORTS"))
		fprintf(stderr, "%s\n", qc_h_report(h));
	ck_assert_int_eq(qc_h_free(h), 0);
}

#define ck_report_has(s)                                                   \
	ck_assert_msg(strstr(qc_h_report(h), (s)), "no '%s' in:\n%s", (s), \
		      qc_h_report(h))

/* ------------------------------------------------------------ the bugs */

static _Atomic int stop;

/* Spins without ever looking at its context. */
static int spin_worker(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	unsigned long n = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		n++;
	return (int)(n & 1);
}

START_TEST(test_report_spinner_is_running)
{
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "spinner", spin_worker, NULL), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, 100 * QC_MILLISECOND), ETIMEDOUT);
	ck_report_has("quiesce: not quiet: 1 thread still alive after the ");
	ck_report_has("real-time guard");
	ck_report_has("bound 100ms from qc_h_cancel at +0s");
	ck_report_has("cancelled at +0s");
	ck_report_has("virtual time could not move");
	ck_report_has(
	    "\"spinner\"  start routine spin_worker (check_report.c:");
	ck_report_has("created at check_report.c:");
	ck_report_has("in test_report_spinner_is_running_fn(), by thread \"");
	ck_report_has("(the test thread)");
	ck_report_has("state: running");
	ck_report_has("context: \"qc_h_ctx\" (cancel, created at "
		      "check_report.c:");
	ck_report_has("ECANCELED, cancelled at +0s by qc_h_cancel");
	ck_report_has("the thread did not stop");
	ck_report_has("hint: the thread is running (spinning?)");
	if (!strstr(qc_h_report(h), "stack: unavailable")) {
		/* #0 unless a sanitizer runtime delivered the signal. */
		ck_report_has("  stack:\n    #");
		ck_report_has(" spin_worker  check_report.c:");
	}
	atomic_store(&stop, 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
}
END_TEST

struct pipe_arg {
	int fds[2];
};

/* Blocks in a raw read(2) on a pipe: cannot see its context. */
static int blocked_reader(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct pipe_arg *p = arg;
	char c;
	return read(p->fds[0], &c, 1) == 1 ? 0 : -1;
}

START_TEST(test_report_blocked_read_names_the_pipe)
{
	struct pipe_arg p;
	ck_assert_int_eq(pipe(p.fds), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "reader", blocked_reader, &p), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), ETIMEDOUT);
	char want[64];
	snprintf(want, sizeof want, "state: blocked in read(fd %d: pipe:[",
		 p.fds[0]);
	if (!strstr(qc_h_report(h), "state: running")) /* valgrind */
		ck_report_has(want);
	ck_report_has("start routine blocked_reader (check_report.c:");
	if (strstr(qc_h_report(h), "blocked in read"))
		ck_report_has("hint: a thread blocked in read() cannot see its "
			      "context; use qc_read");
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	close(p.fds[0]);
	close(p.fds[1]);
}
END_TEST

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool ready;

/* Waits on a plain condition variable: cannot see its context. */
static int cond_waiter(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return 0;
}

START_TEST(test_report_cond_wait_is_blocked_in_futex)
{
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "condwaiter", cond_waiter, NULL), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), ETIMEDOUT);
	if (!qcs_on_valgrind()) {
		ck_report_has("state: blocked in futex");
		/* A full stack names the call (TSan captures one frame). */
		if (strstr(qc_h_report(h), "    #1 ")) {
			ck_report_has("state: blocked in futex (in "
				      "pthread_cond_wait)");
			ck_report_has("    #0 pthread_cond_wait");
			ck_report_has("hint: pthread_cond_wait() cannot see a "
				      "context");
		} else {
			ck_report_has("hint: a plain pthread_cond_wait");
		}
	}
	pthread_mutex_lock(&mu);
	ready = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
}
END_TEST

/* Sleeps on the clock's root instead of its context: cancellation
 * never reaches the sleep. */
static int wrong_sleeper(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_sleep(qc_clock_root(qc_ctx_clock(ctx)), QC_HOUR);
}

START_TEST(test_report_sleep_past_the_bound_is_parked_until_1h)
{
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "sleeper", wrong_sleeper, NULL), 0);
	qc_h_cancel(h);
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), ETIMEDOUT);
	ck_assert_int_lt(qcs_now() - t0, qcs_hang(QC_SECOND));
	ck_report_has("1 thread still alive at the bound (+1s)");
	ck_report_has("every thread is parked; virtual time moved to the "
		      "bound, next timer at +1h");
	ck_report_has("state: parked in qc_sleep until +1h");
	ck_report_has("hint: its qc_sleep outlives the bound");
	/* The clock is left at the bound. */
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH + QC_SECOND);
	ck_assert_int_eq(qc_h_advance(h, QC_HOUR), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
}
END_TEST

/* A request handler that starts a raw helper thread which ignores
 * cancellation, then returns when its own context ends. */
static int helper_fds[2];
static pthread_t helper;

static void *helper_main(void *arg)
{
	(void)arg;
	char c;
	return read(helper_fds[0], &c, 1) == 1 ? NULL : arg;
}

static int handler(qc_ctx *ctx, void *arg)
{
	(void)arg;
	if (pthread_create(&helper, NULL, helper_main, NULL) != 0)
		return -1;
	return qc_wait(ctx) == ECANCELED ? 0 : -1;
}

START_TEST(test_report_raw_helper_names_its_creator_and_context)
{
	ck_assert_int_eq(pipe(helper_fds), 0);
	qc_ctx *req = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(req, "request");
	ck_assert_int_eq(qc_h_spawn(h, req, "request-handler", handler, NULL),
			 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), ETIMEDOUT);
	ck_report_has("1 thread still alive");
	ck_report_has("start routine helper_main (check_report.c:");
	ck_report_has("(OS name"); /* valgrind names threads itself */
	ck_report_has("in handler(), by thread \"request-handler\"");
	ck_report_has("context: none given; its creator \"request-handler\" "
		      "ran with \"request\" (cancel, created at "
		      "check_report.c:");
	ck_assert_int_eq(write(helper_fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(pthread_join(helper, NULL), 0);
	qc_release(req);
	close(helper_fds[0]);
	close(helper_fds[1]);
}
END_TEST

START_TEST(test_report_never_cancelled_context_says_so)
{
	struct pipe_arg p;
	ck_assert_int_eq(pipe(p.fds), 0);
	qc_ctx *search = qc_with_timeout(qc_h_ctx(h), 5 * QC_SECOND);
	qc_ctx_set_name(search, "search");
	ck_assert_int_eq(qc_h_spawn(h, search, "query-0", blocked_reader, &p),
			 0);
	/* The bug: nobody cancels "search". */
	ck_assert_int_eq(qc_h_expect_quiet(h, 100 * QC_MILLISECOND), ETIMEDOUT);
	ck_report_has("nothing was cancelled");
	ck_report_has("bound 100ms from qc_h_expect_quiet at +0s");
	ck_report_has("context: \"search\" (deadline, deadline at +5s, "
		      "created at check_report.c:");
	ck_report_has("NEVER CANCELLED (1 user reference still held)");
	ck_report_has("(its deadline at +5s was never reached)");
	ck_report_has("hint: cancel \"search\" and release it on every path");
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_cancel(search);
	qc_release(search);
	close(p.fds[0]);
	close(p.fds[1]);
}
END_TEST

static int stuck_waiter(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_wait(ctx);
}

START_TEST(test_report_deadlock_words)
{
	qc_ctx *never = qc_with_cancel(qc_h_ctx(h));
	ck_assert_int_eq(qc_h_spawn(h, never, "stuck", stuck_waiter, NULL), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), EDEADLK);
	ck_report_has("quiesce: not quiet: 1 thread still alive in a deadlock "
		      "(EDEADLK)");
	ck_report_has("every bubble thread is parked and no timer is pending");
	ck_report_has("state: parked in qc_wait until its context is done");
	ck_report_has("hint: nothing can end its qc_wait");
	qc_cancel(never);
	qc_release(never);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
}
END_TEST

/* Given a cancellable context, but receives with the clock's root. */
static int root_receiver(qc_ctx *ctx, void *arg)
{
	int v;
	return qc_chan_recv(qc_clock_root(qc_ctx_clock(ctx)), arg, &v);
}

START_TEST(test_report_names_a_wait_on_a_never_done_context)
{
	qc_chan *ch = qc_chan_new(sizeof(int), 0);
	qc_ctx *job = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(job, "job");
	ck_assert_int_eq(qc_h_spawn(h, job, "rooted", root_receiver, ch), 0);
	qc_cancel(job);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), EDEADLK);
	ck_report_has("state: parked in qc_chan_recv on context (unnamed) "
		      "(clock root)");
	ck_report_has("never done (it cannot be cancelled)");
	ck_report_has("hint: its qc_chan_recv waits on a context that can "
		      "never be done");
	ck_report_has("context: \"job\" (cancel");
	/* The stack starts at the quiesce call and ends at the thread's own
	 * code (TSan's capture of a blocked thread is one libc frame). */
	const char *r = qc_h_report(h);
	if (strstr(r, "    #1 ")) {
		ck_report_has("    #0 qc_chan_recv ");
		ck_report_has("    #1 root_receiver ");
	}
	ck_assert_msg(!strstr(r, "trampoline") && !strstr(r, "start_thread") &&
			  !strstr(r, "qc__futex_wait"),
		      "%s", r);
	/* QC_STACK_FULL=1 keeps every frame. */
	setenv("QC_STACK_FULL", "1", 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), EDEADLK);
	unsetenv("QC_STACK_FULL");
	r = qc_h_report(h);
	if (strstr(r, "    #1 "))
		ck_report_has(" start_thread ");
	qc_chan_close(ch); /* the only way to end that wait */
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_release(job);
	ck_assert_int_eq(qc_chan_free(ch), 0);
}
END_TEST

/* ------------------------------------------------------- the fixed forms */

static int good_spinner(qc_ctx *ctx, void *arg)
{
	(void)arg;
	unsigned long n = 0;
	while (qc_err(ctx) == 0)
		n++;
	return (int)(n & 1);
}

static int good_reader(qc_ctx *ctx, void *arg)
{
	struct pipe_arg *p = arg;
	char c;
	return qc_read(ctx, p->fds[0], &c, 1) < 0 ? 0 : -1;
}

static qc_cond good_cv;
static pthread_mutex_t good_mu = PTHREAD_MUTEX_INITIALIZER;

static int good_cond_waiter(qc_ctx *ctx, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&good_mu);
	int e = 0;
	while (e == 0)
		e = qc_cond_wait(ctx, &good_cv, &good_mu);
	pthread_mutex_unlock(&good_mu);
	return e == ECANCELED ? 0 : -1;
}

static int good_sleeper(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_sleep(ctx, QC_HOUR) == ECANCELED ? 0 : -1;
}

START_TEST(test_report_good_versions_are_quiet_at_once)
{
	struct pipe_arg p;
	ck_assert_int_eq(pipe(p.fds), 0);
	ck_assert_int_eq(qc_cond_init(&good_cv), 0);
	qc_ctx *c = qc_h_ctx(h);
	ck_assert_int_eq(qc_h_spawn(h, c, "spinner", good_spinner, NULL), 0);
	ck_assert_int_eq(qc_h_spawn(h, c, "reader", good_reader, &p), 0);
	ck_assert_int_eq(qc_h_spawn(h, c, "cond", good_cond_waiter, NULL), 0);
	ck_assert_int_eq(qc_h_spawn(h, c, "sleeper", good_sleeper, NULL), 0);
	qc_time t0 = qcs_now();
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, 100 * QC_MILLISECOND), 0);
	ck_assert_int_lt(qcs_now() - t0, qcs_hang(GUARD));
	/* Nothing had to wait for time: the hour never passed. */
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH);
	const char *names[] = {"spinner", "reader", "cond", "sleeper"};
	for (int i = 0; i < 4; i++) {
		int ret = -1;
		ck_assert_int_eq(qc_h_result(h, names[i], &ret), 0);
		ck_assert_int_eq(ret, i == 0 ? ret : 0);
	}
	ck_assert_str_eq(qc_h_report(h), "");
	ck_assert_int_eq(qc_cond_destroy(&good_cv), 0);
	close(p.fds[0]);
	close(p.fds[1]);
}
END_TEST

/* ---------------------------------------------------------------- ignore */

static _Atomic int ignored_done;

static int ignored_worker(qc_ctx *ctx, void *arg)
{
	int r = blocked_reader(ctx, arg);
	atomic_store(&ignored_done, 1);
	return r;
}

static bool is_set(void *arg)
{
	return atomic_load((_Atomic int *)arg) != 0;
}

START_TEST(test_report_ignore_leaves_a_thread_out)
{
	struct pipe_arg p;
	ck_assert_int_eq(pipe(p.fds), 0);
	ck_assert_int_eq(qc_h_ignore(h, "ignored_worker"), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "bg", ignored_worker, &p),
			 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert(qcs_wait_for(is_set, &ignored_done, 5 * QC_SECOND));
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	close(p.fds[0]);
	close(p.fds[1]);
}
END_TEST

/* ------------------------------------------------------------------ JSON */

static int sleep_then_exit(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_sleep(ctx, 30 * QC_SECOND);
}

START_TEST(test_report_json_has_the_report_and_the_trace)
{
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "napper", sleep_then_exit, NULL), 0);
	ck_assert_int_eq(qc_h_advance(h, QC_MINUTE), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(qc_h_write_json(h, f), 0);
	long n = ftell(f);
	ck_assert_int_gt(n, 0);
	char *text = calloc(1, (size_t)n + 1);
	rewind(f);
	ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "{\"quiesce\":1,\"created_at\":\""));
	ck_assert_ptr_nonnull(strstr(text, "check_report.c:"));
	ck_assert_ptr_nonnull(strstr(text, "\"report\":\"\""));
	ck_assert_ptr_nonnull(strstr(text, "\"name\":\"napper\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"spawn\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"park\""));
	ck_assert_ptr_nonnull(strstr(text, "\"what\":\"qc_sleep\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"timer\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"wake\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"cancel\""));
	ck_assert_ptr_nonnull(strstr(text, "\"event\":\"exit\""));
	ck_assert_ptr_nonnull(strstr(text, "\"virtual_ns\":30000000000"));
	ck_assert_ptr_nonnull(strstr(text, "\"events_dropped\":0}"));
	free(text);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("shapes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_report_spinner_is_running);
	tcase_add_test(tc, test_report_blocked_read_names_the_pipe);
	tcase_add_test(tc, test_report_cond_wait_is_blocked_in_futex);
	tcase_add_test(tc, test_report_sleep_past_the_bound_is_parked_until_1h);
	tcase_add_test(tc,
		       test_report_raw_helper_names_its_creator_and_context);
	tcase_add_test(tc, test_report_never_cancelled_context_says_so);
	tcase_add_test(tc, test_report_deadlock_words);
	tcase_add_test(tc, test_report_names_a_wait_on_a_never_done_context);
	tcase_add_test(tc, test_report_good_versions_are_quiet_at_once);
	tcase_add_test(tc, test_report_ignore_leaves_a_thread_out);
	tcase_add_test(tc, test_report_json_has_the_report_and_the_trace);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(report_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
