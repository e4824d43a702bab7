/*
 * check_ctx.c: contexts, ported from the properties Go's context tests
 * check, on real and virtual clocks.
 */
/* quiesce-suite: static */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>

#include "alloc.h"
#include "internal.h"

#include "support.h"

static qc_clock *vc;
static qc_ctx *vroot;

static void setup(void)
{
	vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
	ck_assert_ptr_nonnull(vc);
	vroot = qc_clock_root(vc);
}

static void teardown(void)
{
	ck_assert_int_eq(qc_clock_live_contexts(vc), 0);
	ck_assert_int_eq(qc_clock_free(vc), 0);
}

static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* ------------------------------------------------------------ roots */

START_TEST(test_ctx_background_is_never_done)
{
	qc_ctx *bg = qc_background();
	ck_assert_ptr_nonnull(bg);
	ck_assert_ptr_eq(bg, qc_background());
	ck_assert_int_eq(qc_err(bg), 0);
	ck_assert_int_eq(qc_cause(bg), 0);
	ck_assert(!qc_deadline(bg, NULL));
	ck_assert_int_eq(qc_cancel(bg), EINVAL);
	ck_assert_int_eq(qc_wait(bg), EINVAL);
	errno = 0;
	ck_assert_int_eq(qc_done_fd(bg), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_eq(qc_ctx_clock(bg), qc_clock_real());
	qc_release(bg); /* a no-op on roots */
	ck_assert_ptr_eq(qc_retain(bg), bg);
}
END_TEST

START_TEST(test_ctx_clock_root_is_one_borrowed_pointer)
{
	ck_assert_ptr_eq(qc_clock_root(vc), vroot);
	ck_assert_ptr_eq(qc_ctx_clock(vroot), vc);
	ck_assert_int_eq(qc_cancel(vroot), EINVAL);
	ck_assert_int_eq(qc_err(vroot), 0);
	errno = 0;
	ck_assert_ptr_null(qc_clock_root(NULL));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_ctx_null_arguments)
{
	errno = 0;
	ck_assert_ptr_null(qc_with_cancel(NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(qc_with_timeout(NULL, QC_SECOND));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(qc_with_deadline(NULL, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(qc_with_value(NULL, &errno, NULL));
	ck_assert_ptr_null(qc_without_cancel(NULL));
	ck_assert_int_eq(qc_cancel(NULL), EINVAL);
	ck_assert_int_eq(qc_err(NULL), EINVAL);
	ck_assert_int_eq((qc_err)(NULL), EINVAL);
	ck_assert_int_eq(qc_cause(NULL), EINVAL);
	ck_assert_int_eq(qc_wait(NULL), EINVAL);
	ck_assert(!qc_deadline(NULL, NULL));
	ck_assert_ptr_null(qc_value(NULL, &errno));
	ck_assert_ptr_null(qc_ctx_clock(NULL));
	ck_assert_ptr_null(qc_retain(NULL));
	ck_assert_int_eq(qc_done_fd(NULL), -1);
	ck_assert_ptr_null(qc_after_func(NULL, free, NULL));
	ck_assert_ptr_null(qc_after_func(vroot, NULL, NULL));
	ck_assert(!qc_after_stop(NULL));
	qc_release(NULL);
	qc_ctx_set_name(NULL, "x");
	qc_ctx_dump(NULL, stdout);
}
END_TEST

/* ------------------------------------------------------------ cancel */

START_TEST(test_ctx_with_cancel)
{
	qc_ctx *c = qc_with_cancel(vroot);
	ck_assert_int_eq(qc_err(c), 0);
	ck_assert_int_eq(qc_cause(c), 0);
	int fd = qc_done_fd(c);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(qc_done_fd(c), fd);
	ck_assert(!fd_readable(fd));
	ck_assert_int_eq(qc_cancel(c), 0);
	ck_assert_int_eq(qc_err(c), ECANCELED);
	ck_assert_int_eq((qc_err)(c), ECANCELED);
	ck_assert_int_eq(qc_cause(c), ECANCELED);
	ck_assert(fd_readable(fd));
	ck_assert_int_eq(qc_cancel(c), 0); /* again: nothing changes */
	ck_assert_int_eq(qc_wait(c), ECANCELED);
	qc_release(c);
}
END_TEST

START_TEST(test_ctx_parent_cancel_reaches_grandchild_through_every_layer)
{
	qc_ctx *p = qc_with_cancel(vroot);
	qc_ctx *c1 = qc_with_cancel(p);
	qc_ctx *c2 = qc_with_timeout(c1, QC_HOUR);
	qc_ctx *c3 = qc_with_value(c2, &errno, NULL);
	qc_ctx *g = qc_with_cancel(c3);
	qc_ctx *wc = qc_without_cancel(c3);
	qc_ctx *under_wc = qc_with_cancel(wc);
	int gfd = qc_done_fd(g);
	ck_assert_int_eq(qc_cancel_cause(p, EPIPE), 0);
	qc_ctx *all[] = {p, c1, c2, c3, g};
	for (size_t i = 0; i < 5; i++) {
		ck_assert_int_eq(qc_err(all[i]), ECANCELED);
		ck_assert_int_eq(qc_cause(all[i]), EPIPE);
	}
	ck_assert(fd_readable(gfd));
	ck_assert_int_eq(qc_err(wc), 0);
	ck_assert_int_eq(qc_err(under_wc), 0);
	/* The timeout's timer was disarmed by the cancel. */
	ck_assert_int_eq(qc_clock_timers(vc), 0);
	qc_cancel(under_wc);
	for (size_t i = 0; i < 5; i++)
		qc_release(all[i]);
	qc_release(under_wc);
	qc_release(wc);
}
END_TEST

START_TEST(test_ctx_child_finishes_first_and_leaves_its_parent)
{
	qc_ctx *p = qc_with_cancel(vroot);
	qc_ctx *c = qc_with_cancel(p);
	ck_assert_ptr_eq(p->child, c);
	ck_assert_int_eq(qc_cancel(c), 0);
	ck_assert_int_eq(qc_err(c), ECANCELED);
	ck_assert_int_eq(qc_err(p), 0);
	ck_assert_ptr_null(p->child); /* removed at once */
	qc_release(c);
	qc_release(p);
}
END_TEST

START_TEST(test_ctx_churn_on_a_live_parent_does_not_grow)
{
	long n = RUNNING_ON_VALGRIND ? 20000 : 1000000;
	qc_ctx *p = qc_with_cancel(qc_background());
	size_t before = mallinfo2().uordblks;
	for (long i = 0; i < n; i++) {
		qc_ctx *c = qc_with_cancel(p);
		qc_cancel(c);
		qc_release(c);
	}
	size_t after = mallinfo2().uordblks;
	ck_assert_ptr_null(p->child);
	ck_assert_uint_le(after, before + 4096);
	ck_assert_int_eq(p->refs, 1);
	qc_cancel(p);
	qc_release(p);
}
END_TEST

START_TEST(test_ctx_derived_from_done_parent_is_born_done)
{
	qc_ctx *p = qc_with_cancel(vroot);
	qc_cancel_cause(p, ENOLINK);
	qc_ctx *c = qc_with_cancel(p), *t = qc_with_timeout(p, QC_HOUR);
	qc_ctx *v = qc_with_value(p, &errno, NULL);
	ck_assert_int_eq(qc_err(c), ECANCELED);
	ck_assert_int_eq(qc_cause(c), ENOLINK);
	ck_assert_int_eq(qc_err(t), ECANCELED);
	ck_assert_int_eq(qc_err(v), ECANCELED);
	ck_assert_int_eq(qc_clock_timers(vc), 0);
	qc_release(c);
	qc_release(t);
	qc_release(v);
	qc_release(p);
}
END_TEST

/* --------------------------------------------------------- deadlines */

START_TEST(test_ctx_deadline_fires_exactly_at_its_time)
{
	qc_time start = qc_now(vc);
	qc_ctx *c = qc_with_deadline(vroot, start + QC_SECOND);
	qc_time d;
	ck_assert(qc_deadline(c, &d));
	ck_assert_int_eq(d, start + QC_SECOND);
	qc_clock_advance(vc, QC_SECOND - 1);
	ck_assert_int_eq(qc_err(c), 0);
	qc_clock_advance(vc, 1);
	ck_assert_int_eq(qc_err(c), ETIMEDOUT);
	ck_assert_int_eq(qc_cause(c), ETIMEDOUT);
	ck_assert_int_eq(qc_wait(c), ETIMEDOUT);
	qc_release(c);
}
END_TEST

START_TEST(test_ctx_child_deadline_is_the_earlier)
{
	qc_time now = qc_now(vc);
	qc_ctx *p = qc_with_timeout(vroot, 5 * QC_SECOND);
	qc_ctx *late = qc_with_timeout(p, QC_MINUTE);
	qc_ctx *early = qc_with_timeout(p, QC_SECOND);
	qc_time d;
	ck_assert(qc_deadline(late, &d));
	ck_assert_int_eq(d, now + 5 * QC_SECOND);
	ck_assert(qc_deadline(early, &d));
	ck_assert_int_eq(d, now + QC_SECOND);
	ck_assert_int_eq(qc_clock_timers(vc), 2); /* late needs none */
	qc_clock_advance(vc, QC_SECOND);
	ck_assert_int_eq(qc_err(early), ETIMEDOUT);
	ck_assert_int_eq(qc_err(p), 0);
	qc_clock_advance(vc, 4 * QC_SECOND);
	ck_assert_int_eq(qc_err(p), ETIMEDOUT);
	ck_assert_int_eq(qc_err(late), ETIMEDOUT);
	qc_release(late);
	qc_release(early);
	qc_release(p);
}
END_TEST

START_TEST(test_ctx_zero_negative_or_past_timeout_is_born_done)
{
	qc_ctx *z = qc_with_timeout(vroot, 0);
	qc_ctx *n = qc_with_timeout(vroot, -QC_SECOND);
	qc_ctx *past = qc_with_deadline(vroot, qc_now(vc) - 1);
	qc_ctx *now = qc_with_deadline(vroot, qc_now(vc));
	qc_ctx *all[] = {z, n, past, now};
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_nonnull(all[i]);
		ck_assert_int_eq(qc_err(all[i]), ETIMEDOUT);
		ck_assert_int_ge(qc_done_fd(all[i]), 0);
		ck_assert(fd_readable(qc_done_fd(all[i])));
		qc_release(all[i]);
	}
	ck_assert_int_eq(qc_clock_timers(vc), 0);
}
END_TEST

START_TEST(test_ctx_overflowing_deadline_saturates)
{
	qc_ctx *c = qc_with_timeout(vroot, INT64_MAX);
	qc_time d;
	ck_assert(qc_deadline(c, &d));
	ck_assert_int_eq(d, QC_TIME_NEVER);
	ck_assert_int_eq(qc_err(c), 0);
	qc_cancel(c);
	qc_release(c);
}
END_TEST

START_TEST(test_ctx_cancelled_timeout_stays_canceled)
{
	qc_ctx *c = qc_with_timeout(vroot, QC_SECOND);
	ck_assert_int_eq(qc_clock_timers(vc), 1);
	qc_cancel(c);
	qc_time t;
	ck_assert_int_eq(qc_clock_next_timer(vc, &t), ENOENT);
	qc_clock_advance(vc, QC_HOUR);
	ck_assert_int_eq(qc_err(c), ECANCELED);
	qc_release(c);
}
END_TEST

START_TEST(test_ctx_final_release_disarms_timer)
{
	qc_ctx *c = qc_with_timeout(vroot, QC_SECOND);
	ck_assert_int_eq(qc_clock_timers(vc), 1);
	qc_release(c);
	ck_assert_int_eq(qc_clock_timers(vc), 0);
}
END_TEST

START_TEST(test_ctx_released_parent_still_times_out_its_child)
{
	qc_ctx *p = qc_with_timeout(vroot, QC_SECOND);
	qc_ctx *c = qc_with_cancel(p);
	qc_release(p); /* the child keeps it alive */
	ck_assert_int_eq(qc_clock_live_contexts(vc), 2);
	qc_clock_advance(vc, QC_SECOND);
	ck_assert_int_eq(qc_err(c), ETIMEDOUT);
	qc_release(c);
	ck_assert_int_eq(qc_clock_live_contexts(vc), 0);
}
END_TEST

START_TEST(test_ctx_real_clock_timeout_fires)
{
	qc_ctx *c = qc_with_timeout(qc_background(), QC_MILLISECOND);
	ck_assert_int_eq(qc_wait(c), ETIMEDOUT);
	qc_ctx *h = qc_with_timeout(qc_background(), QC_HOUR);
	ck_assert_int_eq(qc_err(h), 0);
	qc_cancel(h);
	qc_release(h);
	qc_release(c);
}
END_TEST

/* ------------------------------------------------------------ values */

static const int key_a = 1, key_b = 1; /* equal contents, distinct keys */

START_TEST(test_ctx_values_walk_shadow_and_compare_keys_by_address)
{
	int va = 10, vb = 20, va2 = 30;
	qc_ctx *a = qc_with_value(vroot, &key_a, &va);
	qc_ctx *c = qc_with_cancel(a);
	qc_ctx *b = qc_with_value(c, &key_b, &vb);
	qc_ctx *shadow = qc_with_value(b, &key_a, &va2);
	ck_assert_ptr_eq(qc_value(b, &key_a), &va);
	ck_assert_ptr_eq(qc_value(b, &key_b), &vb);
	ck_assert_ptr_eq(qc_value(a, &key_b), NULL);
	ck_assert_ptr_eq(qc_value(shadow, &key_a), &va2);
	ck_assert_ptr_null(qc_value(shadow, &vb));
	ck_assert_int_eq(qc_cancel(a), EINVAL); /* no cancel of its own */
	ck_assert_int_eq(qc_done_fd(a), -1);	/* over a root: never done */
	ck_assert_int_eq(qc_done_fd(b), qc_done_fd(c)); /* shared */
	qc_cancel(c);
	ck_assert_int_eq(qc_err(b), ECANCELED);
	ck_assert_int_eq(qc_err(shadow), ECANCELED);
	ck_assert_int_eq(qc_err(a), 0);
	ck_assert_ptr_eq(qc_value(shadow, &key_b), &vb); /* still readable */
	qc_release(shadow);
	qc_release(b);
	qc_release(c);
	qc_release(a);
}
END_TEST

START_TEST(test_ctx_without_cancel_keeps_values_drops_cancel_and_deadline)
{
	int v = 7;
	qc_ctx *val = qc_with_value(vroot, &key_a, &v);
	qc_ctx *p = qc_with_timeout(val, QC_SECOND);
	qc_ctx *w = qc_without_cancel(p);
	ck_assert(!qc_deadline(w, NULL));
	ck_assert_ptr_eq(qc_value(w, &key_a), &v);
	ck_assert_int_eq(qc_cancel(w), EINVAL);
	ck_assert_int_eq(qc_wait(w), EINVAL);
	qc_clock_advance(vc, QC_SECOND);
	ck_assert_int_eq(qc_err(p), ETIMEDOUT);
	ck_assert_int_eq(qc_err(w), 0);
	qc_ctx *wd = qc_without_cancel(p); /* of a done parent: not done */
	ck_assert_int_eq(qc_err(wd), 0);
	qc_release(wd);
	qc_release(w);
	qc_release(p);
	qc_release(val);
}
END_TEST

/* ------------------------------------------------------------- cause */

START_TEST(test_ctx_first_cancel_wins_cause_included)
{
	qc_ctx *c = qc_with_timeout(vroot, QC_SECOND);
	ck_assert_int_eq(qc_cancel_cause(c, EPIPE), 0);
	ck_assert_int_eq(qc_cancel_cause(c, ENOENT), 0);
	qc_clock_advance(vc, QC_HOUR);
	ck_assert_int_eq(qc_err(c), ECANCELED);
	ck_assert_int_eq(qc_cause(c), EPIPE);
	qc_ctx *d = qc_with_cancel(vroot);
	ck_assert_int_eq(qc_cancel_cause(d, 0), 0);
	ck_assert_int_eq(qc_cause(d), ECANCELED);
	qc_release(c);
	qc_release(d);
}
END_TEST

/* ----------------------------------------------------- after-functions */

static int calls[8];
static int call_order[8], ncalls;
static pthread_t call_thread[8];

static void after_record(void *arg)
{
	int i = (int)(intptr_t)arg;
	calls[i]++;
	call_order[ncalls++] = i;
	call_thread[i] = pthread_self();
}

static void reset_calls(void)
{
	memset(calls, 0, sizeof calls);
	ncalls = 0;
}

START_TEST(test_ctx_after_func_runs_once_in_registration_order)
{
	reset_calls();
	qc_ctx *c = qc_with_cancel(vroot);
	qc_after *a[3];
	for (int i = 0; i < 3; i++)
		a[i] = qc_after_func(c, after_record, (void *)(intptr_t)i);
	ck_assert(qc_after_stop(a[1]));
	ck_assert(!qc_after_stop(a[1])); /* second stop: false */
	ck_assert_int_eq(ncalls, 0);
	qc_cancel(c);
	qc_cancel(c);
	ck_assert_int_eq(ncalls, 2);
	ck_assert_int_eq(call_order[0], 0);
	ck_assert_int_eq(call_order[1], 2);
	ck_assert_int_eq(calls[1], 0);
	ck_assert(!qc_after_stop(a[0])); /* already ran */
	/* On a done context: runs before returning. */
	qc_after *late = qc_after_func(c, after_record, (void *)(intptr_t)3);
	ck_assert_ptr_nonnull(late);
	ck_assert_int_eq(calls[3], 1);
	ck_assert(!qc_after_stop(late));
	qc_release(c);
}
END_TEST

START_TEST(test_ctx_after_func_on_never_done_context_can_be_stopped)
{
	reset_calls();
	qc_after *a = qc_after_func(vroot, after_record, (void *)(intptr_t)0);
	ck_assert_ptr_nonnull(a);
	ck_assert(qc_after_stop(a));
	ck_assert_int_eq(ncalls, 0);
}
END_TEST

static qc_clock *advancer_clock;

static void *advance_from_thread(void *arg)
{
	(void)arg;
	qc_clock_advance(advancer_clock, QC_HOUR);
	return NULL;
}

START_TEST(test_ctx_after_func_runs_on_the_thread_that_made_it_done)
{
	reset_calls();
	qc_ctx *c = qc_with_timeout(vroot, QC_MINUTE);
	qc_after_func(c, after_record, (void *)(intptr_t)0);
	advancer_clock = vc;
	pthread_t t;
	pthread_create(&t, NULL, advance_from_thread, NULL);
	pthread_join(t, NULL);
	ck_assert_int_eq(calls[0], 1);
	ck_assert(pthread_equal(call_thread[0], t));
	qc_release(c);
}
END_TEST

static qc_ctx *victim;

static void cancel_victim(void *arg)
{
	(void)arg;
	qc_cancel(victim);
	qc_release(victim); /* after-functions may release anything */
}

START_TEST(test_ctx_after_func_may_cancel_and_release_other_trees)
{
	qc_ctx *c = qc_with_cancel(vroot);
	victim = qc_with_cancel(vroot);
	qc_ctx *vchild = qc_with_cancel(victim);
	qc_after_func(c, cancel_victim, NULL);
	qc_cancel(c);
	ck_assert_int_eq(qc_err(vchild), ECANCELED);
	qc_release(vchild);
	qc_release(c);
}
END_TEST

/* ------------------------------------------------------- concurrency */

#define RACERS 8

static struct race {
	qc_ctx *target;
	pthread_barrier_t go;
	_Atomic int after_runs;
} race;

static void count_after(void *arg)
{
	(void)arg;
	atomic_fetch_add(&race.after_runs, 1);
}

static void *cancel_racer(void *arg)
{
	pthread_barrier_wait(&race.go);
	qc_cancel_cause(race.target, (int)(intptr_t)arg);
	return NULL;
}

START_TEST(test_ctx_simultaneous_cancels_agree)
{
	for (int round = 0; round < 50; round++) {
		race.target = qc_with_cancel(qc_background());
		qc_ctx *kids[16];
		for (int i = 0; i < 16; i++)
			kids[i] = qc_with_cancel(race.target);
		atomic_store(&race.after_runs, 0);
		for (int i = 0; i < 4; i++)
			qc_after_func(race.target, count_after, NULL);
		pthread_barrier_init(&race.go, NULL, RACERS);
		pthread_t t[RACERS];
		for (int i = 0; i < RACERS; i++)
			pthread_create(&t[i], NULL, cancel_racer,
				       (void *)(intptr_t)(100 + i));
		for (int i = 0; i < RACERS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&race.go);
		int cause = qc_cause(race.target);
		ck_assert_int_ge(cause, 100);
		for (int i = 0; i < 16; i++) {
			ck_assert_int_eq(qc_cause(kids[i]), cause);
			qc_release(kids[i]);
		}
		ck_assert_int_eq(atomic_load(&race.after_runs), 4);
		qc_release(race.target);
	}
}
END_TEST

/* Go's TestInterlockedCancels: cancelling one tree from the after-function
 * of another, from several threads at once, never deadlocks. */
static qc_ctx *ring[4];

static void cancel_next(void *arg)
{
	qc_cancel(ring[((intptr_t)arg + 1) % 4]);
}

static void *cancel_one(void *arg)
{
	qc_cancel(ring[(intptr_t)arg]);
	return NULL;
}

START_TEST(test_ctx_interlocked_cancels)
{
	for (int round = 0; round < 100; round++) {
		for (intptr_t i = 0; i < 4; i++)
			ring[i] = qc_with_cancel(qc_background());
		for (intptr_t i = 0; i < 4; i++)
			qc_after_func(ring[i], cancel_next, (void *)i);
		pthread_t t[4];
		for (intptr_t i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, cancel_one, (void *)i);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < 4; i++) {
			ck_assert_int_eq(qc_err(ring[i]), ECANCELED);
			qc_release(ring[i]);
		}
	}
}
END_TEST

static void *wait_thread(void *arg)
{
	return (void *)(intptr_t)qc_wait(arg);
}

START_TEST(test_ctx_wait_returns_on_cancel_from_another_thread)
{
	qc_ctx *c = qc_with_cancel(qc_background());
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, wait_thread, c);
	qc_cancel(c);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		ck_assert_int_eq((int)(intptr_t)r, ECANCELED);
	}
	qc_release(c);
}
END_TEST

/* Random layered trees: after random cancels, a node is done exactly when
 * it or an ancestor below the nearest without_cancel was cancelled. */
START_TEST(test_ctx_layered_random_trees)
{
	enum { N = 300 };
	unsigned seed = 12345;
	for (int round = 0; round < 20; round++) {
		qc_ctx *node[N];
		int parent[N], kind[N];
		bool cancelled[N];
		for (int i = 0; i < N; i++) {
			parent[i] = i == 0 ? -1 : rand_r(&seed) % i;
			kind[i] = i == 0 ? 0 : rand_r(&seed) % 4;
			cancelled[i] = false;
			qc_ctx *p = i == 0 ? vroot : node[parent[i]];
			switch (kind[i]) {
			case 0:
				node[i] = qc_with_cancel(p);
				break;
			case 1:
				node[i] = qc_with_timeout(p, QC_HOUR);
				break;
			case 2:
				node[i] = qc_with_value(p, &key_a, NULL);
				break;
			default:
				node[i] = qc_without_cancel(p);
			}
		}
		for (int k = 0; k < N / 10; k++) {
			int i = rand_r(&seed) % N;
			int e = qc_cancel(node[i]);
			if (kind[i] <= 1) {
				ck_assert_int_eq(e, 0);
				cancelled[i] = true;
			} else {
				ck_assert_int_eq(e, EINVAL);
			}
		}
		for (int i = 0; i < N; i++) {
			bool want = false;
			for (int j = i; j >= 0; j = parent[j]) {
				if (cancelled[j]) {
					want = true;
					break;
				}
				if (kind[j] == 3)
					break;
			}
			ck_assert_int_eq(qc_err(node[i]) != 0, want);
		}
		for (int i = N - 1; i >= 0; i--) {
			qc_cancel(node[i]);
			qc_release(node[i]);
		}
		ck_assert_int_eq(qc_clock_timers(vc), 0);
	}
}
END_TEST

/* ---------------------------------------------------------- lifetime */

START_TEST(test_ctx_retain_and_release_count_user_references)
{
	qc_ctx *c = qc_with_cancel(vroot);
	ck_assert_ptr_eq(qc_retain(c), c);
	qc_release(c);
	ck_assert_int_eq(qc_clock_live_contexts(vc), 1);
	qc_release(c);
	ck_assert_int_eq(qc_clock_live_contexts(vc), 0);
}
END_TEST

START_TEST(test_ctx_double_release_aborts_naming_the_site)
{
	qc_ctx *p = qc_with_cancel(vroot);
	qc_ctx *c = qc_with_cancel(p); /* keeps p allocated */
	qc_release(p);
	qc_release(p); /* aborts: "double qc_release of a context created at" */
	(void)c;
}
END_TEST

START_TEST(test_ctx_defer_cancels_and_releases_at_scope_exit)
{
	qc_ctx *p = qc_with_cancel(vroot);
	qc_ctx *seen;
	{
		QC_DEFER qc_ctx *c = qc_with_timeout(p, QC_SECOND);
		seen = c;
		ck_assert_int_eq(qc_clock_live_contexts(vc), 2);
	}
	(void)seen;
	ck_assert_int_eq(qc_clock_live_contexts(vc), 1);
	ck_assert_int_eq(qc_clock_timers(vc), 0);
	ck_assert_ptr_null(p->child);
	qc_release(p);
}
END_TEST

START_TEST(test_ctx_names_sites_and_dump)
{
	qc_ctx *req = qc_with_timeout(vroot, 5 * QC_SECOND);
	qc_ctx_set_name(req, "request");
	qc_ctx *db = qc_with_cancel(req);
	qc_ctx_set_name(db, "db");
	ck_assert_str_eq(qc_ctx_name(req), "request");
	const qc_site *s = qc_ctx_site(db);
	ck_assert_ptr_nonnull(s);
	ck_assert(strstr(s->file, "check_ctx.c"));
	ck_assert(strstr(s->func, "test_ctx_names_sites_and_dump"));
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	qc_ctx_dump(req, f);
	fclose(f);
	ck_assert_msg(strstr(text, "\"request\" (deadline, deadline in 5s"),
		      "%s", text);
	ck_assert_msg(
	    strstr(text, "\n  \"db\" (cancel, deadline in 5s, created at "),
	    "%s", text);
	ck_assert_msg(strstr(text, "not done"), "%s", text);
	free(text);
	qc_ctx_set_name(db, NULL);
	ck_assert_ptr_null(qc_ctx_name(db));
	qc_cancel(req);
	qc_release(db);
	qc_release(req);
}
END_TEST

/* Every constructor fails cleanly when any of its allocations fails:
 * ENOMEM, no context or timer left behind. */
START_TEST(test_ctx_oom_sweep_every_constructor)
{
	int v = 1;
	for (int which = 0; which < 6; which++) {
		for (long n = 0;; n++) {
			qc_ctx *p = qc_with_cancel(vroot);
			qc_ctx_set_name(p, "p");
			qc__alloc_fail_after(n);
			qc_ctx *c = NULL;
			qc_after *a = NULL;
			switch (which) {
			case 0:
				c = qc_with_cancel(p);
				break;
			case 1:
				c = qc_with_timeout(p, QC_SECOND);
				break;
			case 2:
				c = qc_with_deadline(p, QC_TIME_NEVER - 1);
				break;
			case 3:
				c = qc_with_value(p, &key_a, &v);
				break;
			case 4:
				c = qc_without_cancel(p);
				break;
			default:
				a = qc_after_func(p, free, NULL);
				break;
			}
			int err = errno;
			qc__alloc_fail_after(-1);
			bool ok = which == 5 ? a != NULL : c != NULL;
			if (!ok) {
				ck_assert_int_eq(err, ENOMEM);
				ck_assert_int_eq(qc_clock_live_contexts(vc), 1);
				ck_assert_int_eq(qc_clock_timers(vc), 0);
				ck_assert_ptr_null(p->child);
			}
			if (a)
				qc_after_stop(a);
			qc_cancel(c);
			qc_release(c);
			qc_cancel(p);
			qc_release(p);
			if (ok)
				break;
			ck_assert_int_lt(n, 10);
		}
	}
}
END_TEST

static Suite *ctx_suite(void)
{
	Suite *s = suite_create("ctx");
	TCase *tc = tcase_create("go");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ctx_background_is_never_done);
	tcase_add_test(tc, test_ctx_clock_root_is_one_borrowed_pointer);
	tcase_add_test(tc, test_ctx_null_arguments);
	tcase_add_test(tc, test_ctx_with_cancel);
	tcase_add_test(
	    tc, test_ctx_parent_cancel_reaches_grandchild_through_every_layer);
	tcase_add_test(tc, test_ctx_child_finishes_first_and_leaves_its_parent);
	tcase_add_test(tc, test_ctx_churn_on_a_live_parent_does_not_grow);
	tcase_add_test(tc, test_ctx_derived_from_done_parent_is_born_done);
	tcase_add_test(tc, test_ctx_deadline_fires_exactly_at_its_time);
	tcase_add_test(tc, test_ctx_child_deadline_is_the_earlier);
	tcase_add_test(tc, test_ctx_zero_negative_or_past_timeout_is_born_done);
	tcase_add_test(tc, test_ctx_overflowing_deadline_saturates);
	tcase_add_test(tc, test_ctx_cancelled_timeout_stays_canceled);
	tcase_add_test(tc, test_ctx_final_release_disarms_timer);
	tcase_add_test(tc, test_ctx_released_parent_still_times_out_its_child);
	tcase_add_test(tc, test_ctx_real_clock_timeout_fires);
	tcase_add_test(tc,
		       test_ctx_values_walk_shadow_and_compare_keys_by_address);
	tcase_add_test(
	    tc, test_ctx_without_cancel_keeps_values_drops_cancel_and_deadline);
	tcase_add_test(tc, test_ctx_first_cancel_wins_cause_included);
	tcase_add_test(tc, test_ctx_after_func_runs_once_in_registration_order);
	tcase_add_test(
	    tc, test_ctx_after_func_on_never_done_context_can_be_stopped);
	tcase_add_test(
	    tc, test_ctx_after_func_runs_on_the_thread_that_made_it_done);
	tcase_add_test(tc,
		       test_ctx_after_func_may_cancel_and_release_other_trees);
	tcase_add_test(tc, test_ctx_simultaneous_cancels_agree);
	tcase_add_test(tc, test_ctx_interlocked_cancels);
	tcase_add_test(tc, test_ctx_wait_returns_on_cancel_from_another_thread);
	tcase_add_test(tc, test_ctx_layered_random_trees);
	tcase_add_test(tc, test_ctx_retain_and_release_count_user_references);
	tcase_add_test_raise_signal(
	    tc, test_ctx_double_release_aborts_naming_the_site, SIGABRT);
	tcase_add_test(tc, test_ctx_defer_cancels_and_releases_at_scope_exit);
	tcase_add_test(tc, test_ctx_names_sites_and_dump);
	tcase_add_test(tc, test_ctx_oom_sweep_every_constructor);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return qcs_run(ctx_suite());
}
