/*
 * check_group.c: errgroups: the first error wins and cancels the siblings,
 * limits hold, wait joins everything, and misuse is refused.
 *
 * Functions block on their group's context or on channels, so every test
 * decides when they return; no verdict depends on real time.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <quiesce/chan.h>
#include <quiesce/clock.h>
#include <quiesce/ctx.h>
#include <quiesce/group.h>
#include <quiesce/harness.h>
#include <quiesce/wait.h>

#include "alloc.h"
#include "support.h"

static atomic_int started, finished, current, max_seen, saw_done;

static void counters_reset(void)
{
	atomic_store(&started, 0);
	atomic_store(&finished, 0);
	atomic_store(&current, 0);
	atomic_store(&max_seen, 0);
	atomic_store(&saw_done, 0);
}

static void enter(void)
{
	atomic_fetch_add(&started, 1);
	int c = atomic_fetch_add(&current, 1) + 1;
	int m = atomic_load(&max_seen);
	while (c > m && !atomic_compare_exchange_weak(&max_seen, &m, c))
		;
}

static int leave(int r)
{
	atomic_fetch_sub(&current, 1);
	atomic_fetch_add(&finished, 1);
	return r;
}

/* Waits for the group's context, then returns arg (an error or 0). */
static int wait_ctx_fn(qc_ctx *ctx, void *arg)
{
	enter();
	int e = qc_wait(ctx);
	if (e == ECANCELED || e == ETIMEDOUT)
		atomic_fetch_add(&saw_done, 1);
	return leave((int)(intptr_t)arg);
}

static int fail_fn(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	enter();
	return leave((int)(intptr_t)arg);
}

/* Takes one token from the channel arg (or sees the context end). */
static int token_fn(qc_ctx *ctx, void *arg)
{
	enter();
	int e = qc_chan_recv(ctx, arg, NULL);
	return leave(e == EPIPE ? 0 : e);
}

static bool count_is(void *arg)
{
	int *want = arg;
	return atomic_load(&started) >= want[0];
}

typedef struct timers_arg {
	qc_clock *c;
	size_t n;
} timers_arg;

static bool timers_armed(void *arg)
{
	const timers_arg *t = arg;
	return qc_clock_timers(t->c) >= t->n;
}

static void wait_timers(qc_clock *c, size_t n)
{
	timers_arg t = {c, n};
	ck_assert_msg(qcs_wait_for(timers_armed, &t, 5 * QC_SECOND),
		      "%zu timers never armed", n);
}

static void wait_started(int n)
{
	ck_assert_msg(qcs_wait_for(count_is, &n, 5 * QC_SECOND),
		      "%d functions never started", n);
}

/* ------------------------------------------------------------ tests */

