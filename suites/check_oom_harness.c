/*
 * check_oom_harness.c: the out-of-memory sweep (issue #9, see
 * check_oom.c) over groups and the harness: qc_group_new/go, qc_h_new,
 * qc_h_spawn, qc_h_ignore, qc_h_check_leaks, qc_h_expect_quiet's report,
 * qc_h_write_json, qc_h_free, a sleep that parks, and pthread_create by the
 * code under test. A leak check under memory pressure says what it found
 * or fails with ENOMEM: it never finds nothing for lack of memory to look.
 */
/* quiesce-suite: static */
/* quiesce-suite: timeout 300 */
/* quiesce-suite: sources oom.c */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quiesce/check.h>
#include <quiesce/quiesce.h>

#include "oom.h"
#include "support.h"

/* -------------------------------------------------------------- groups */

static int group_fn(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	atomic_fetch_add((_Atomic int *)arg, 1);
	return 0;
}

START_TEST(test_oom_group_new)
{
	qc_clock *vc = qc_clock_virtual_new(0);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_on(n);
		qc_group *g = qc_group_new(qc_clock_root(vc));
		int e = errno;
		long made = oom_off();
		if (g) {
			ck_assert_int_le(made, n);
			ck_assert_uint_eq(qc_clock_live_contexts(vc), 1);
			ck_assert_int_eq(qc_group_wait(g), 0);
			ck_assert_int_eq(qc_group_free(g), 0);
			break;
		}
		ck_assert_int_eq(e, ENOMEM);
		ck_assert_uint_eq(qc_clock_live_contexts(vc), 0);
	}
	ck_assert_int_eq(qc_clock_free(vc), 0);
	oom_swept("qc_group_new", n);
}
END_TEST

/* qc_group_go, with no harness (_i 0) and inside one (_i 1: tracking the
 * thread allocates too). */
START_TEST(test_oom_group_go)
{
	bool in_h = _i == 1;
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_h *h = in_h ? qc_h_new(NULL) : NULL;
		qc_clock *vc = in_h ? NULL : qc_clock_virtual_new(0);
		qc_ctx *parent = in_h ? qc_h_ctx(h) : qc_clock_root(vc);
		qc_group *g = qc_group_new(parent);
		ck_assert_ptr_nonnull(g);
		_Atomic int runs = 0;
		oom_counts before = oom_counts_now();

		oom_on(n);
		int e = qc_group_go(g, "oom-worker", group_fn, &runs);
		long made = oom_off();
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(qc_group_wait(g), 0);
			ck_assert_int_eq(atomic_load(&runs), 1);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			oom_counts_same(&before, "qc_group_go", n);
			/* A failed go leaves the group as it was: the limit
			 * may still be set, and it frees without a wait. */
			ck_assert_int_eq(qc_group_set_limit(g, 2), 0);
		}
		ck_assert_int_eq(qc_group_free(g), 0);
		if (in_h) {
			ck_assert_int_eq(qc_h_check_leaks(h), 0);
			ck_assert_int_eq(qc_h_free(h), 0);
		} else {
			ck_assert_int_eq(qc_clock_free(vc), 0);
		}
		if (e == 0)
			break;
	}
	oom_swept(in_h ? "qc_group_go (in a harness)" : "qc_group_go", n);
}
END_TEST

/* ------------------------------------------------------------ harnesses */

START_TEST(test_oom_h_new)
{
	static const char *const names[] = {"qc_h_new (virtual clock)",
					    "qc_h_new (real clock)",
					    "qc_h_new (manual time)"};
	qc_h_opts o = {.real_clock = _i == 1, .manual_time = _i == 2};
	oom_warm_real_clock();
	/* The first harness of a process warms up the symbolizer and the
	 * stack capture: make it outside the sweep. */
	qc_h *warm = qc_h_new(&o);
	ck_assert_ptr_nonnull(warm);
	ck_assert_int_eq(qc_h_free(warm), 0);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_counts before = oom_counts_now();
		oom_on(n);
		qc_h *h = qc_h_new(&o);
		int e = errno;
		long made = oom_off();
		if (h) {
			ck_assert_int_le(made, n);
			ck_assert_pstr_eq(qc_ctx_name(qc_h_ctx(h)), "qc_h_ctx");
			ck_assert_int_eq(qc_h_check_leaks(h), 0);
			ck_assert_int_eq(qc_h_free(h), 0);
			break;
		}
		/* ENOMEM, never EBUSY: no half-made harness stays live. */
		ck_assert_int_eq(e, ENOMEM);
		oom_counts_same(&before, names[_i], n);
	}
	oom_swept(names[_i], n);
}
END_TEST

static int return_seven(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return 7;
}

