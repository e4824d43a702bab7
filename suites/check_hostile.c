/*
 * check_hostile.c: the harness against hostile code under test (issue #9):
 * code that crashes, calls exit(), spins forever, blocks in a system call
 * nothing interrupts, closes the harness's own fds, or creates 1,000
 * threads. For each the harness must report precisely (the tests assert on
 * the report's words), never hang past its real-time guard, and leave the
 * next test a clean start: after an abandoned harness (qc_h_free: EBUSY), a
 * new one works and treats the survivors as left over.
 *
 * Code that kills the process runs twice: once as the test itself (Check's
 * fork mode, with tcase_add_test_raise_signal / tcase_add_exit_test), and
 * once in a child process of the test's own, so that the test can time
 * the death and then make a fresh harness in the surviving process. The
 * fd-closing code runs only in such a child: closing every fd would cut
 * Check's own line to its runner.
 *
 * Timing: the guard is real time (a give-up bound), asserted with a strict
 * lower bound and a generous upper one; nothing else depends on real time.
 */
/* quiesce-suite: timeout 300 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <quiesce/census.h>
#include <quiesce/check.h>
#include <quiesce/quiesce.h>

#include "support.h"

/* The guard hostile tests use (scaled by the time multiplier inside). */
#define GUARD (250 * QC_MILLISECOND)

static const qc_h_opts fast = {.guard = GUARD};

/* The longest a guard lasts: it stretches while a thread is starved of a
 * CPU (a loaded machine), up to 10 guards, at least 5 s (harness.h). */
static qc_duration stretch_cap(qc_duration guard)
{
	return guard * 10 > 5 * QC_SECOND ? guard * 10 : 5 * QC_SECOND;
}

/* Fails with the report when r (a report) lacks word. */
#define ck_report_has(r, word)                                          \
	ck_assert_msg(strstr((r), (word)) != NULL, "no \"%s\" in:\n%s", \
		      (word), (r))

/* ------------------------------------------------------------- helpers */

/* Crashes the calling thread with SIGSEGV. A real invalid access where
 * that is the crash being tested; under valgrind and the sanitizers (whose
 * own handlers would report the access, not die of it) the same signal
 * with its default action. */
static void crash(void)
{
	if (!qcs_slow()) {
		volatile int *volatile p = NULL;
		*p = 1;
	}
	signal(SIGSEGV, SIG_DFL);
	pthread_kill(pthread_self(), SIGSEGV);
	for (;;)
		pause();
}

static int crasher(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	crash();
	return 0;
}

static int exiter(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	exit(3);
}

struct spin {
	_Atomic int stop;
	_Atomic long turns;
};

/* Spins until told to stop; never looks at its context. */
static int spinner(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct spin *s = arg;
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&s->turns, 1, memory_order_relaxed);
	return 0;
}

static void *spinner_thread(void *arg)
{
	(void)spinner(NULL, arg);
	return NULL;
}

struct pipe_block {
	int fds[2];
	_Atomic int done;
};

/* Blocks in a raw read(2) of a pipe nobody writes. */
static int reader(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct pipe_block *p = arg;
	char c;
	ssize_t r = read(p->fds[0], &c, 1);
	atomic_store(&p->done, 1);
	return r == 1 ? 0 : -1;
}

