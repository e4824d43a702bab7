/*
 * check_clock.c: real and virtual clocks, and their timers.
 */
/* quiesce-suite: static */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>

#include "alloc.h"

#include "support.h"

static qc_clock *vc;

static void setup(void)
{
	vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
	ck_assert_ptr_nonnull(vc);
}

static void teardown(void)
{
	ck_assert_int_eq(qc_clock_free(vc), 0);
}

START_TEST(test_clock_virtual_starts_exactly_at_start)
{
	qc_clock *c = qc_clock_virtual_new(12345);
	ck_assert_int_eq(qc_now(c), 12345);
	ck_assert(qc_clock_is_virtual(c));
	ck_assert_int_eq(qc_clock_free(c), 0);
}
END_TEST

START_TEST(test_clock_advance_and_set_move_forward_only)
{
	ck_assert_int_eq(qc_clock_advance(vc, QC_HOUR), 0);
	ck_assert_int_eq(qc_now(vc), QC_VIRTUAL_EPOCH + QC_HOUR);
	ck_assert_int_eq(qc_clock_advance(vc, 0), 0);
	ck_assert_int_eq(qc_clock_advance(vc, -1), EINVAL);
	ck_assert_int_eq(qc_clock_set(vc, QC_VIRTUAL_EPOCH), EINVAL);
	ck_assert_int_eq(qc_clock_set(vc, QC_VIRTUAL_EPOCH + 2 * QC_HOUR), 0);
	ck_assert_int_eq(qc_now(vc), QC_VIRTUAL_EPOCH + 2 * QC_HOUR);
}
END_TEST

START_TEST(test_clock_bad_input_is_einval)
{
	ck_assert_int_eq(qc_clock_advance(NULL, 1), EINVAL);
	ck_assert_int_eq(qc_clock_set(NULL, 1), EINVAL);
	ck_assert_int_eq(qc_clock_advance(qc_clock_real(), 1), EINVAL);
	ck_assert_int_eq(qc_clock_set(qc_clock_real(), QC_TIME_NEVER), EINVAL);
	ck_assert_int_eq(qc_clock_free(qc_clock_real()), EINVAL);
	ck_assert_int_eq(qc_clock_free(NULL), 0);
	qc_time t;
	ck_assert_int_eq(qc_clock_next_timer(NULL, &t), EINVAL);
	ck_assert_int_eq(qc_clock_next_timer(vc, NULL), EINVAL);
	ck_assert_int_eq(qc_now(NULL), 0);
	ck_assert(!qc_clock_is_virtual(qc_clock_real()));
}
END_TEST

START_TEST(test_clock_real_is_monotonic)
{
	qc_clock *r = qc_clock_real();
	ck_assert_ptr_eq(r, qc_clock_real());
	qc_time a = qc_now(r), b = qc_now(r);
	ck_assert_int_ge(b, a);
}
END_TEST

/* Records the order and virtual time at which timers fire. */
static struct firing {
	int order[16];
	qc_time at[16];
	int n;
} fired;

static void record(void *arg)
{
	fired.order[fired.n] = (int)(intptr_t)arg;
	fired.at[fired.n++] = qc_now(vc);
}

START_TEST(test_clock_timers_fire_in_deadline_then_arming_order)
{
	qc_ctx *root = qc_clock_root(vc);
	qc_ctx *c[4];
	qc_time base = qc_now(vc);
	/* Deadlines +3s, +1s, +1s, +2s: fire order 1, 2, 3, 0. */
	qc_duration d[4] = {3 * QC_SECOND, QC_SECOND, QC_SECOND, 2 * QC_SECOND};
	fired.n = 0;
	for (int i = 0; i < 4; i++) {
		c[i] = qc_with_timeout(root, d[i]);
		ck_assert_ptr_nonnull(
		    qc_after_func(c[i], record, (void *)(intptr_t)i));
	}
	qc_time next;
	ck_assert_int_eq(qc_clock_next_timer(vc, &next), 0);
	ck_assert_int_eq(next, base + QC_SECOND);
	ck_assert_int_eq(qc_clock_timers(vc), 4);
	ck_assert_int_eq(qc_clock_advance(vc, QC_MINUTE), 0);
	ck_assert_int_eq(fired.n, 4);
	int want[4] = {1, 2, 3, 0};
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(fired.order[i], want[i]);
		ck_assert_int_eq(fired.at[i], base + d[want[i]]);
	}
	ck_assert_int_eq(qc_now(vc), base + QC_MINUTE);
	ck_assert_int_eq(qc_clock_next_timer(vc, &next), ENOENT);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(qc_err(c[i]), ETIMEDOUT);
		qc_release(c[i]);
	}
}
END_TEST

static qc_ctx *chained;

/* Arms a new 1 s timer when the first one fires. */
static void arm_another(void *arg)
{
	(void)arg;
	chained = qc_with_timeout(qc_clock_root(vc), QC_SECOND);
}

START_TEST(test_clock_timers_armed_by_callbacks_fire_if_due)
{
	qc_ctx *first = qc_with_timeout(qc_clock_root(vc), QC_SECOND);
	qc_after_func(first, arm_another, NULL);
	qc_time base = qc_now(vc);
	ck_assert_int_eq(qc_clock_advance(vc, 5 * QC_SECOND), 0);
	ck_assert_ptr_nonnull(chained);
	ck_assert_int_eq(qc_err(chained), ETIMEDOUT);
	ck_assert_int_eq(qc_now(vc), base + 5 * QC_SECOND);
	qc_release(chained);
	qc_release(first);
}
END_TEST

START_TEST(test_clock_free_refuses_while_contexts_live)
{
	qc_clock *c = qc_clock_virtual_new(0);
	qc_ctx *x = qc_with_cancel(qc_clock_root(c));
	ck_assert_int_eq(qc_clock_live_contexts(c), 1);
	ck_assert_int_eq(qc_clock_free(c), EBUSY);
	ck_assert_int_eq(qc_err(x), 0); /* nothing was freed */
	qc_release(x);
	ck_assert_int_eq(qc_clock_live_contexts(c), 0);
	ck_assert_int_eq(qc_clock_free(c), 0);
}
END_TEST

START_TEST(test_clock_oom_sweep)
{
	for (long n = 0;; n++) {
		qc__alloc_fail_after(n);
		qc_clock *c = qc_clock_virtual_new(0);
		qc__alloc_fail_after(-1);
		if (c) {
			ck_assert_int_eq(qc_clock_free(c), 0);
			break;
		}
		ck_assert_int_eq(errno, ENOMEM);
	}
}
END_TEST

static Suite *clock_suite(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("virtual");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_clock_virtual_starts_exactly_at_start);
	tcase_add_test(tc, test_clock_advance_and_set_move_forward_only);
	tcase_add_test(tc, test_clock_bad_input_is_einval);
	tcase_add_test(tc, test_clock_real_is_monotonic);
	tcase_add_test(tc,
		       test_clock_timers_fire_in_deadline_then_arming_order);
	tcase_add_test(tc, test_clock_timers_armed_by_callbacks_fire_if_due);
	tcase_add_test(tc, test_clock_free_refuses_while_contexts_live);
	tcase_add_test(tc, test_clock_oom_sweep);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return qcs_run(clock_suite());
}