START_TEST(test_oom_h_spawn)
{
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_h *h = qc_h_new(NULL);
		ck_assert_ptr_nonnull(h);
		oom_counts before = oom_counts_now();

		oom_on(n);
		int e = qc_h_spawn(h, qc_h_ctx(h), "oom-spawned", return_seven,
				   NULL);
		long made = oom_off();
		int ret = 0;
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
			ck_assert_int_eq(qc_h_result(h, "oom-spawned", &ret),
					 0);
			ck_assert_int_eq(ret, 7);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			oom_counts_same(&before, "qc_h_spawn", n);
			ck_assert_int_eq(qc_h_result(h, "oom-spawned", &ret),
					 ENOENT);
			ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
		}
		ck_assert_int_eq(qc_h_check_leaks(h), 0);
		ck_assert_int_eq(qc_h_free(h), 0);
		if (e == 0)
			break;
	}
	oom_swept("qc_h_spawn", n);
}
END_TEST

static bool spawned_exited(void *arg)
{
	int ret;
	return qc_h_result(arg, "oom-parked", &ret) == 0;
}

START_TEST(test_oom_h_ignore)
{
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_h *h = qc_h_new(NULL);
		ck_assert_ptr_nonnull(h);
		qc_ctx *c = qc_with_cancel(qc_h_ctx(h));
		ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "oom-parked",
					    oom_parked_worker, c),
				 0);
		ck_assert_int_eq(qc_h_settle(h), 0);

		oom_on(n);
		int e = qc_h_ignore(h, "oom_parked_worker");
		long made = oom_off();
		if (e == 0) {
			ck_assert_int_le(made, n);
			/* Ignored: quiet although it still waits. */
			ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
			qc_cancel(c);
			ck_assert(qcs_wait_for(spawned_exited, h, QC_SECOND));
		} else {
			ck_assert_int_eq(e, ENOMEM);
			/* Not ignored: blamed. */
			ck_assert_int_eq(qc_h_expect_quiet(h, 0), EDEADLK);
			ck_assert_ptr_nonnull(
			    strstr(qc_h_report(h), "oom-parked"));
			qc_cancel(c);
			ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
		}
		qc_release(c);
		ck_assert_int_eq(qc_h_check_leaks(h), 0);
		ck_assert_int_eq(qc_h_free(h), 0);
		if (e == 0)
			break;
	}
	oom_swept("qc_h_ignore", n);
}
END_TEST

/*
 * qc_h_check_leaks with something to find (_i 0: a lost context and a
 * thread still waiting; _i 1: nothing). Under memory pressure it must say
 * what it found or fail with ENOMEM: never find nothing for lack of memory
 * to look.
 */
START_TEST(test_oom_check_leaks)
{
	bool leaky = _i == 0;
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	qc_ctx *lost = NULL, *c = NULL;
	if (leaky) {
		lost = qc_with_cancel(qc_h_ctx(h));
		qc_ctx_set_name(lost, "oom-lost-ctx");
		c = qc_with_cancel(qc_h_ctx(h));
		ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "oom-parked",
					    oom_parked_worker, c),
				 0);
		ck_assert_int_eq(qc_h_settle(h), 0);
	}
	int expect = qc_h_check_leaks(h);
	if (leaky) /* lost, c, the thread */
		ck_assert_int_ge(expect, 3);
	else
		ck_assert_int_eq(expect, 0);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_on(n);
		int r = qc_h_check_leaks(h);
		int e = errno;
		long made = oom_off();
		const char *rep = qc_h_report(h);
		if (r == -1) {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert(*rep == '\0' ||
				  strstr(rep, "could not be completed"));
		} else {
			ck_assert_msg(r == expect,
				      "allocation %ld failing: %d findings, "
				      "not %d:\n%s",
				      n, r, expect, rep);
			if (leaky) {
				ck_assert_ptr_nonnull(
				    strstr(rep, "oom-lost-ctx"));
				ck_assert_ptr_nonnull(
				    strstr(rep, "still running"));
			}
		}
		if (made <= n) {
			ck_assert_int_eq(r, expect);
			break;
		}
	}
	if (leaky) {
		oom_drop(lost);
		qc_cancel(c);
		ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
		qc_release(c);
	}
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
	oom_swept(leaky ? "qc_h_check_leaks (3 findings)"
			: "qc_h_check_leaks (clean)",
		  n);
}
END_TEST

/* qc_h_expect_quiet's report under memory pressure: the verdict never
 * changes; the report is whole, or cut short, never wrong. */