static void *reader_thread(void *arg)
{
	(void)reader(NULL, arg);
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* Blocks in pause() until a signal arrives. */
static int pauser(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	_Atomic pid_t *tid = arg;
	atomic_store(tid, (pid_t)syscall(SYS_gettid));
	pause();
	return 0;
}

/* Waits for its argument, a context, to be done (parked). */
static int ctx_waiter(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	return qc_wait(arg) == ECANCELED ? 0 : 1;
}

static bool flag_is_set(void *arg)
{
	return atomic_load((_Atomic int *)arg) != 0;
}

/* The result of a child process of the test's own. */
struct child {
	pid_t pid;
	int status;
	qc_duration took; /* fork to reaped, real time */
	char out[16384];  /* its stdout and stderr */
};

/* Runs fn in a child process (stdout and stderr into c->out), waits at
 * most bound of real time (scaled), and kills it after that. */
static void run_child(void (*fn)(void), qc_duration bound, struct child *c)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	qc_time t0 = qcs_now();
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		fn();
		fflush(stdout);
		_exit(0);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	size_t got = 0;
	qc_time end = t0 + qcs_guard(bound);
	bool reaped = false;
	while (!reaped) {
		ssize_t r = read(p[0], c->out + got, sizeof c->out - 1 - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		pid_t w = waitpid(c->pid, &c->status, WNOHANG);
		if (w == c->pid) {
			reaped = true;
			break;
		}
		if (qcs_now() > end) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &c->status, 0);
			c->took = qcs_now() - t0;
			c->out[got] = '\0';
			close(p[0]);
			ck_abort_msg(
			    "the child hung past %lld ms:\n%s",
			    (long long)(qcs_guard(bound) / QC_MILLISECOND),
			    c->out);
		}
		qcs_nap(QC_MILLISECOND);
	}
	c->took = qcs_now() - t0;
	ssize_t r;
	while ((r = read(p[0], c->out + got, sizeof c->out - 1 - got)) > 0)
		got += (size_t)r;
	c->out[got] = '\0';
	close(p[0]);
}

/* After a child died: this process makes a harness as if nothing
 * happened, and it finds nothing. */
static void fresh_harness_is_clean(void)
{
	qc_h *h = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	int n = qc_h_check_leaks(h);
	ck_assert_msg(n == 0, "%d leaks:\n%s", n, qc_h_report(h));
	ck_assert_int_eq(qc_h_free(h), 0);
}

/* ---------------------------------------------------------- crashes */

/* The scenario: a harness, a tracked thread that crashes while the test
 * thread waits in qc_h_expect_quiet. */
static void segv_scenario(void)
{
	qc_h *h = qc_h_new(&fast);
	if (!h)
		_exit(100);
	if (qc_h_spawn(h, qc_h_ctx(h), "crasher", crasher, NULL) != 0)
		_exit(101);
	qc_h_cancel(h);
	(void)qc_h_expect_quiet(h, QC_SECOND);
	/* Only if the crash did not end the process first. */
	(void)qc_h_expect_quiet(h, QC_SECOND);
	_exit(102);
}

START_TEST(test_hostile_segv_kills_the_test)
{
	segv_scenario();
}
END_TEST

START_TEST(test_hostile_segv_in_a_child_dies_promptly)
{
	struct child c;
	run_child(segv_scenario, 10 * QC_SECOND, &c);
	ck_assert_msg(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGSEGV,
		      "status %#x:\n%s", c.status, c.out);
	/* The crash ends the wait: it never takes the guard. */
	ck_assert_msg(c.took < qcs_guard(5 * QC_SECOND), "took %lld ms",
		      (long long)(c.took / QC_MILLISECOND));
	fresh_harness_is_clean();
}
END_TEST

/* -------------------------------------------------------------- exit() */

static void exit_scenario(void)
{
	qc_h *h = qc_h_new(&fast);
	if (!h)
		_exit(100);
	if (qc_h_spawn(h, qc_h_ctx(h), "exiter", exiter, NULL) != 0)
		_exit(101);
	qc_h_cancel(h);
	(void)qc_h_expect_quiet(h, QC_SECOND);
	(void)qc_h_expect_quiet(h, QC_SECOND);
	_exit(102);
}

START_TEST(test_hostile_exit_ends_the_test)
{
	exit_scenario();
}
END_TEST

START_TEST(test_hostile_exit_in_a_child_is_prompt_and_clean)
{
	struct child c;
	run_child(exit_scenario, 10 * QC_SECOND, &c);
	/* exit() runs quiesce's atexit handlers while the test thread is
	 * inside the harness: they must neither hang nor crash. */
	ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 3,
		      "status %#x:\n%s", c.status, c.out);
	ck_assert_msg(c.took < qcs_guard(5 * QC_SECOND), "took %lld ms",
		      (long long)(c.took / QC_MILLISECOND));
	fresh_harness_is_clean();
}
END_TEST

