/*
 * bench_check1000.c: quiesce-bench-check1000, the Check suite of row H5 of
 * quiesce-bench-harness (issue #4): 1,000 tests under qc_tcase_use_harness,
 * each waiting out a 1-hour deadline on the harness's virtual clock.
 * quiesce-bench-harness runs it with CK_FORK=yes and CK_FORK=no.
 */
#include <quiesce/check.h>
#include <quiesce/ctx.h>
#include <quiesce/harness.h>
#include <quiesce/time.h>

START_TEST(wait_an_hour)
{
	qc_ctx *c = qc_with_timeout(qc_h_ctx(qc_test_h()), QC_HOUR);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(qc_wait(c), ETIMEDOUT);
	qc_release(c);
}
END_TEST

static Suite *check1000_suite(void)
{
	Suite *s = suite_create("check1000");
	TCase *tc = tcase_create("hour");
	qc_tcase_use_harness(tc, NULL);
	tcase_add_loop_test(tc, wait_an_hour, 0, 1000);
	suite_add_tcase(s, tc);
	return s;
}

QC_CHECK_MAIN(check1000_suite)
