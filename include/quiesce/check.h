/*
 * quiesce/check.h: quiesce inside Check test suites: a checked fixture that
 * gives every test a fresh harness and fails the test when it leaves
 * threads running or anything leaked, assertions that fail with quiesce's
 * report, and a main() for suites.
 *
 * Not part of quiesce.h, and not in libquiesce: this lives in the static
 * library quiesce_check (CMake quiesce::check, pkg-config quiesce-check),
 * linked into test executables only, because Debian ships Check as static
 * archives with global state.
 *
 * Fork mode (Check's default, also under valgrind) and no-fork mode
 * (CK_FORK=no) both work; code that crashes or exits needs fork mode.
 *
 * Thread safety: everything here runs on the test thread only: the thread
 * Check runs the test function (and its fixtures) on. Check's assertions
 * leave the test by longjmp (no-fork) or exit (fork), so calling one from
 * any other thread corrupts the test run: never use ck_assert*, ck_abort*
 * or the qc_ck_* macros on a thread the test started; pass results back to
 * the test thread (qc_h_result, a channel) and assert there.
 */
#ifndef QUIESCE_CHECK_H
#define QUIESCE_CHECK_H

/* Check's own header: include/quiesce is never on the include path, so
 * this is never this file. */
#include <check.h>
#include <stddef.h>

#include <quiesce/api.h>
#include <quiesce/ctx.h>
#include <quiesce/harness.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

/*
 * qc_tcase_use_harness: adds a checked fixture to tc (opts copied; NULL:
 * all defaults). Before each test its setup creates a fresh harness
 * (qc_h_new(opts)), returned by qc_test_h(); a setup that cannot fails the
 * test with qc_h_new's reason. After each test its teardown calls
 * qc_h_cancel, then qc_h_expect_quiet(h, opts->quiet_bound, or 1 s when 0),
 * then qc_h_check_leaks, copies the report, frees the harness with
 * qc_h_free, and only then fails the test (with the report) when it was not
 * quiet or something leaked: a Check assertion in a teardown skips the rest
 * of the teardown, so nothing is left to skip. Check prints such a failure
 * as "(quiesce fixture teardown):0:S:<tcase>:<test>:0: quiesce fixture
 * (qc_tcase_use_harness): not quiet after qc_h_cancel: ..." (S: failed in
 * a fixture), followed by the report; it counts as a failure of the test.
 *
 * It also raises tc's timeout (tcase_set_timeout) to at least 4 times the
 * harness's real-time guard (opts->guard, or 1 s, times
 * qc_h_time_multiplier(), plus the quiet bound with real_clock), so that
 * Check never kills a test before quiesce can say why it hangs; call
 * tcase_set_timeout after this to change it. It raises Check's message size
 * limit (check_set_max_msg_size) to 64 KiB, as reports are long; a failure
 * message that still does not fit is cut, and the whole report goes to
 * stderr. At most 64 different option sets per process (equal ones share
 * a slot); past that it prints "quiesce: ..." and exits. A NULL tc prints
 * a line and does nothing.
 * Thread safety: call while building suites, before srunner_run*.
 */
void qc_tcase_use_harness(TCase *tc, const qc_h_opts *opts);

/*
 * qc_test_h: the harness the fixture made for the running test (borrowed;
 * freed by the fixture's teardown: never qc_h_free it). In a test case
 * without the fixture it fails the test, at the caller's line, with a
 * message naming qc_tcase_use_harness, rather than return NULL. Thread
 * safety: test thread only (the fixture's setup, the test, its teardown).
 * The macro passes the caller's file and line; (qc_test_h)() bypasses it.
 */
qc_h *qc_test_h(void);
qc_h *qc__test_h_at(const char *file, int line);
#define qc_test_h() qc__test_h_at(__FILE__, __LINE__)