/* ------------------------------------------------------------ spinning */

START_TEST(test_hostile_spin_ends_at_the_guard)
{
	qc_h *h = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h);
	struct spin s = {.stop = 0};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "spinner", spinner, &s), 0);
	qc_duration guard = GUARD * qc_h_time_multiplier();

	/* settle and advance give up at the guard too. */
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_h_settle(h), ETIMEDOUT);
	ck_assert_int_ge(qcs_now() - t0, guard);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), ETIMEDOUT);

	qc_h_cancel(h);
	t0 = qcs_now();
	int v = qc_h_expect_quiet(h, QC_HOUR);
	qc_duration took = qcs_now() - t0;
	const char *r = qc_h_report(h);
	ck_assert_int_eq(v, ETIMEDOUT);
	ck_assert_int_ge(took, guard);
	ck_assert_msg(took < stretch_cap(guard) + qcs_guard(3 * QC_SECOND),
		      "took %lld ms", (long long)(took / QC_MILLISECOND));
	ck_report_has(r, "quiesce: not quiet: 1 thread still alive after the");
	ck_report_has(r, "real-time guard");
	ck_report_has(r, "virtual time could not move");
	ck_report_has(r, "\"spinner\"");
	ck_report_has(r, "start routine spinner");
	ck_report_has(r, "state: running");
	ck_report_has(r, "hint: the thread is running (spinning?)");
	ck_report_has(r, "context: \"qc_h_ctx\"");
	ck_report_has(r, "ECANCELED");
	/* Virtual time stayed where it was: the bound never passed. */
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH);

	atomic_store(&s.stop, 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_HOUR), 0);
	ck_assert_int_gt(atomic_load(&s.turns), 0);
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* --------------------------------------------------- blocking syscalls */

START_TEST(test_hostile_blocked_read_ends_at_the_guard)
{
	qc_h *h = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h);
	struct pipe_block p = {.done = 0};
	ck_assert_int_eq(pipe(p.fds), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "reader", reader, &p), 0);
	qc_h_cancel(h);
	qc_duration guard = GUARD * qc_h_time_multiplier();
	qc_time t0 = qcs_now();
	int v = qc_h_expect_quiet(h, QC_HOUR);
	qc_duration took = qcs_now() - t0;
	const char *r = qc_h_report(h);
	ck_assert_int_eq(v, ETIMEDOUT);
	ck_assert_int_ge(took, guard);
	ck_assert_msg(took < stretch_cap(guard) + qcs_guard(3 * QC_SECOND),
		      "took %lld ms", (long long)(took / QC_MILLISECOND));
	char want[64];
	snprintf(want, sizeof want, "state: blocked in read(fd %d: pipe:[",
		 p.fds[0]);
	ck_report_has(r, want);
	ck_report_has(r, "\"reader\"");
	ck_report_has(r, "hint: a thread blocked in read() cannot see its "
			 "context");
	ck_report_has(r, "stack:");

	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_HOUR), 0);
	ck_assert(atomic_load(&p.done));
	close(p.fds[0]);
	close(p.fds[1]);
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_hostile_pause_ends_at_the_guard)
{
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	qc_h *h = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h);
	_Atomic pid_t tid = 0;
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "pauser", pauser, &tid), 0);
	qc_h_cancel(h);
	int v = qc_h_expect_quiet(h, QC_HOUR);
	const char *r = qc_h_report(h);
	ck_assert_int_eq(v, ETIMEDOUT);
	ck_report_has(r, "\"pauser\"");
	ck_report_has(r, "real-time guard");
	if (!qcs_on_valgrind()) {
		/* valgrind runs pause() as another system call. */
		ck_report_has(r, "state: blocked in pause");
		ck_report_has(r, "hint: a sleep outside quiesce cannot see "
				 "its context");
	}
	/* A signal ends the pause; keep sending until it has. */
	while (qc_h_expect_quiet(h, 0) != 0) {
		ck_assert_int_eq(syscall(SYS_tgkill, getpid(),
					 (int)atomic_load(&tid), SIGUSR1),
				 0);
	}
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
	sigaction(SIGUSR1, &old, NULL);
}
END_TEST

