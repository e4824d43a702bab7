/*
 * check_worker.c: the consumer test's project: one cancellation test of a
 * worker, the way a user writes it (README, "Write your first cancellation
 * test"). Built out of tree against the installed package by ci/consumer.sh,
 * once through find_package and once through pkg-config.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <quiesce/check.h>
#include <quiesce/quiesce.h>

/* The code under test: polls a queue once a second until cancelled. */
static int poller(qc_ctx *ctx, void *arg)
{
	int *polls = arg;
	while (qc_sleep(ctx, QC_SECOND) == 0)
		++*polls;
	return qc_err(ctx);
}

START_TEST(test_worker_stops_on_cancel)
{
	qc_h *h = qc_test_h();
	static int polls;
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "poller", poller, &polls),
			 0);
	ck_assert_int_eq(qc_h_advance(h, 10 * QC_SECOND), 0);
	ck_assert_int_eq(polls, 10); /* virtual time: exactly ten polls */
	qc_h_cancel(h);
	qc_ck_assert_quiet(h, 100 * QC_MILLISECOND);
	int ret;
	ck_assert_int_eq(qc_h_result(h, "poller", &ret), 0);
	ck_assert_int_eq(ret, ECANCELED);
}
END_TEST

/* The bug: a read() that cancellation cannot end. */
static int blocked_reader(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	char c;
	return (int)read(*(int *)arg, &c, 1);
}

/* The report names the user's own code with file and line, whichever
 * compiler built it with debug info (ci/consumer.sh builds this with gcc
 * and with clang, whose default DWARF has no .debug_aranges). */
START_TEST(test_report_names_the_users_code)
{
	qc_h *h = qc_test_h();
	static int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "reader", blocked_reader, &fds[0]), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), ETIMEDOUT);
	const char *r = qc_h_report(h);
	ck_assert_msg(
	    strstr(r, "start routine blocked_reader (check_worker.c:"), "%s",
	    r);
	ck_assert_msg(strstr(r, "created at check_worker.c:"), "%s", r);
	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	qc_ck_assert_quiet(h, QC_SECOND);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("cancel");
	qc_tcase_use_harness(tc, NULL);
	tcase_add_test(tc, test_worker_stops_on_cancel);
	tcase_add_test(tc, test_report_names_the_users_code);
	suite_add_tcase(s, tc);
	return s;
}

QC_CHECK_MAIN(worker_suite)