START_TEST(test_group_bad_input)
{
	errno = 0;
	ck_assert_ptr_null(qc_group_new(NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(qc_group_ctx(NULL));
	ck_assert_int_eq(qc_group_set_limit(NULL, 1), EINVAL);
	ck_assert_int_eq(qc_group_go(NULL, "x", fail_fn, NULL), EINVAL);
	ck_assert_int_eq(qc_group_wait(NULL), EINVAL);
	ck_assert_int_eq(qc_group_free(NULL), 0);
	qc_group *g = qc_group_new(qc_background());
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(qc_group_go(g, "x", NULL, NULL), EINVAL);
	/* Never started: free works without wait, and releases the ctx. */
	ck_assert_int_eq(qc_group_free(g), 0);
}
END_TEST

START_TEST(test_group_new_out_of_memory_sweep)
{
	qc_clock *vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
	qc_ctx *root = qc_clock_root(vc);
	bool made = false;
	for (long n = 0; n < 10 && !made; n++) {
		qc__alloc_fail_after(n);
		errno = 0;
		qc_group *g = qc_group_new(root);
		int e = errno;
		qc__alloc_fail_after(-1);
		if (g) {
			made = true;
			ck_assert_int_eq(qc_group_free(g), 0);
		} else {
			ck_assert_int_eq(e, ENOMEM);
		}
		ck_assert_uint_eq(qc_clock_live_contexts(vc), 0);
	}
	ck_assert(made);
	ck_assert_int_eq(qc_clock_free(vc), 0);
}
END_TEST

/* One function fails at once; its siblings wait on the context, see it
 * done, and return later errors that must not win. */
START_TEST(test_group_first_error_wins_and_cancels_siblings)
{
	counters_reset();
	qc_ctx *parent = qc_with_cancel(qc_background());
	qc_group *g = qc_group_new(parent);
	qc_ctx *gctx = qc_group_ctx(g);
	ck_assert_int_eq(
	    qc_group_go(g, "sib-1", wait_ctx_fn, (void *)(intptr_t)EPERM), 0);
	ck_assert_int_eq(
	    qc_group_go(g, "sib-2", wait_ctx_fn, (void *)(intptr_t)EAGAIN), 0);
	wait_started(2);
	ck_assert_int_eq(
	    qc_group_go(g, "failer", fail_fn, (void *)(intptr_t)EIO), 0);
	ck_assert_int_eq(qc_group_wait(g), EIO);
	ck_assert_int_eq(atomic_load(&saw_done), 2);
	ck_assert_int_eq(atomic_load(&finished), 3);
	ck_assert_int_eq(qc_err(gctx), ECANCELED);
	ck_assert_int_eq(qc_cause(gctx), EIO);
	ck_assert_int_eq(qc_err(parent), 0);	 /* the parent is not touched */
	ck_assert_int_eq(qc_group_wait(g), EIO); /* again: the same */
	ck_assert_int_eq(qc_group_free(g), 0);
	qc_cancel(parent);
	qc_release(parent);
}
END_TEST

/* Functions that all return 0: wait returns 0 after every one exited, and
 * cancels the context. */
START_TEST(test_group_wait_returns_after_all_exited)
{
	counters_reset();
	qc_chan *tokens = qc_chan_new(1, 0);
	qc_group *g = qc_group_new(qc_background());
	enum { N = 8 };
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(qc_group_go(g, NULL, token_fn, tokens), 0);
	wait_started(N);
	qc_chan_close(tokens); /* everyone's recv ends with EPIPE -> 0 */
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&finished), N);
	ck_assert_int_eq(atomic_load(&current), 0);
	ck_assert_int_eq(qc_err(qc_group_ctx(g)), ECANCELED);
	ck_assert_int_eq(qc_group_go(g, "late", fail_fn, NULL), EINVAL);
	ck_assert_int_eq(qc_group_set_limit(g, 2), EBUSY);
	ck_assert_int_eq(qc_group_free(g), 0);
	ck_assert_int_eq(qc_chan_free(tokens), 0);
	/* An empty group: wait returns 0 at once. */
	g = qc_group_new(qc_background());
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(qc_group_go(g, "late", fail_fn, NULL), EINVAL);
	ck_assert_int_eq(qc_group_free(g), 0);
}
END_TEST

START_TEST(test_group_free_before_wait_is_ebusy)
{
	counters_reset();
	qc_group *g = qc_group_new(qc_background());
	ck_assert_int_eq(qc_group_go(g, "w", wait_ctx_fn, NULL), 0);
	ck_assert_int_eq(qc_group_free(g), EBUSY);
	ck_assert_int_eq(qc_group_set_limit(g, 1), EBUSY);
	qc_cancel(qc_group_ctx(g));
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(qc_group_free(g), 0);
}
END_TEST

typedef struct goer {
	qc_group *g;
	void *arg;
	int result;
	int done;
} goer;

static void *go_main(void *arg)
{
	goer *x = arg;
	x->result = qc_group_go(x->g, "third", token_fn, x->arg);
	qcs_flag_raise(&x->done);
	return NULL;
}

/* Under a limit of 2, a third go waits for a slot, and no more than 2
 * functions ever run at once. */