/* ------------------------------------------- abandoned, then a new test */

START_TEST(test_hostile_abandoned_survivors_are_left_over)
{
	qc_h *h1 = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h1);
	/* Two survivors the code under test made itself: one blocked in a
	 * system call, one spinning. */
	struct pipe_block p = {.done = 0};
	struct spin s = {.stop = 0};
	ck_assert_int_eq(pipe(p.fds), 0);
	pthread_t tr, ts;
	ck_assert_int_eq(qcs_thread_start(&tr, reader_thread, &p), 0);
	ck_assert_int_eq(qcs_thread_start(&ts, spinner_thread, &s), 0);
	qc_h_cancel(h1);
	ck_assert_int_eq(qc_h_expect_quiet(h1, QC_SECOND), ETIMEDOUT);
	ck_report_has(qc_h_report(h1), "2 threads still alive");
	ck_assert_int_eq(qc_h_free(h1), EBUSY);
	ck_assert_int_eq(qc_h_free(h1), EBUSY);

	/* The next test: a new harness, its own threads, a clean verdict. */
	qc_h *h2 = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h2);
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_h_settle(h2), 0); /* survivors are not waited */
	ck_assert_int_lt(qcs_now() - t0, qcs_guard(GUARD));
	qc_ctx *c = qc_with_cancel(qc_h_ctx(h2));
	ck_assert_int_eq(qc_h_spawn(h2, qc_h_ctx(h2), "waiter", ctx_waiter, c),
			 0);
	/* A failure of the new test names its own thread only. */
	ck_assert_int_eq(qc_h_expect_quiet(h2, QC_SECOND), EDEADLK);
	const char *r = qc_h_report(h2);
	ck_report_has(r, "1 thread still alive");
	ck_report_has(r, "\"waiter\"");
	ck_report_has(r, "(2 more threads left over from an earlier test, "
			 "not blamed)");
	qc_cancel(c);
	ck_assert_int_eq(qc_h_expect_quiet(h2, QC_SECOND), 0);
	qc_release(c);
	int n = qc_h_check_leaks(h2);
	ck_assert_msg(n == 0, "%d leaks:\n%s", n, qc_h_report(h2));
	ck_assert_int_eq(qc_h_free(h2), 0);

	/* Release the survivors; a third harness starts as clean. */
	atomic_store(&s.stop, 1);
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert(qcs_wait_for(flag_is_set, &p.done, 5 * QC_SECOND));
	ck_assert_int_eq(pthread_join(tr, NULL), 0);
	ck_assert_int_eq(pthread_join(ts, NULL), 0);
	close(p.fds[0]);
	close(p.fds[1]);
	fresh_harness_is_clean();
}
END_TEST

/* ------------------------------------------------------- closing fds */

static int fd_closer(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	/* Every fd above stderr: the harness's done fds, the symbolizer's
	 * files, whatever quiesce holds (valgrind keeps its own). */
	if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	return 0;
}