START_TEST(test_oom_expect_quiet_report)
{
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	qc_ctx *c = qc_with_cancel(qc_h_ctx(h));
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "oom-parked", oom_parked_worker, c), 0);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_on(n);
		int v = qc_h_expect_quiet(h, QC_SECOND);
		long made = oom_off();
		ck_assert_int_eq(v, EDEADLK);
		const char *rep = qc_h_report(h);
		ck_assert(*rep == '\0' ||
			  strncmp(rep, "quiesce: not quiet", 18) == 0);
		if (made <= n) {
			ck_assert_ptr_nonnull(strstr(rep, "parked in qc_wait"));
			break;
		}
	}
	qc_cancel(c);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_release(c);
	int leaks = qc_h_check_leaks(h);
	ck_assert_msg(leaks == 0, "%d leaks:\n%s", leaks, qc_h_report(h));
	ck_assert_int_eq(qc_h_free(h), 0);
	oom_swept("qc_h_expect_quiet (the report)", n);
}
END_TEST

START_TEST(test_oom_write_json)
{
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	qc_ctx *c = qc_with_cancel(qc_h_ctx(h));
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "oom-parked", oom_parked_worker, c), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), EDEADLK);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		ck_assert_ptr_nonnull(f);
		oom_on(n);
		int e = qc_h_write_json(h, f);
		long made = oom_off();
		ck_assert_int_eq(fclose(f), 0);
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert_int_gt(len, 2);
			ck_assert(strncmp(text, "{\"quiesce\":1", 12) == 0);
			ck_assert(strcmp(text + len - 2, "}\n") == 0);
			ck_assert_ptr_nonnull(strstr(text, "oom-parked"));
		} else {
			/* Nothing written: no half a JSON object. */
			ck_assert_int_eq(e, ENOMEM);
			ck_assert_uint_eq(len, 0);
		}
		free(text);
		if (e == 0)
			break;
	}
	qc_cancel(c);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	qc_release(c);
	ck_assert_int_eq(qc_h_free(h), 0);
	oom_swept("qc_h_write_json", n);
}
END_TEST

/* qc_h_free needs no memory, even to keep a clock lost contexts live on
 * (it stays reachable, with them). */
START_TEST(test_oom_h_free_needs_no_memory)
{
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	qc_ctx *lost = qc_with_timeout(qc_h_ctx(h), QC_HOUR);
	ck_assert_ptr_nonnull(lost);
	oom_on(0);
	int e = qc_h_free(h);
	long made = oom_off();
	ck_assert_int_eq(e, 0);
	ck_assert_int_eq(made, 0);
	/* The lost context and its clock are still there. */
	ck_assert_int_eq(qc_err(lost), ECANCELED);
	qc_release(lost);
	/* And a new harness may follow. */
	h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* qc_sleep in a harness: the first timer on the harness clock grows its
 * heap; auto-advance moves the clock. */
START_TEST(test_oom_sleep_in_harness)
{
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_h *h = qc_h_new(NULL);
		ck_assert_ptr_nonnull(h);
		qc_time start = qc_now(qc_h_clock(h));
		oom_on(n);
		int e = qc_sleep(qc_h_ctx(h), QC_HOUR);
		long made = oom_off();
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(qc_now(qc_h_clock(h)),
					 start + QC_HOUR);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert_int_eq(qc_now(qc_h_clock(h)), start);
			ck_assert_uint_eq(qc_clock_timers(qc_h_clock(h)), 0);
		}
		ck_assert_int_eq(qc_h_check_leaks(h), 0);
		ck_assert_int_eq(qc_h_free(h), 0);
		if (e == 0)
			break;
	}
	oom_swept("qc_sleep (in a harness)", n);
}
END_TEST

static void *plain_thread(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
	return NULL;
}

/* Code under test calling pthread_create never sees quiesce's memory
 * trouble: with no memory to track the thread, it runs untracked. */
START_TEST(test_oom_pthread_create_in_harness)
{
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	_Atomic int ran = 0;
	pthread_t t;
	oom_on(0);
	int e = pthread_create(&t, NULL, plain_thread, &ran);
	(void)oom_off();
	ck_assert_int_eq(e, 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *oom_harness_suite(void)
{
	Suite *s = suite_create("oom_harness");
	TCase *tg = tcase_create("groups");
	tcase_set_timeout(tg, 60);
	tcase_add_test(tg, test_oom_group_new);
	tcase_add_loop_test(tg, test_oom_group_go, 0, 2);
	suite_add_tcase(s, tg);

	TCase *th = tcase_create("harness");
	tcase_set_timeout(th, 120);
	tcase_add_loop_test(th, test_oom_h_new, 0, 3);
	tcase_add_test(th, test_oom_h_spawn);
	tcase_add_test(th, test_oom_h_ignore);
	tcase_add_loop_test(th, test_oom_check_leaks, 0, 2);
	tcase_add_test(th, test_oom_expect_quiet_report);
	tcase_add_test(th, test_oom_write_json);
	tcase_add_test(th, test_oom_h_free_needs_no_memory);
	tcase_add_test(th, test_oom_sleep_in_harness);
	tcase_add_test(th, test_oom_pthread_create_in_harness);
	suite_add_tcase(s, th);
	return s;
}

QC_CHECK_MAIN(oom_harness_suite)