START_TEST(test_group_limit_is_respected)
{
	counters_reset();
	qc_chan *tokens = qc_chan_new(1, 0);
	qc_group *g = qc_group_new(qc_background());
	ck_assert_int_eq(qc_group_set_limit(g, 2), 0);
	ck_assert_int_eq(qc_group_go(g, "a", token_fn, tokens), 0);
	ck_assert_int_eq(qc_group_go(g, "b", token_fn, tokens), 0);
	wait_started(2);
	goer x = {.g = g, .arg = tokens};
	pthread_t t;
	ck_assert_int_eq(qcs_thread_start(&t, go_main, &x), 0);
	qcs_nap(2 * QC_MILLISECOND); /* only makes a wrong early start likely */
	ck_assert_int_eq(__atomic_load_n(&x.done, __ATOMIC_ACQUIRE), 0);
	ck_assert_int_eq(atomic_load(&started), 2);
	char tok = 1;
	ck_assert_int_eq(qc_chan_send(qc_background(), tokens, &tok), 0);
	ck_assert(qcs_join_within(t, &x.done, 5 * QC_SECOND));
	ck_assert_int_eq(x.result, 0);
	wait_started(3);
	/* Many more, in a burst: the maximum stays at the limit. */
	int more = qcs_slow() ? 10 : 40;
	for (int i = 0; i < more; i++) {
		ck_assert_int_eq(qc_chan_send(qc_background(), tokens, &tok),
				 0);
		ck_assert_int_eq(qc_group_go(g, "burst", token_fn, tokens), 0);
	}
	qc_chan_close(tokens);
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&finished), 3 + more);
	ck_assert_int_le(atomic_load(&max_seen), 2);
	ck_assert_int_eq(atomic_load(&max_seen), 2);
	ck_assert_int_eq(qc_group_free(g), 0);
	ck_assert_int_eq(qc_chan_free(tokens), 0);
}
END_TEST

/* A function that starts siblings from inside the group, while the test
 * thread is already in qc_group_wait: wait still joins them all. */
static qc_group *nest_g;
static atomic_int nest_failures; /* no Check assertion off the test thread */

static int spawner_fn(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	enter();
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++)
		if (qc_group_go(nest_g, "child", fail_fn, NULL) != 0)
			atomic_fetch_add(&nest_failures, 1);
	return leave(0);
}

START_TEST(test_group_go_from_inside_the_group)
{
	counters_reset();
	nest_g = qc_group_new(qc_background());
	ck_assert_int_eq(
	    qc_group_go(nest_g, "spawner", spawner_fn, (void *)(intptr_t)10),
	    0);
	ck_assert_int_eq(qc_group_wait(nest_g), 0);
	ck_assert_int_eq(atomic_load(&nest_failures), 0);
	ck_assert_int_eq(atomic_load(&finished), 11);
	ck_assert_int_eq(qc_group_free(nest_g), 0);
}
END_TEST

/* The cancellation matrix for a group's functions and its wait, on the
 * real clock and a virtual one (loop index 0 real, 1 virtual). */
START_TEST(test_group_parent_done_before_new)
{
	counters_reset();
	qc_clock *vc = _i ? qc_clock_virtual_new(QC_VIRTUAL_EPOCH) : NULL;
	qc_ctx *root = vc ? qc_clock_root(vc) : qc_background();
	qc_ctx *parent = qc_with_cancel(root);
	qc_cancel_cause(parent, EIO);
	qc_group *g = qc_group_new(parent);
	ck_assert_int_eq(qc_err(qc_group_ctx(g)), ECANCELED);
	ck_assert_int_eq(qc_group_go(g, "w", wait_ctx_fn, NULL), 0);
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&saw_done), 1);
	ck_assert_int_eq(qc_group_free(g), 0);
	qc_release(parent);
	ck_assert_int_eq(qc_clock_free(vc), 0);
}
END_TEST

START_TEST(test_group_parent_done_during_wait)
{
	counters_reset();
	qc_clock *vc = _i ? qc_clock_virtual_new(QC_VIRTUAL_EPOCH) : NULL;
	qc_ctx *root = vc ? qc_clock_root(vc) : qc_background();
	qc_ctx *parent =
	    vc ? qc_with_timeout(root, QC_SECOND) : qc_with_cancel(root);
	qc_group *g = qc_group_new(parent);
	int n = qcs_on_valgrind() ? 64 : 256;
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(qc_group_go(g, "w", wait_ctx_fn, NULL), 0);
	wait_started(n);
	if (vc)
		ck_assert_int_eq(qc_clock_advance(vc, QC_SECOND), 0);
	else
		qc_cancel(parent);
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&saw_done), n);
	ck_assert_int_eq(qc_err(qc_group_ctx(g)), vc ? ETIMEDOUT : ECANCELED);
	ck_assert_int_eq(qc_group_free(g), 0);
	qc_release(parent);
	ck_assert_int_eq(qc_clock_free(vc), 0);
}
END_TEST

/* Functions sleeping on the group's context: a zero deadline ends them at
 * once, a finite one when it passes, and with no deadline they succeed. */
static int sleep_fn(qc_ctx *ctx, void *arg)
{
	enter();
	return leave(qc_sleep(ctx, (qc_duration)(intptr_t)arg));
}

