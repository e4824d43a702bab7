/*
 * check_examples.c: every catalogue example, BAD and GOOD, as Check tests.
 *
 * A BAD test passes when quiesce catches the bug and its report contains
 * the words the example names (thread, state, creation site, context): the
 * failure is the expected result, and its content is asserted. A GOOD test
 * passes when quiesce finds nothing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

static size_t count(void)
{
	size_t n = 0;
	while (ex_catalogue[n])
		n++;
	return n;
}

START_TEST(test_examples_bad_is_caught_with_its_report)
{
	const qc_example *ex = ex_catalogue[_i];
	ex_verdict v;
	bool caught = ex_run(ex, true, &v);
	ck_assert_msg(caught, "%s: BAD version not caught\n%s", ex->name,
		      v.report);
	for (int k = 0; k < 6 && ex->expect[k]; k++)
		ck_assert_msg(strstr(v.report, ex->expect[k]),
			      "%s: report lacks \"%s\":\n%s\nnote: %s",
			      ex->name, ex->expect[k], v.report, v.note);
	ex_verdict_free(&v);
}
END_TEST

START_TEST(test_examples_good_passes)
{
	const qc_example *ex = ex_catalogue[_i];
	ex_verdict v;
	bool caught = ex_run(ex, false, &v);
	ck_assert_msg(!caught,
		      "%s: GOOD version flagged (quiet %d, leaks %d, "
		      "wrong %d; %s)\n%s",
		      ex->name, v.quiet, v.leaks, v.wrong, v.note, v.report);
	ex_verdict_free(&v);
}
END_TEST

static Suite *examples_suite(void)
{
	Suite *s = suite_create("examples");
	TCase *bad = tcase_create("bad"), *good = tcase_create("good");
	tcase_set_timeout(bad, 60);
	tcase_set_timeout(good, 60);
	int n = (int)count();
	tcase_add_loop_test(bad, test_examples_bad_is_caught_with_its_report, 0,
			    n);
	tcase_add_loop_test(good, test_examples_good_passes, 0, n);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, good);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(examples_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	int ran = srunner_ntests_run(sr);
	srunner_free(sr);
	return failed || ran == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