/* In a child process: a harness whose fds the code under test closes. */
static void closed_fds_scenario(void)
{
	/* A real-clock context made before the harness (else a wrong
	 * parent), and one of the harness's. */
	qc_ctx *rc = qc_with_cancel(qc_background());
	qc_h *h = qc_h_new(&fast);
	qc_ctx *c = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(c, "guarded");
	int fd = qc_done_fd(c), rfd = qc_done_fd(rc);
	if (!h || fd < 0 || rfd < 0)
		_exit(100);
	/* A failure report first: the symbolizer opens its files. */
	qc_ctx *w = qc_with_cancel(qc_h_ctx(h));
	qc_h_spawn(h, qc_h_ctx(h), "waiter", ctx_waiter, w);
	if (qc_h_expect_quiet(h, 0) != EDEADLK)
		_exit(101);
	qc_cancel(w);
	if (qc_h_expect_quiet(h, QC_SECOND) != 0)
		_exit(102);
	qc_release(w);

	qc_h_spawn(h, qc_h_ctx(h), "closer", fd_closer, NULL);
	printf("quiet: %d\n", qc_h_expect_quiet(h, QC_SECOND));
	/* A wait on a context whose done fd is gone ends, never spins. */
	struct pollfd none[1];
	errno = 0;
	int pr = qc_poll(rc, none, 0, QC_SECOND);
	printf("poll: %d %s\n", pr, pr < 0 ? strerror(errno) : "");
	/* Another report, with the symbolizer's files closed under it. */
	w = qc_with_cancel(qc_h_ctx(h));
	qc_h_spawn(h, qc_h_ctx(h), "waiter2", ctx_waiter, w);
	printf("second verdict: %d\n", qc_h_expect_quiet(h, 0));
	printf("report:\n%s\n", qc_h_report(h));
	qc_cancel(w);
	printf("quiet again: %d\n", qc_h_expect_quiet(h, QC_SECOND));
	qc_release(w);
	int n = qc_h_check_leaks(h);
	printf("leaks: %d\n%s\n", n, qc_h_report(h));
	qc_cancel(c);
	qc_release(c);
	qc_cancel(rc);
	qc_release(rc);
	printf("free: %d\n", qc_h_free(h));
	fflush(stdout);
	_exit(0);
}

START_TEST(test_hostile_closing_every_fd_is_survived)
{
	struct child c;
	run_child(closed_fds_scenario, 30 * QC_SECOND, &c);
	ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
		      "status %#x:\n%s", c.status, c.out);
	ck_report_has(c.out, "quiet: 0\n");
	ck_report_has(c.out, "poll: -1 Bad file descriptor\n");
	ck_report_has(c.out, "second verdict: 35\n"); /* EDEADLK */
	ck_report_has(c.out, "\"waiter2\"");
	ck_report_has(c.out, "parked in qc_wait");
	ck_report_has(c.out, "quiet again: 0\n");
	/* The closed done fds are named, with their contexts. */
	ck_report_has(c.out, "was closed by someone else");
	ck_report_has(c.out, "\"guarded\"");
	ck_report_has(c.out, "free: 0\n");
	fresh_harness_is_clean();
}
END_TEST

/* -------------------------------------------------------- 1,000 threads */

struct herd {
	qc_ctx *ctx;
	_Atomic int started;
};

static void *herd_member(void *arg)
{
	struct herd *hd = arg;
	atomic_fetch_add(&hd->started, 1);
	(void)qc_wait(hd->ctx);
	return NULL;
}