/*
 * The assertions. Each passes like a Check assertion (a mark point) or
 * fails the test at the caller's file and line with a message that carries
 * qc_h_report. Given a NULL harness (qc_test_h() outside the fixture), they
 * fail naming the missing fixture. Test thread only.
 *
 * qc_ck_assert_quiet(h, bound): qc_h_expect_quiet(h, bound) returns 0.
 * qc_ck_assert_no_leaks(h): qc_h_check_leaks(h) finds nothing.
 * qc_ck_assert_err(ctx, err): qc_err(ctx) == err (0, ECANCELED, ETIMEDOUT).
 * qc_ck_assert_done_within(ctx, bound): parks the test thread until ctx is
 *     done, at most bound on ctx's clock from the call (inside a harness
 *     virtual time auto-advances; with manual_time, or on a virtual clock
 *     of no harness, another thread must move the clock, or Check's
 *     timeout ends the test), and fails if it is still not done. It
 *     derives nothing from ctx and changes nothing in it: it sleeps on ctx
 *     (qc_sleep), so the clock is left at most bound later.
 */
#define qc_ck_assert_quiet(h, bound)                          \
	qc__ck_assert_quiet((h), (bound), __FILE__, __LINE__, \
			    "qc_ck_assert_quiet(" #h ", " #bound ")")
#define qc_ck_assert_no_leaks(h)                        \
	qc__ck_assert_no_leaks((h), __FILE__, __LINE__, \
			       "qc_ck_assert_no_leaks(" #h ")")
#define qc_ck_assert_err(ctx, err)                          \
	qc__ck_assert_err((ctx), (err), __FILE__, __LINE__, \
			  "qc_ck_assert_err(" #ctx ", " #err ")")
#define qc_ck_assert_done_within(ctx, bound)                                   \
	qc__ck_assert_done_within((ctx), (bound), __FILE__, __LINE__,          \
				  "qc_ck_assert_done_within(" #ctx ", " #bound \
				  ")")

/* The functions behind the macros (file, line, expr: the caller's). */
void qc__ck_assert_quiet(qc_h *h, qc_duration bound, const char *file, int line,
			 const char *expr);
void qc__ck_assert_no_leaks(qc_h *h, const char *file, int line,
			    const char *expr);
void qc__ck_assert_err(qc_ctx *ctx, int err, const char *file, int line,
		       const char *expr);
void qc__ck_assert_done_within(qc_ctx *ctx, qc_duration bound, const char *file,
			       int line, const char *expr);

/*
 * qc_check_main: runs suites[0..n) in one SRunner the way QC_CHECK_MAIN's
 * main() does, and returns its exit status. Honours Check's environment
 * (CK_RUN_SUITE, CK_RUN_CASE, CK_FORK, CK_VERBOSITY, CK_TAP_LOG_FILE_NAME,
 * CK_XML_LOG_FILE_NAME, ...). Returns EXIT_SUCCESS only when at least one
 * check ran and none failed; when none ran it prints "quiesce: no checks
 * ran" to stderr and returns EXIT_FAILURE (a filter that matches nothing,
 * or a suite whose tests were never added, must not pass). A NULL suite
 * function, or one that returns NULL, is an error too.
 *
 * Chaos mode (include/quiesce/harness.h): with QC_CHAOS_SEED=S it first
 * prints "quiesce: chaos seed S" to stderr. With QC_REPEAT=N (1 to
 * 1000000) it runs the suites N times, building them anew each time, with
 * chaos seeds S, S+1, ... (S from QC_CHAOS_SEED, else from the clock),
 * printing "quiesce: chaos seed <seed> (QC_REPEAT run i/N)" before each
 * run and a "replay with QC_CHAOS_SEED=<seed>" line after each failed one;
 * it returns EXIT_SUCCESS only when every run passed. Check's log files
 * (CK_TAP_LOG_FILE_NAME, ...) then hold the last run only.
 */
int qc_check_main(Suite *(*const *suites)(void), size_t n);

/*
 * QC_CHECK_MAIN(suite_fn, ...): defines main() for a test executable from
 * one or more functions returning Suite * (see qc_check_main).
 */
#define QC_CHECK_MAIN(...)                                                  \
	int main(void)                                                      \
	{                                                                   \
		Suite *(*const qc__suites[])(void) = {__VA_ARGS__};         \
		return qc_check_main(qc__suites, sizeof qc__suites /        \
						     sizeof qc__suites[0]); \
	}

QC_END_DECLS

#endif /* QUIESCE_CHECK_H */
