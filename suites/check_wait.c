/*
 * check_wait.c: qc_cond_*, qc_sleep*, qc_poll, qc_read and qc_write.
 *
 * The cancellation matrix runs every blocking call on the real clock and on
 * a virtual clock: done before the call, done during it, deadline zero /
 * finite / never, success, and many waiters torn down at once. A thread is
 * known to be blocked through what the library exposes (the virtual clock's
 * timer count for sleeps, qc_cond_waiters for conds); fd waits expose
 * nothing, so a short nap only makes "during" likely: the verdict is the
 * same either way.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>
#include <quiesce/harness.h>
#include <quiesce/wait.h>

#include "support.h"

enum { OP_SLEEP, OP_SLEEP_UNTIL, OP_COND, OP_POLL, OP_READ, OP_WRITE, NOPS };
static const char *const op_names[NOPS] = {"sleep", "sleep_until", "cond",
					   "poll",  "read",	   "write"};
#define MATRIX (2 * NOPS) /* loop index: op = i / 2, virtual clock = i % 2 */
#define MAXW   256

/* The world of one test: a clock, and the objects every op blocks on. */
static struct {
	qc_clock *vc;	 /* the virtual clock, or NULL on the real clock */
	qc_clock *clock; /* the clock in use */
	qc_ctx *root;	 /* its never-done root */
	size_t base_timers;
	qc_cond cv;
	pthread_mutex_t mu;
	int signalled; /* the cond's predicate (mu) */
	int rp[2];     /* an empty pipe: read/poll wait on rp[0] */
	int wp[2];     /* a full pipe: write waits on wp[1] */
	atomic_int entered;
} W;