START_TEST(test_group_deadlines_zero_finite_never)
{
	counters_reset();
	qc_clock *vc = _i ? qc_clock_virtual_new(QC_VIRTUAL_EPOCH) : NULL;
	qc_ctx *root = vc ? qc_clock_root(vc) : qc_background();
	/* zero */
	qc_ctx *p = qc_with_timeout(root, 0);
	qc_group *g = qc_group_new(p);
	ck_assert_int_eq(
	    qc_group_go(g, "z", sleep_fn, (void *)(intptr_t)QC_HOUR), 0);
	ck_assert_int_eq(qc_group_wait(g), ETIMEDOUT);
	ck_assert_int_eq(qc_group_free(g), 0);
	qc_release(p);
	/* finite */
	qc_duration dl = vc ? QC_MINUTE : 20 * QC_MILLISECOND;
	qc_time t0 = qcs_now();
	p = qc_with_timeout(root, dl);
	g = qc_group_new(p);
	ck_assert_int_eq(
	    qc_group_go(g, "f", sleep_fn, (void *)(intptr_t)QC_HOUR), 0);
	if (vc) {
		wait_started(2);
		/* The sleeper's timer beside the deadline's. */
		wait_timers(vc, 2);
		ck_assert_int_eq(qc_clock_advance(vc, dl), 0);
	}
	ck_assert_int_eq(qc_group_wait(g), ETIMEDOUT);
	if (!vc)
		ck_assert_int_ge(qcs_now() - t0, dl);
	ck_assert_int_eq(qc_cause(qc_group_ctx(g)), ETIMEDOUT);
	ck_assert_int_eq(qc_group_free(g), 0);
	qc_release(p);
	/* never: the sleep ends by itself, with success */
	p = qc_with_cancel(root);
	g = qc_group_new(p);
	qc_duration d = vc ? QC_HOUR : 5 * QC_MILLISECOND;
	ck_assert_int_eq(qc_group_go(g, "n", sleep_fn, (void *)(intptr_t)d), 0);
	if (vc) {
		wait_started(3);
		wait_timers(vc, 1);
		ck_assert_int_eq(qc_clock_advance(vc, d), 0);
	}
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(qc_group_free(g), 0);
	qc_cancel(p);
	qc_release(p);
	ck_assert_int_eq(qc_clock_free(vc), 0);
}
END_TEST

/* Inside a harness, the test thread parks in qc_group_go (waiting for a
 * slot) and in qc_group_wait, and the functions park in their sleeps: the
 * clock jumps from one sleep's end to the next. */
START_TEST(test_group_go_and_wait_park_in_a_harness)
{
	counters_reset();
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	qc_clock *c = qc_h_clock(h);
	qc_time start = qc_now(c);
	qc_group *g = qc_group_new(qc_h_ctx(h));
	ck_assert_int_eq(qc_group_set_limit(g, 1), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(qc_group_go(g, "sleeper", sleep_fn,
					     (void *)(intptr_t)QC_HOUR),
				 0);
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(qc_now(c) - start, 3 * QC_HOUR);
	ck_assert_int_eq(atomic_load(&max_seen), 1);
	ck_assert_int_eq(qc_group_free(g), 0);
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static Suite *group_suite(void)
{
	Suite *s = suite_create("group");
	TCase *tc = tcase_create("errgroup");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_group_bad_input);
	tcase_add_test(tc, test_group_new_out_of_memory_sweep);
	tcase_add_test(tc, test_group_first_error_wins_and_cancels_siblings);
	tcase_add_test(tc, test_group_wait_returns_after_all_exited);
	tcase_add_test(tc, test_group_free_before_wait_is_ebusy);
	tcase_add_test(tc, test_group_limit_is_respected);
	tcase_add_test(tc, test_group_go_from_inside_the_group);
	tcase_add_loop_test(tc, test_group_parent_done_before_new, 0, 2);
	tcase_add_loop_test(tc, test_group_parent_done_during_wait, 0, 2);
	tcase_add_loop_test(tc, test_group_deadlines_zero_finite_never, 0, 2);
	suite_add_tcase(s, tc);

	TCase *hb = tcase_create("harness");
	tcase_set_timeout(hb, 60);
	tcase_add_test(hb, test_group_go_and_wait_park_in_a_harness);
	suite_add_tcase(s, hb);
	return s;
}

int main(void)
{
	return qcs_run(group_suite());
}