START_TEST(test_hostile_thousand_threads)
{
	/* valgrind runs at most 500 threads (--max-threads). */
	const int nthreads = qcs_on_valgrind() ? 300 : 1000;
	qc_h *h = qc_h_new(&fast);
	ck_assert_ptr_nonnull(h);
	size_t base = 0;
	ck_assert_int_eq(qc_census_count(0, &base), 0);
	struct herd hd = {.ctx = qc_with_cancel(qc_h_ctx(h))};
	qc_ctx_set_name(hd.ctx, "herd");
	pthread_t *ts = calloc((size_t)nthreads, sizeof *ts);
	ck_assert_ptr_nonnull(ts);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	/* The code under test: plain pthread_create, 1,000 times. */
	qc_time t0 = qcs_now();
	for (int i = 0; i < nthreads; i++)
		ck_assert_int_eq(pthread_create(&ts[i], &a, herd_member, &hd),
				 0);
	pthread_attr_destroy(&a);
	qc_duration create = qcs_now() - t0;

	/* Every one tracked and parked. */
	t0 = qcs_now();
	ck_assert_int_eq(qc_h_settle(h), 0);
	qc_duration settle = qcs_now() - t0;
	ck_assert_int_eq(atomic_load(&hd.started), nthreads);

	t0 = qcs_now();
	size_t now = 0;
	ck_assert_int_eq(qc_census_count(0, &now), 0);
	qc_duration census = qcs_now() - t0;
	ck_assert_uint_eq(now, base + (size_t)nthreads);

	/* The failure report stays bounded and quick. */
	t0 = qcs_now();
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), EDEADLK);
	qc_duration report = qcs_now() - t0;
	const char *r = qc_h_report(h);
	char want[64];
	snprintf(want, sizeof want,
		 "quiesce: not quiet: %d threads still alive", nthreads);
	ck_report_has(r, want);
	ck_report_has(r, "parked in qc_wait");
	ck_report_has(r, "start routine herd_member");
	ck_report_has(r, "in test_hostile_thousand_threads_fn(), by thread");
	size_t len = strlen(r);
	ck_assert_msg(len < 256 * 1024, "a %zu-byte report", len);
	ck_assert_msg(report < qcs_guard(10 * QC_SECOND), "report: %lld ms",
		      (long long)(report / QC_MILLISECOND));

	/* The leak check names every one, quickly too. */
	t0 = qcs_now();
	int found = qc_h_check_leaks(h);
	qc_duration leaks_alive = qcs_now() - t0;
	ck_assert_int_ge(found, nthreads);
	ck_report_has(qc_h_report(h), "still running");
	ck_assert_msg(leaks_alive < qcs_guard(10 * QC_SECOND),
		      "leak check: %lld ms",
		      (long long)(leaks_alive / QC_MILLISECOND));
	size_t leak_len = strlen(qc_h_report(h));

	/* Cancelled, all of them go; joined, nothing is left. */
	qc_h_cancel(h);
	t0 = qcs_now();
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_duration quiet = qcs_now() - t0;
	for (int i = 0; i < nthreads; i++)
		ck_assert_int_eq(pthread_join(ts[i], NULL), 0);
	free(ts);
	qc_release(hd.ctx);
	t0 = qcs_now();
	int n = qc_h_check_leaks(h);
	qc_duration leaks = qcs_now() - t0;
	ck_assert_msg(n == 0, "%d leaks:\n%s", n, qc_h_report(h));
	ck_assert_int_eq(qc_h_free(h), 0);
	fprintf(stderr,
		"check_hostile: %d threads: create %lld ms, settle %lld ms, "
		"census %lld us, report %lld ms (%zu bytes), leak check of "
		"them %lld ms (%zu bytes), quiet %lld ms, clean leak check "
		"%lld ms\n",
		nthreads, (long long)(create / QC_MILLISECOND),
		(long long)(settle / QC_MILLISECOND),
		(long long)(census / QC_MICROSECOND),
		(long long)(report / QC_MILLISECOND), len,
		(long long)(leaks_alive / QC_MILLISECOND), leak_len,
		(long long)(quiet / QC_MILLISECOND),
		(long long)(leaks / QC_MILLISECOND));
}
END_TEST

/* --------------------------------------------------------------- suite */

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	int m = qcs_multiplier();
	TCase *dies = tcase_create("dies");
	tcase_set_timeout(dies, 30 * m);
	tcase_add_test_raise_signal(dies, test_hostile_segv_kills_the_test,
				    SIGSEGV);
	tcase_add_test(dies, test_hostile_segv_in_a_child_dies_promptly);
	tcase_add_exit_test(dies, test_hostile_exit_ends_the_test, 3);
	tcase_add_test(dies, test_hostile_exit_in_a_child_is_prompt_and_clean);
	suite_add_tcase(s, dies);

	TCase *lives = tcase_create("survives");
	tcase_set_timeout(lives, 60 * m);
	tcase_add_test(lives, test_hostile_spin_ends_at_the_guard);
	tcase_add_test(lives, test_hostile_blocked_read_ends_at_the_guard);
	tcase_add_test(lives, test_hostile_pause_ends_at_the_guard);
	tcase_add_test(lives, test_hostile_abandoned_survivors_are_left_over);
	tcase_add_test(lives, test_hostile_closing_every_fd_is_survived);
	tcase_add_test(lives, test_hostile_thousand_threads);
	suite_add_tcase(s, lives);
	return s;
}

QC_CHECK_MAIN(hostile_suite)