static void world_open(bool virt)
{
	memset(&W, 0, sizeof W);
	if (virt) {
		W.vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
		ck_assert_ptr_nonnull(W.vc);
		W.clock = W.vc;
	} else {
		W.clock = qc_clock_real();
	}
	W.root = qc_clock_root(W.clock);
	ck_assert_int_eq(qc_cond_init(&W.cv), 0);
	pthread_mutex_init(&W.mu, NULL);
	ck_assert_int_eq(pipe2(W.rp, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(W.wp, O_CLOEXEC | O_NONBLOCK), 0);
	char buf[4096] = {0};
	while (write(W.wp[1], buf, sizeof buf) > 0)
		;
	ck_assert_int_eq(errno, EAGAIN);
	W.base_timers = qc_clock_timers(W.clock);
	signal(SIGPIPE, SIG_IGN);
}

static void world_close(void)
{
	ck_assert_int_eq(qc_cond_destroy(&W.cv), 0);
	pthread_mutex_destroy(&W.mu);
	close(W.rp[0]);
	close(W.rp[1]);
	close(W.wp[0]);
	close(W.wp[1]);
	if (W.vc) {
		ck_assert_uint_eq(qc_clock_timers(W.vc), 0);
		ck_assert_uint_eq(qc_clock_live_contexts(W.vc), 0);
		ck_assert_int_eq(qc_clock_free(W.vc), 0);
	}
}

/* Runs op once with ctx; a sleep lasts d. Returns 0 on success, else the
 * error (errno for the fd calls); -1000 for an unexpected outcome. */
static int op_call(int op, qc_ctx *ctx, qc_duration d)
{
	char c = 'x';
	struct pollfd p = {.fd = W.rp[0], .events = POLLIN};
	ssize_t r;
	int e = 0;
	switch (op) {
	case OP_SLEEP:
		return qc_sleep(ctx, d);
	case OP_SLEEP_UNTIL:
		return qc_sleep_until(ctx, qc_now(qc_ctx_clock(ctx)) + d);
	case OP_COND:
		pthread_mutex_lock(&W.mu);
		while (!W.signalled && e == 0)
			e = qc_cond_wait(ctx, &W.cv, &W.mu);
		pthread_mutex_unlock(&W.mu);
		return e;
	case OP_POLL:
		r = qc_poll(ctx, &p, 1, -1);
		return r == 1 && (p.revents & POLLIN) ? 0
		       : r < 0			      ? errno
						      : -1000;
	case OP_READ:
		r = qc_read(ctx, W.rp[0], &c, 1);
		return r == 1 ? 0 : r < 0 ? errno : -1000;
	default:
		r = qc_write(ctx, W.wp[1], &c, 1);
		return r == 1 ? 0 : r < 0 ? errno : -1000;
	}
}

/* Makes n blocked calls of op succeed (sleeps: moves a virtual clock by d;
 * a real one needs nothing). */
static void op_complete(int op, int n, qc_duration d)
{
	char buf[65536];
	switch (op) {
	case OP_SLEEP:
	case OP_SLEEP_UNTIL:
		if (W.vc)
			ck_assert_int_eq(qc_clock_advance(W.vc, d), 0);
		break;
	case OP_COND:
		pthread_mutex_lock(&W.mu);
		W.signalled = 1;
		qc_cond_broadcast(&W.cv);
		pthread_mutex_unlock(&W.mu);
		break;
	case OP_POLL:
	case OP_READ:
		memset(buf, 'y', (size_t)n);
		ck_assert_int_eq(write(W.rp[1], buf, (size_t)n), n);
		break;
	default:
		while (read(W.wp[0], buf, sizeof buf) > 0)
			;
		break;
	}
}

typedef struct waiter {
	pthread_t t;
	int op;
	qc_ctx *ctx;
	qc_duration d;
	int result;
	qc_time ended; /* raw real time at return */
	int done;
} waiter;

static waiter ws[MAXW];

static void *waiter_main(void *arg)
{
	waiter *w = arg;
	atomic_fetch_add(&W.entered, 1);
	w->result = op_call(w->op, w->ctx, w->d);
	w->ended = qcs_now();
	qcs_flag_raise(&w->done);
	return NULL;
}

static void start_waiters(int n, int op, qc_ctx *ctx, qc_duration d)
{
	W.base_timers = qc_clock_timers(W.clock); /* the ctx's own included */
	for (int i = 0; i < n; i++) {
		ws[i] = (waiter){.op = op, .ctx = ctx, .d = d};
		ck_assert_int_eq(
		    qcs_thread_start(&ws[i].t, waiter_main, &ws[i]), 0);
	}
}

typedef struct blocked_arg {
	int op, n;
} blocked_arg;

static bool blocked(void *arg)
{
	const blocked_arg *b = arg;
	if (atomic_load(&W.entered) < b->n)
		return false;
	switch (b->op) {
	case OP_SLEEP:
	case OP_SLEEP_UNTIL:
		return !W.vc ||
		       qc_clock_timers(W.vc) >= W.base_timers + (size_t)b->n;
	case OP_COND:
		return qc_cond_waiters(&W.cv) >= (size_t)b->n;
	default:
		return true;
	}
}

/* Waits until n waiters of op are observably blocked (or, where nothing
 * shows it, have entered the call and had a moment to block). */
static void wait_blocked(int op, int n)
{
	blocked_arg b = {op, n};
	ck_assert_msg(qcs_wait_for(blocked, &b, 5 * QC_SECOND),
		      "%d %s waiters never blocked", n, op_names[op]);
	bool observable =
	    op == OP_COND || ((op == OP_SLEEP || op == OP_SLEEP_UNTIL) && W.vc);
	if (!observable)
		qcs_nap(5 * QC_MILLISECOND);
}

static void join_waiters(int n, int want)
{
	for (int i = 0; i < n; i++) {
		ck_assert_msg(
		    qcs_join_within(ws[i].t, &ws[i].done, 5 * QC_SECOND),
		    "waiter %d never returned", i);
		ck_assert_int_eq(ws[i].result, want);
	}
}

static int many(void)
{
	return qcs_on_valgrind() ? 64 : MAXW;
}

/* ------------------------------------------------- the matrix (looped) */

START_TEST(test_wait_done_before_call)
{
	int op = _i / 2;
	world_open(_i % 2);
	qc_ctx *ctx = qc_with_cancel(W.root);
	ck_assert_int_eq(qc_cancel_cause(ctx, EIO), 0);
	/* The call could complete at once, yet the context comes first. */
	if (op != OP_COND)
		op_complete(op, 1, 0);
	qc_time t0 = qc_now(W.clock);
	ck_assert_int_eq(op_call(op, ctx, QC_HOUR), ECANCELED);
	if (W.vc)
		ck_assert_int_eq(qc_now(W.vc), t0);
	char c;
	if (op == OP_READ || op == OP_POLL) /* nothing read */
		ck_assert_int_eq(read(W.rp[0], &c, 1), 1);
	if (op == OP_WRITE) /* nothing written */
		ck_assert_int_eq(read(W.wp[0], &c, 1), -1);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_done_during_call)
{
	int op = _i / 2;
	world_open(_i % 2);
	qc_ctx *ctx =
	    W.vc ? qc_with_timeout(W.root, QC_SECOND) : qc_with_cancel(W.root);
	start_waiters(1, op, ctx, QC_HOUR);
	wait_blocked(op, 1);
	if (W.vc)
		ck_assert_int_eq(qc_clock_advance(W.vc, QC_SECOND), 0);
	else
		ck_assert_int_eq(qc_cancel(ctx), 0);
	join_waiters(1, W.vc ? ETIMEDOUT : ECANCELED);
	qc_cancel(ctx);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_deadline_zero)
{
	int op = _i / 2;
	world_open(_i % 2);
	qc_ctx *ctx = qc_with_timeout(W.root, 0);
	if (op != OP_COND)
		op_complete(op, 1, 0);
	ck_assert_int_eq(op_call(op, ctx, QC_HOUR), ETIMEDOUT);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_deadline_finite)
{
	int op = _i / 2;
	world_open(_i % 2);
	qc_duration dl = W.vc ? 5 * QC_SECOND : 30 * QC_MILLISECOND;
	qc_time t0 = qcs_now();
	qc_ctx *ctx = qc_with_timeout(W.root, dl);
	start_waiters(1, op, ctx, QC_HOUR);
	if (W.vc) {
		wait_blocked(op, 1);
		ck_assert_int_eq(qc_clock_advance(W.vc, dl - 1), 0);
		ck_assert_int_eq(qc_err(ctx), 0);
		ck_assert_int_eq(qc_clock_advance(W.vc, 1), 0);
	}
	join_waiters(1, ETIMEDOUT);
	if (!W.vc)
		ck_assert_int_ge(ws[0].ended - t0, dl);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_deadline_never_then_success)
{
	int op = _i / 2;
	world_open(_i % 2);
	qc_ctx *ctx = qc_with_cancel(W.root); /* no deadline */
	qc_duration d = W.vc ? QC_HOUR : 20 * QC_MILLISECOND;
	qc_time t0 = qcs_now();
	start_waiters(1, op, ctx, d);
	wait_blocked(op, 1);
	op_complete(op, 1, d);
	join_waiters(1, 0);
	if (!W.vc && (op == OP_SLEEP || op == OP_SLEEP_UNTIL))
		ck_assert_int_ge(ws[0].ended - t0, d);
	ck_assert_int_eq(qc_err(ctx), 0);
	qc_cancel(ctx);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_success_before_deadline)
{
	int op = _i / 2;
	world_open(_i % 2);
	qc_ctx *ctx = qc_with_timeout(W.root, 2 * QC_HOUR);
	qc_duration d = W.vc ? QC_HOUR : 20 * QC_MILLISECOND;
	start_waiters(1, op, ctx, d);
	wait_blocked(op, 1);
	op_complete(op, 1, d);
	join_waiters(1, 0);
	ck_assert_int_eq(qc_err(ctx), 0);
	/* The call also works on a never-done root (once ready). */
	if (op == OP_POLL || op == OP_WRITE)
		ck_assert_int_eq(op_call(op, W.root, 0), 0);
	qc_cancel(ctx);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_many_waiters_torn_down_at_once)
{
	int op = _i / 2, n = many();
	world_open(_i % 2);
	qc_ctx *ctx =
	    W.vc ? qc_with_timeout(W.root, QC_SECOND) : qc_with_cancel(W.root);
	start_waiters(n, op, ctx, QC_HOUR);
	wait_blocked(op, n);
	if (W.vc)
		ck_assert_int_eq(qc_clock_advance(W.vc, QC_SECOND), 0);
	else
		ck_assert_int_eq(qc_cancel(ctx), 0);
	join_waiters(n, W.vc ? ETIMEDOUT : ECANCELED);
	ck_assert_uint_eq(qc_cond_waiters(&W.cv), 0);
	qc_release(ctx);
	world_close();
}
END_TEST

/* ------------------------------------------------------- bad input */

START_TEST(test_wait_null_arguments)
{
	qc_cond cv, zero;
	memset(&zero, 0, sizeof zero);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	ck_assert_int_eq(qc_cond_init(NULL), EINVAL);
	ck_assert_int_eq(qc_cond_destroy(NULL), EINVAL);
	ck_assert_int_eq(qc_cond_destroy(&zero), EINVAL);
	ck_assert_int_eq(qc_cond_init(&cv), 0);
	ck_assert_int_eq(qc_cond_wait(NULL, &cv, &mu), EINVAL);
	ck_assert_int_eq(qc_cond_wait(qc_background(), NULL, &mu), EINVAL);
	ck_assert_int_eq(qc_cond_wait(qc_background(), &cv, NULL), EINVAL);
	ck_assert_int_eq(qc_cond_wait(qc_background(), &zero, &mu), EINVAL);
	qc_cond_signal(NULL);
	qc_cond_broadcast(NULL);
	qc_cond_signal(&zero);
	ck_assert_uint_eq(qc_cond_waiters(NULL), 0);
	ck_assert_int_eq(qc_cond_destroy(&cv), 0);
	ck_assert_int_eq(qc_cond_destroy(&cv), EINVAL); /* destroyed */

	ck_assert_int_eq(qc_sleep(NULL, 1), EINVAL);
	ck_assert_int_eq(qc_sleep_until(NULL, 1), EINVAL);
	struct pollfd p = {.fd = -1};
	errno = 0;
	ck_assert_int_eq(qc_poll(NULL, &p, 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(qc_poll(qc_background(), NULL, 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(qc_poll(qc_background(), NULL, 0, 0), 0);
	char c;
	errno = 0;
	ck_assert_int_eq(qc_read(NULL, 0, &c, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(qc_read(qc_background(), 0, NULL, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(qc_write(qc_background(), -1, &c, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(qc_write(NULL, 1, &c, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ------------------------------------------------------------ conds */

START_TEST(test_wait_cond_signal_wakes_oldest_first)
{
	world_open(false);
	qc_ctx *ctx = qc_with_cancel(W.root);
	/* Two waiters, queued one after the other: one signal wakes the
	 * first, and only it. */
	ws[0] = (waiter){.op = OP_COND, .ctx = ctx};
	ck_assert_int_eq(qcs_thread_start(&ws[0].t, waiter_main, &ws[0]), 0);
	wait_blocked(OP_COND, 1);
	ws[1] = (waiter){.op = OP_COND, .ctx = ctx};
	ck_assert_int_eq(qcs_thread_start(&ws[1].t, waiter_main, &ws[1]), 0);
	wait_blocked(OP_COND, 2);
	pthread_mutex_lock(&W.mu);
	W.signalled = 1;
	qc_cond_signal(&W.cv);
	pthread_mutex_unlock(&W.mu);
	ck_assert(qcs_join_within(ws[0].t, &ws[0].done, 5 * QC_SECOND));
	ck_assert_int_eq(ws[0].result, 0);
	ck_assert_uint_eq(qc_cond_waiters(&W.cv), 1);
	ck_assert_int_eq(__atomic_load_n(&ws[1].done, __ATOMIC_ACQUIRE), 0);
	qc_cancel(ctx);
	ck_assert(qcs_join_within(ws[1].t, &ws[1].done, 5 * QC_SECOND));
	ck_assert_int_eq(ws[1].result, ECANCELED); /* the signal was not its */
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_cond_destroy_with_waiters_is_ebusy)
{
	world_open(false);
	qc_ctx *ctx = qc_with_cancel(W.root);
	start_waiters(1, OP_COND, ctx, 0);
	wait_blocked(OP_COND, 1);
	ck_assert_int_eq(qc_cond_destroy(&W.cv), EBUSY);
	ck_assert_uint_eq(qc_cond_waiters(&W.cv), 1);
	qc_cancel(ctx);
	join_waiters(1, ECANCELED);
	qc_release(ctx);
	world_close(); /* destroys it: no waiter left */
}
END_TEST

START_TEST(test_wait_cond_wait_without_the_mutex_is_eperm)
{
	if (QCS_SANITIZED || qcs_thread_checked())
		return; /* TSan, helgrind and drd report the (deliberate) bad
			 * unlock themselves */
	qc_cond cv;
	pthread_mutex_t mu;
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&mu, &a);
	pthread_mutexattr_destroy(&a);
	ck_assert_int_eq(qc_cond_init(&cv), 0);
	qc_ctx *ctx = qc_with_cancel(qc_background());
	ck_assert_int_eq(qc_cond_wait(ctx, &cv, &mu), EPERM);
	ck_assert_uint_eq(qc_cond_waiters(&cv), 0);
	ck_assert_int_eq(qc_cond_destroy(&cv), 0);
	qc_cancel(ctx);
	qc_release(ctx);
	pthread_mutex_destroy(&mu);
}
END_TEST

/* Two waiters; one's context ends while a signal is sent. The signal is
 * never lost: either the cancelled one took it, or the other one did. */
START_TEST(test_wait_cond_signal_not_lost_to_a_cancelled_waiter)
{
	world_open(false);
	int rounds = qcs_slow() ? 30 : 300;
	for (int r = 0; r < rounds; r++) {
		qc_ctx *a = qc_with_cancel(W.root), *b = qc_with_cancel(W.root);
		W.signalled = 0;
		atomic_store(&W.entered, 0);
		start_waiters(1, OP_COND, a, 0);
		wait_blocked(OP_COND, 1);
		ws[1] = (waiter){.op = OP_COND, .ctx = b};
		ck_assert_int_eq(
		    qcs_thread_start(&ws[1].t, waiter_main, &ws[1]), 0);
		wait_blocked(OP_COND, 2);
		pthread_mutex_lock(&W.mu);
		W.signalled = 1;
		pthread_mutex_unlock(&W.mu);
		qc_cancel(a); /* races the signal below */
		qc_cond_signal(&W.cv);
		ck_assert(qcs_join_within(ws[0].t, &ws[0].done, 5 * QC_SECOND));
		if (ws[0].result == ECANCELED) {
			/* The signal must have gone to b. */
			ck_assert(qcs_join_within(ws[1].t, &ws[1].done,
						  5 * QC_SECOND));
			ck_assert_int_eq(ws[1].result, 0);
		} else {
			ck_assert_int_eq(ws[0].result, 0);
			qc_cancel(b);
			ck_assert(qcs_join_within(ws[1].t, &ws[1].done,
						  5 * QC_SECOND));
		}
		qc_cancel(b);
		qc_release(a);
		qc_release(b);
	}
	world_close();
}
END_TEST

/* ----------------------------------------------------------- sleeps */

START_TEST(test_wait_sleep_nonpositive_returns_at_once)
{
	qc_clock *vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
	qc_ctx *vroot = qc_clock_root(vc);
	ck_assert_int_eq(qc_sleep(vroot, 0), 0);
	ck_assert_int_eq(qc_sleep(vroot, -QC_HOUR), 0);
	ck_assert_int_eq(qc_sleep_until(vroot, QC_VIRTUAL_EPOCH), 0);
	ck_assert_int_eq(qc_sleep_until(vroot, 0), 0);
	ck_assert_int_eq(qc_sleep(qc_background(), 0), 0);
	ck_assert_int_eq(qc_sleep(qc_background(), -1), 0);
	qc_ctx *c = qc_with_cancel(vroot);
	qc_cancel(c);
	ck_assert_int_eq(qc_sleep(c, 0), ECANCELED);
	qc_release(c);
	ck_assert_uint_eq(qc_clock_timers(vc), 0);
	ck_assert_int_eq(qc_clock_free(vc), 0);
}
END_TEST

START_TEST(test_wait_real_sleep_lasts_at_least_its_time)
{
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_sleep(qc_background(), 20 * QC_MILLISECOND), 0);
	ck_assert_int_ge(qcs_now() - t0, 20 * QC_MILLISECOND);
	t0 = qcs_now();
	ck_assert_int_eq(
	    qc_sleep_until(qc_background(),
			   qc_now(qc_clock_real()) + 10 * QC_MILLISECOND),
	    0);
	ck_assert_int_ge(qcs_now() - t0, 10 * QC_MILLISECOND);
}
END_TEST

/* A 1-hour sleep on a virtual clock ends as soon as the clock passes it,
 * in no real time; prints the wake latency. */
START_TEST(test_wait_virtual_sleep_wakes_at_once)
{
	world_open(true);
	start_waiters(1, OP_SLEEP, W.root, QC_HOUR);
	wait_blocked(OP_SLEEP, 1);
	qc_time when;
	ck_assert_int_eq(qc_clock_next_timer(W.vc, &when), 0);
	ck_assert_int_eq(when, QC_VIRTUAL_EPOCH + QC_HOUR);
	ck_assert_int_eq(qc_clock_advance(W.vc, QC_HOUR - 1), 0);
	ck_assert_int_eq(__atomic_load_n(&ws[0].done, __ATOMIC_ACQUIRE), 0);
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_clock_advance(W.vc, 1), 0);
	join_waiters(1, 0);
	fprintf(stderr,
		"check_wait: 1-hour virtual sleep woke %.1f us after "
		"the clock passed it\n",
		(double)(ws[0].ended - t0) / 1e3);
	ck_assert_int_lt(ws[0].ended - t0, qcs_hang(QC_SECOND));
	world_close();
}
END_TEST

/* The deadline and the sleep end at the same virtual instant: the deadline
 * was armed first, so the context's error wins. */
START_TEST(test_wait_virtual_sleep_tie_goes_to_the_earlier_armed)
{
	world_open(true);
	qc_ctx *ctx = qc_with_timeout(W.root, QC_SECOND);
	start_waiters(1, OP_SLEEP, ctx, QC_SECOND);
	wait_blocked(OP_SLEEP, 1);
	ck_assert_int_eq(qc_clock_advance(W.vc, QC_HOUR), 0);
	join_waiters(1, ETIMEDOUT);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_sleep_until_never_ends_only_with_the_context)
{
	world_open(_i % 2);
	qc_ctx *ctx = qc_with_cancel(W.root);
	/* OP_SLEEP with d = QC_TIME_NEVER saturates to "never". */
	start_waiters(1, OP_SLEEP, ctx, QC_TIME_NEVER);
	wait_blocked(OP_READ, 1); /* entered, and a moment to block */
	if (W.vc) {
		ck_assert_int_eq(qc_clock_advance(W.vc, 1000 * QC_HOUR), 0);
		ck_assert_uint_eq(qc_clock_timers(W.vc), 0); /* no timer */
	}
	qc_cancel(ctx);
	join_waiters(1, ECANCELED);
	qc_release(ctx);
	world_close();
}
END_TEST

/* ------------------------------------------------------------ polls */

START_TEST(test_wait_poll_timeout_zero_and_ready_fds)
{
	world_open(_i % 2);
	qc_ctx *ctx = qc_with_cancel(W.root);
	struct pollfd p[2] = {{.fd = W.rp[0], .events = POLLIN},
			      {.fd = W.wp[1], .events = POLLOUT}};
	ck_assert_int_eq(qc_poll(ctx, p, 2, 0), 0);
	ck_assert_int_eq(p[0].revents, 0);
	ck_assert_int_eq(write(W.rp[1], "a", 1), 1);
	ck_assert_int_eq(qc_poll(ctx, p, 2, 0), 1);
	ck_assert(p[0].revents & POLLIN);
	ck_assert_int_eq(p[1].revents, 0);
	ck_assert_int_eq(qc_poll(ctx, p, 2, QC_HOUR), 1);
	/* Ready fds win over a done context in the same poll... */
	qc_cancel(ctx);
	/* ...but a context done at entry is checked first. */
	errno = 0;
	ck_assert_int_eq(qc_poll(ctx, p, 2, 0), -1);
	ck_assert_int_eq(errno, ECANCELED);
	qc_release(ctx);
	world_close();
}
END_TEST

START_TEST(test_wait_poll_real_timeout_lasts_at_least_its_time)
{
	world_open(false);
	struct pollfd p = {.fd = W.rp[0], .events = POLLIN};
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_poll(qc_background(), &p, 1, 20 * QC_MILLISECOND),
			 0);
	ck_assert_int_ge(qcs_now() - t0, 20 * QC_MILLISECOND);
	qc_ctx *ctx = qc_with_timeout(W.root, QC_HOUR);
	t0 = qcs_now();
	ck_assert_int_eq(qc_poll(ctx, &p, 1, 10 * QC_MILLISECOND), 0);
	ck_assert_int_ge(qcs_now() - t0, 10 * QC_MILLISECOND);
	ck_assert_int_eq(qc_poll(ctx, NULL, 0, QC_MILLISECOND), 0);
	qc_cancel(ctx);
	qc_release(ctx);
	world_close();
}
END_TEST

typedef struct poller {
	qc_ctx *ctx;
	qc_duration timeout;
	int r, err, done;
} poller;

static void *poller_main(void *arg)
{
	poller *p = arg;
	struct pollfd f = {.fd = W.rp[0], .events = POLLIN};
	p->r = qc_poll(p->ctx, &f, 1, p->timeout);
	p->err = errno;
	qcs_flag_raise(&p->done);
	return NULL;
}

static bool one_more_timer(void *arg)
{
	(void)arg;
	return qc_clock_timers(W.vc) > W.base_timers;
}

/* On a virtual clock a poll timeout is virtual time: it ends when the clock
 * is moved past it, never by itself. */
START_TEST(test_wait_poll_virtual_timeout_moves_with_the_clock)
{
	world_open(true);
	poller p = {.ctx = W.root, .timeout = 10 * QC_SECOND};
	pthread_t t;
	ck_assert_int_eq(qcs_thread_start(&t, poller_main, &p), 0);
	ck_assert(qcs_wait_for(one_more_timer, NULL, 5 * QC_SECOND));
	qc_time when;
	ck_assert_int_eq(qc_clock_next_timer(W.vc, &when), 0);
	ck_assert_int_eq(when, QC_VIRTUAL_EPOCH + 10 * QC_SECOND);
	qcs_nap(2 * QC_MILLISECOND);
	ck_assert_int_eq(__atomic_load_n(&p.done, __ATOMIC_ACQUIRE), 0);
	ck_assert_int_eq(qc_clock_advance(W.vc, 10 * QC_SECOND), 0);
	ck_assert(qcs_join_within(t, &p.done, 5 * QC_SECOND));
	ck_assert_int_eq(p.r, 0);
	ck_assert_uint_eq(qc_clock_timers(W.vc), 0);
	world_close();
}
END_TEST

START_TEST(test_wait_poll_many_fds)
{
	world_open(false);
	enum { N = 20 };
	int fds[N][2];
	struct pollfd p[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pipe2(fds[i], O_CLOEXEC), 0);
		p[i] = (struct pollfd){.fd = fds[i][0], .events = POLLIN};
	}
	ck_assert_int_eq(write(fds[13][1], "z", 1), 1);
	ck_assert_int_eq(write(fds[17][1], "z", 1), 1);
	qc_ctx *ctx = qc_with_cancel(W.root);
	ck_assert_int_eq(qc_poll(ctx, p, N, -1), 2);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(p[i].revents != 0, i == 13 || i == 17);
	for (int i = 0; i < N; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	qc_cancel(ctx);
	qc_release(ctx);
	world_close();
}
END_TEST

/* ------------------------------------------------------- read/write */

START_TEST(test_wait_read_and_write_transfer)
{
	world_open(false);
	qc_ctx *ctx = qc_with_timeout(W.root, QC_HOUR);
	ck_assert_int_eq(qc_write(ctx, W.rp[1], "hello", 5), 5);
	char buf[16];
	ck_assert_int_eq(qc_read(ctx, W.rp[0], buf, sizeof buf), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	close(W.rp[1]);
	ck_assert_int_eq(qc_read(ctx, W.rp[0], buf, sizeof buf), 0); /* EOF */
	W.rp[1] = dup(W.rp[0]);
	/* A closed read end: EPIPE (SIGPIPE is ignored). */
	char big[65536];
	while (read(W.wp[0], big, sizeof big) > 0)
		;
	int wr = dup(W.wp[1]);
	close(W.wp[0]);
	errno = 0;
	ck_assert_int_eq(qc_write(ctx, wr, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(wr);
	W.wp[0] = dup(W.rp[0]);
	/* A fd that is not open. */
	int dead = dup(0);
	close(dead);
	errno = 0;
	ck_assert_int_eq(qc_read(ctx, dead, buf, 1), -1);
	ck_assert_int_eq(errno, EBADF);
	qc_cancel(ctx);
	qc_release(ctx);
	world_close();
}
END_TEST

/* ----------------------------------------------------- in a harness */

static int h_sleeper(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_sleep(ctx, QC_HOUR);
}

static int h_cond_waiter(qc_ctx *ctx, void *arg)
{
	qc_cond *cv = arg;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	qc_ctx *t = qc_with_timeout(ctx, 5 * QC_SECOND);
	pthread_mutex_lock(&mu);
	int e = qc_cond_wait(t, cv, &mu);
	pthread_mutex_unlock(&mu);
	qc_release(t);
	return e;
}

/* Inside a harness, sleeps and cond waits park their threads: with every
 * thread parked, virtual time jumps to the next timer at once. */
START_TEST(test_wait_sleeps_and_cond_waits_park_in_a_harness)
{
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	qc_clock *c = qc_h_clock(h);
	qc_time start = qc_now(c);
	qc_cond cv;
	ck_assert_int_eq(qc_cond_init(&cv), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "sleeper", h_sleeper, NULL),
			 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "cond", h_cond_waiter, &cv),
			 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, 2 * QC_HOUR), 0);
	int r = -1;
	ck_assert_int_eq(qc_h_result(h, "sleeper", &r), 0);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(qc_h_result(h, "cond", &r), 0);
	ck_assert_int_eq(r, ETIMEDOUT);
	ck_assert_int_ge(qc_now(c) - start, QC_HOUR);
	/* The test thread itself: a 1-hour sleep returns at once. */
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_sleep(qc_h_ctx(h), QC_HOUR), 0);
	ck_assert_int_lt(qcs_now() - t0, qcs_hang(QC_SECOND));
	ck_assert_int_ge(qc_now(c) - start, 2 * QC_HOUR);
	ck_assert_int_eq(qc_cond_destroy(&cv), 0);
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static Suite *wait_suite(void)
{
	Suite *s = suite_create("wait");
	TCase *m = tcase_create("matrix");
	tcase_set_timeout(m, 60);
	tcase_add_loop_test(m, test_wait_done_before_call, 0, MATRIX);
	tcase_add_loop_test(m, test_wait_done_during_call, 0, MATRIX);
	tcase_add_loop_test(m, test_wait_deadline_zero, 0, MATRIX);
	tcase_add_loop_test(m, test_wait_deadline_finite, 0, MATRIX);
	tcase_add_loop_test(m, test_wait_deadline_never_then_success, 0,
			    MATRIX);
	tcase_add_loop_test(m, test_wait_success_before_deadline, 0, MATRIX);
	tcase_add_loop_test(m, test_wait_many_waiters_torn_down_at_once, 0,
			    MATRIX);
	suite_add_tcase(s, m);

	TCase *tc = tcase_create("calls");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_wait_null_arguments);
	tcase_add_test(tc, test_wait_cond_signal_wakes_oldest_first);
	tcase_add_test(tc, test_wait_cond_destroy_with_waiters_is_ebusy);
	tcase_add_test(tc, test_wait_cond_wait_without_the_mutex_is_eperm);
	tcase_add_test(tc,
		       test_wait_cond_signal_not_lost_to_a_cancelled_waiter);
	tcase_add_test(tc, test_wait_sleep_nonpositive_returns_at_once);
	tcase_add_test(tc, test_wait_real_sleep_lasts_at_least_its_time);
	tcase_add_test(tc, test_wait_virtual_sleep_wakes_at_once);
	tcase_add_test(tc,
		       test_wait_virtual_sleep_tie_goes_to_the_earlier_armed);
	tcase_add_loop_test(
	    tc, test_wait_sleep_until_never_ends_only_with_the_context, 0, 2);
	tcase_add_loop_test(tc, test_wait_poll_timeout_zero_and_ready_fds, 0,
			    2);
	tcase_add_test(tc, test_wait_poll_real_timeout_lasts_at_least_its_time);
	tcase_add_test(tc, test_wait_poll_virtual_timeout_moves_with_the_clock);
	tcase_add_test(tc, test_wait_poll_many_fds);
	tcase_add_test(tc, test_wait_read_and_write_transfer);
	suite_add_tcase(s, tc);

	TCase *hb = tcase_create("harness");
	tcase_set_timeout(hb, 60);
	tcase_add_test(hb, test_wait_sleeps_and_cond_waits_park_in_a_harness);
	suite_add_tcase(s, hb);
	return s;
}

int main(void)
{
	return qcs_run(wait_suite());
}
