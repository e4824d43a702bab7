/*
 * check.c: quiesce's Check integration (include/quiesce/check.h), built as
 * the static library quiesce_check, never into libquiesce: Debian's Check
 * is a static archive with global state, so it must be linked exactly once,
 * into the test executable.
 *
 * Fixture slots. Check calls a fixture's setup and teardown with no
 * argument, so each option set gets a slot, and each slot its own pair of
 * trampolines (setup_<r>_<c>, teardown_<r>_<c>) that pass the slot index
 * on. Equal option sets share a slot; slots are filled while suites are
 * built, before Check forks, and never change after.
 *
 * The running test's harness is one static (cur_h): the fixture's setup
 * sets it and its teardown clears it, both on the test thread, in the
 * forked child (fork mode) or in the runner itself (no-fork mode).
 *
 * Failing. Check formats an assertion's message into an 8 KiB buffer, and
 * refuses to send one longer than its message size limit (4 KiB unless
 * raised; it then exits the whole runner in no-fork mode). So failures are
 * sent as the assertion's expression text (never formatted), from a static
 * buffer (nothing to free when Check longjmps or exits), cut to fit the
 * limit, with the whole text on stderr when cut. This file raises the limit
 * to 64 KiB (check_set_max_msg_size) when a suite uses it.
 *
 * Invariants: nothing here runs off the test thread; a harness is freed
 * before any Check assertion about it is made. No locks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/check.h>
#include <quiesce/wait.h>

#include "chaos.h"

#define MSG_MAX (64 * 1024) /* the message size limit this file asks for */
#define NSLOTS	64

struct slot {
	bool used;
	qc_h_opts opts;
};

static struct slot slots[NSLOTS];
static qc_h *cur_h;	       /* the running test's harness (test thread) */
static bool msg_max_set;       /* check_set_max_msg_size(MSG_MAX) was called */
static char fail_buf[MSG_MAX]; /* the failure being sent */

/* ------------------------------------------------------------ failing */

/* The longest message Check will send: CK_MAX_MSG_SIZE wins, then what
 * was set, then Check's 4 KiB. */
static size_t msg_limit(void)
{
	const char *env = getenv("CK_MAX_MSG_SIZE");
	if (env && *env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 10);
		if (*end == '\0' && v > 0)
			return v < MSG_MAX ? (size_t)v : MSG_MAX;
	}
	return msg_max_set ? MSG_MAX : 4096;
}

static void raise_msg_limit(void)
{
	if (!msg_max_set) {
		check_set_max_msg_size(MSG_MAX);
		msg_max_set = true;
	}
}

/* Fails the running test at file:line with text (taken: freed here, before
 * Check leaves this function for good). */
static _Noreturn void fail_with(const char *file, int line, char *text)
{
	static const char cut[] = "\n... (cut to fit Check's message size "
				  "limit; the whole text is on stderr)";
	const char *t = text ? text : "quiesce: out of memory for the report";
	size_t len = strlen(t);
	/* Check packs the file name, the line and some framing with it. */
	size_t overhead = strlen(file) + 128;
	size_t limit = msg_limit();
	size_t room = limit > overhead + sizeof cut + 64
			  ? limit - overhead - sizeof cut
			  : 64;
	if (room > sizeof fail_buf - sizeof cut)
		room = sizeof fail_buf - sizeof cut;
	if (len > room) {
		fprintf(stderr, "%s:%d: %s\n", file, line, t);
		memcpy(fail_buf, t, room);
		memcpy(fail_buf + room, cut, sizeof cut);
	} else {
		memcpy(fail_buf, t, len + 1);
	}
	free(text);
	/* As the expression, not the format: Check formats messages into
	 * a fixed 8 KiB buffer but sends expressions whole. */
	_ck_assert_failed(file, line, fail_buf, NULL);
}

/* Text being built with open_memstream. */
struct text {
	char *s;
	size_t n;
	FILE *f;
};

static FILE *text_open(struct text *t)
{
	t->s = NULL;
	t->n = 0;
	t->f = open_memstream(&t->s, &t->n);
	return t->f;
}

/* Closes the stream; returns the text (caller frees), or NULL. */
static char *text_close(struct text *t)
{
	if (!t->f)
		return NULL;
	if (fclose(t->f) != 0) {
		free(t->s);
		return NULL;
	}
	return t->s;
}

static const char *errno_name(int e)
{
	switch (e) {
	case 0:
		return "0";
	case ECANCELED:
		return "ECANCELED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EDEADLK:
		return "EDEADLK";
	case EINVAL:
		return "EINVAL";
	case EBUSY:
		return "EBUSY";
	case ENOMEM:
		return "ENOMEM";
	case ENOTSUP:
		return "ENOTSUP";
	case EPIPE:
		return "EPIPE";
	default:
		return NULL;
	}
}

/* Writes e as its name, or as a number with strerror. */
static void put_errno(FILE *f, int e)
{
	const char *name = errno_name(e);
	if (name)
		fputs(name, f);
	else
		fprintf(f, "%d (%s)", e, strerror(e));
}

/* Appends "\n<report>" when the harness has one. */
static void put_report(FILE *f, const qc_h *h)
{
	const char *r = h ? qc_h_report(h) : "";
	if (r && *r)
		fprintf(f, "\n%s", r);
}

static const char no_fixture[] =
    "this test case has no harness: add the fixture with "
    "qc_tcase_use_harness(tc, &opts) where the TCase is built "
    "(qc_test_h() and the qc_ck_* harness assertions need it)";

/* ------------------------------------------------------------ fixture */

static bool opts_equal(const qc_h_opts *a, const qc_h_opts *b)
{
	/* Field by field: padding bytes are not comparable. Update this
	 * when qc_h_opts grows. */
	return a->real_clock == b->real_clock && a->start == b->start &&
	       a->manual_time == b->manual_time && a->guard == b->guard &&
	       a->intercept_time == b->intercept_time &&
	       a->quiet_bound == b->quiet_bound &&
	       a->stack_signal == b->stack_signal;
}

static qc_duration quiet_bound(const qc_h_opts *o)
{
	return o->quiet_bound > 0 ? o->quiet_bound : QC_SECOND;
}

static void fixture_setup(int i)
{
	static const qc_site site = {"qc_tcase_use_harness", 0,
				     "the fixture's setup"};
	cur_h = NULL;
	qc_h *h = qc_h_new_at(&slots[i].opts, &site);
	if (!h) {
		int e = errno;
		struct text t;
		FILE *f = text_open(&t);
		if (f) {
			fputs("quiesce fixture (qc_tcase_use_harness): "
			      "qc_h_new failed: ",
			      f);
			put_errno(f, e);
			if (e == EBUSY)
				fputs(" (another harness is live: a test "
				      "must not make its own while the "
				      "fixture's exists)",
				      f);
		}
		fail_with(__FILE__, __LINE__, text_close(&t));
	}
	cur_h = h;
}

static void fixture_teardown(int i)
{
	qc_h *h = cur_h;
	cur_h = NULL;
	if (!h)
		return;
	const qc_h_opts *o = &slots[i].opts;
	char bound_s[48];
	qc_duration_format(quiet_bound(o), bound_s, sizeof bound_s);

	qc_h_cancel(h);
	int quiet = qc_h_expect_quiet(h, quiet_bound(o));
	char *quiet_report = quiet ? strdup(qc_h_report(h)) : NULL;
	int leaks = qc_h_check_leaks(h);
	char *leak_report = leaks != 0 ? strdup(qc_h_report(h)) : NULL;
	int freed = qc_h_free(h);
	if (!quiet && leaks == 0)
		return;

	/* The harness is gone: now the test may fail. */
	struct text t;
	FILE *f = text_open(&t);
	if (f && quiet) {
		fprintf(f,
			"quiesce fixture (qc_tcase_use_harness): not quiet "
			"after qc_h_cancel: qc_h_expect_quiet(h, %s) returned ",
			bound_s);
		put_errno(f, quiet);
		if (quiet_report && *quiet_report)
			fprintf(f, "\n%s", quiet_report);
	}
	if (f && leaks != 0) {
		if (quiet)
			fputc('\n', f);
		if (leaks < 0)
			fputs("quiesce fixture (qc_tcase_use_harness): "
			      "qc_h_check_leaks failed",
			      f);
		else
			fprintf(f,
				"quiesce fixture (qc_tcase_use_harness): "
				"qc_h_check_leaks found %d leak%s",
				leaks, leaks == 1 ? "" : "s");
		/* The leak report may repeat the quiet one: show it once. */
		if (leak_report && *leak_report &&
		    !(quiet_report && strcmp(quiet_report, leak_report) == 0))
			fprintf(f, "\n%s", leak_report);
	}
	if (f && freed == EBUSY)
		fputs("\n(qc_h_free: EBUSY: threads still run, so the harness "
		      "was abandoned; the next test's harness treats them as "
		      "left over)",
		      f);
	free(quiet_report);
	free(leak_report);
	fail_with("(quiesce fixture teardown)", 0, text_close(&t));
}

/* The trampolines: slot r * 8 + c. */
#define SLOT(r, c)                             \
	static void setup_##r##_##c(void)      \
	{                                      \
		fixture_setup((r)*8 + (c));    \
	}                                      \
	static void teardown_##r##_##c(void)   \
	{                                      \
		fixture_teardown((r)*8 + (c)); \
	}
#define SLOT_ROW(r) \
	SLOT(r, 0)  \
	SLOT(r, 1)  \
	SLOT(r, 2)  \
	SLOT(r, 3)  \
	SLOT(r, 4)  \
	SLOT(r, 5)  \
	SLOT(r, 6)  \
	SLOT(r, 7)
SLOT_ROW(0)
SLOT_ROW(1)
SLOT_ROW(2)
SLOT_ROW(3)
SLOT_ROW(4)
SLOT_ROW(5)
SLOT_ROW(6)
SLOT_ROW(7)

#define FN_ROW(kind, r)                                                 \
	kind##_##r##_0, kind##_##r##_1, kind##_##r##_2, kind##_##r##_3, \
	    kind##_##r##_4, kind##_##r##_5, kind##_##r##_6, kind##_##r##_7
#define FN_TABLE(kind)                                                 \
	{                                                              \
		FN_ROW(kind, 0), FN_ROW(kind, 1), FN_ROW(kind, 2),     \
		    FN_ROW(kind, 3), FN_ROW(kind, 4), FN_ROW(kind, 5), \
		    FN_ROW(kind, 6), FN_ROW(kind, 7)                   \
	}

static void (*const setups[NSLOTS])(void) = FN_TABLE(setup);
static void (*const teardowns[NSLOTS])(void) = FN_TABLE(teardown);

/* A positive number from the environment variable name, else dflt. */
static double env_number(const char *name, double dflt)
{
	const char *env = getenv(name);
	if (!env || !*env)
		return dflt;
	char *end;
	double v = strtod(env, &end);
	return *end == '\0' && v > 0 ? v : dflt;
}

/* Sets tc's timeout to at least 4 x the real-time guard (plus a real-clock
 * quiet bound), in the effective seconds Check enforces. */
static void raise_timeout(TCase *tc, const qc_h_opts *o)
{
	int mult = qc_h_time_multiplier();
	if (mult < 1)
		mult = 1;
	double guard = (double)(o->guard > 0 ? o->guard : QC_SECOND) / 1e9;
	double need = 4.0 * guard * mult;
	if (o->real_clock)
		need += (double)quiet_bound(o) / 1e9 * mult;
	/* Check multiplies both its default and what it is given by
	 * CK_TIMEOUT_MULTIPLIER; compare and set in its units. */
	double ck_mult = env_number("CK_TIMEOUT_MULTIPLIER", 1.0);
	double dflt = env_number("CK_DEFAULT_TIMEOUT", 4.0) * ck_mult;
	double effective = need > dflt ? need : dflt;
	tcase_set_timeout(tc, effective / ck_mult);
}

void qc_tcase_use_harness(TCase *tc, const qc_h_opts *opts)
{
	if (!tc) {
		fputs("quiesce: qc_tcase_use_harness: NULL TCase: no fixture "
		      "added\n",
		      stderr);
		return;
	}
	qc_h_opts o;
	memset(&o, 0, sizeof o);
	if (opts)
		o = *opts;

	int i, free_slot = -1;
	for (i = 0; i < NSLOTS; i++) {
		if (slots[i].used && opts_equal(&slots[i].opts, &o))
			break;
		if (!slots[i].used && free_slot < 0)
			free_slot = i;
	}
	if (i == NSLOTS) {
		if (free_slot < 0) {
			fprintf(stderr,
				"quiesce: qc_tcase_use_harness: more than %d "
				"different qc_h_opts in one process; share "
				"option sets between test cases\n",
				NSLOTS);
			exit(EXIT_FAILURE);
		}
		i = free_slot;
		slots[i].used = true;
		slots[i].opts = o;
	}
	raise_msg_limit();
	tcase_add_checked_fixture(tc, setups[i], teardowns[i]);
	raise_timeout(tc, &o);
}

qc_h *(qc_test_h)(void)
{
	if (!cur_h)
		_ck_assert_failed("(qc_test_h)", 0,
				  "quiesce: qc_test_h(): no harness", "%s",
				  no_fixture);
	return cur_h;
}

qc_h *qc__test_h_at(const char *file, int line)
{
	if (!cur_h)
		_ck_assert_failed(file, line,
				  "quiesce: qc_test_h(): no harness",
				  "quiesce: qc_test_h(): %s", no_fixture);
	_mark_point(file, line);
	return cur_h;
}

/* ------------------------------------------------------------ assertions */

/* Fails when h is NULL, naming the fixture. */
static void need_harness(const qc_h *h, const char *file, int line,
			 const char *expr)
{
	if (h)
		return;
	struct text t;
	FILE *f = text_open(&t);
	if (f)
		fprintf(f, "%s: the harness is NULL: %s", expr, no_fixture);
	fail_with(file, line, text_close(&t));
}

void qc__ck_assert_quiet(qc_h *h, qc_duration bound, const char *file, int line,
			 const char *expr)
{
	need_harness(h, file, line, expr);
	int e = qc_h_expect_quiet(h, bound);
	if (e == 0) {
		_mark_point(file, line);
		return;
	}
	struct text t;
	FILE *f = text_open(&t);
	if (f) {
		fprintf(f, "%s failed: not quiet: qc_h_expect_quiet returned ",
			expr);
		put_errno(f, e);
		put_report(f, h);
	}
	fail_with(file, line, text_close(&t));
}

void qc__ck_assert_no_leaks(qc_h *h, const char *file, int line,
			    const char *expr)
{
	need_harness(h, file, line, expr);
	int n = qc_h_check_leaks(h);
	if (n == 0) {
		_mark_point(file, line);
		return;
	}
	struct text t;
	FILE *f = text_open(&t);
	if (f) {
		if (n < 0)
			fprintf(f, "%s failed: qc_h_check_leaks failed", expr);
		else
			fprintf(f, "%s failed: %d leak%s", expr, n,
				n == 1 ? "" : "s");
		put_report(f, h);
	}
	fail_with(file, line, text_close(&t));
}

/* "<describe(ctx)>" into f. */
static void put_ctx(FILE *f, const qc_ctx *ctx)
{
	char d[512];
	qc_ctx_describe(ctx, d, sizeof d);
	fprintf(f, "context %s", d);
}

void qc__ck_assert_err(qc_ctx *ctx, int err, const char *file, int line,
		       const char *expr)
{
	struct text t;
	FILE *f;
	if (!ctx) {
		f = text_open(&t);
		if (f)
			fprintf(f, "%s failed: the context is NULL", expr);
		fail_with(file, line, text_close(&t));
	}
	int got = qc_err(ctx);
	if (got == err) {
		_mark_point(file, line);
		return;
	}
	f = text_open(&t);
	if (f) {
		fprintf(f, "%s failed: qc_err is ", expr);
		put_errno(f, got);
		if (got) {
			int cause = qc_cause(ctx);
			if (cause != got) {
				fputs(" (cause ", f);
				put_errno(f, cause);
				fputc(')', f);
			}
		}
		fputs(", expected ", f);
		put_errno(f, err);
		fputs("\n", f);
		put_ctx(f, ctx);
		put_report(f, cur_h);
	}
	fail_with(file, line, text_close(&t));
}

void qc__ck_assert_done_within(qc_ctx *ctx, qc_duration bound, const char *file,
			       int line, const char *expr)
{
	struct text t;
	FILE *f;
	if (!ctx) {
		f = text_open(&t);
		if (f)
			fprintf(f, "%s failed: the context is NULL", expr);
		fail_with(file, line, text_close(&t));
	}
	/* A sleep on ctx itself ends when ctx is done or bound has passed on
	 * its clock, and parks the caller (auto-advance applies); unlike a
	 * derived timeout context it adds nothing to ctx's tree. */
	int e = qc_err(ctx) ? 0 : qc_sleep(ctx, bound);
	if (qc_err(ctx)) {
		_mark_point(file, line);
		return;
	}
	char b[48];
	qc_duration_format(bound, b, sizeof b);
	f = text_open(&t);
	if (f) {
		if (e != 0 && e != ECANCELED && e != ETIMEDOUT) {
			fprintf(f, "%s failed: qc_sleep on it returned ", expr);
			put_errno(f, e);
			fputc('\n', f);
		} else {
			fprintf(f,
				"%s failed: not done within %s on its "
				"clock\n",
				expr, b);
		}
		put_ctx(f, ctx);
		put_report(f, cur_h);
	}
	fail_with(file, line, text_close(&t));
}

/* ------------------------------------------------------------ main */

/* One whole run of suites[0..n) (see qc_check_main). */
static int run_once(Suite *(*const *suites)(void), size_t n)
{
	raise_msg_limit();
	SRunner *sr = NULL;
	for (size_t i = 0; i < n; i++) {
		Suite *s = suites[i] ? suites[i]() : NULL;
		if (!s) {
			fprintf(stderr,
				"quiesce: qc_check_main: suite function %zu "
				"%s\n",
				i, suites[i] ? "returned NULL" : "is NULL");
			if (sr)
				srunner_free(sr);
			return EXIT_FAILURE;
		}
		if (!sr)
			sr = srunner_create(s);
		else
			srunner_add_suite(sr, s);
	}
	/* Check reads these itself too; set them explicitly so that a
	 * Check that does not still writes the logs CI asks for. */
	const char *tap = getenv("CK_TAP_LOG_FILE_NAME");
	if (tap && *tap)
		srunner_set_tap(sr, tap);
	const char *xml = getenv("CK_XML_LOG_FILE_NAME");
	if (xml && *xml)
		srunner_set_xml(sr, xml);

	srunner_run_all(sr, CK_ENV);
	int run = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (run == 0) {
		fputs("quiesce: no checks ran\n", stderr);
		return EXIT_FAILURE;
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* QC_REPEAT as a run count: 1 when unset; 0 (after a line on stderr)
 * when it is not a number from 1 to 1000000. */
static long repeat_count(void)
{
	const char *s = getenv("QC_REPEAT");
	if (!s || !*s)
		return 1;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end != '\0' || v < 1 || v > 1000000) {
		fprintf(stderr,
			"quiesce: QC_REPEAT=%s: expected a run count from 1 "
			"to 1000000\n",
			s);
		return 0;
	}
	return v;
}

int qc_check_main(Suite *(*const *suites)(void), size_t n)
{
	if (!suites || n == 0) {
		fputs("quiesce: qc_check_main: no suites\n", stderr);
		return EXIT_FAILURE;
	}
	long runs = repeat_count();
	if (runs == 0)
		return EXIT_FAILURE;
	uint64_t seed0;
	bool chaos = qc__chaos_seed(&seed0); /* QC_CHAOS_SEED */
	if (runs == 1) {
		if (chaos)
			fprintf(stderr, "quiesce: chaos seed %llu\n",
				(unsigned long long)seed0);
		return run_once(suites, n);
	}
	/* QC_REPEAT: the whole run again with seeds seed0, seed0 + 1, ...,
	 * each printed before its run so a failure replays with
	 * QC_CHAOS_SEED=<seed> alone. Without QC_CHAOS_SEED the first seed
	 * comes from the clock and the pid. */
	if (!chaos) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed0 = ((uint64_t)ts.tv_sec * 1000003u) ^
			(uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		seed0 %= 1000000000u; /* short enough to retype */
	}
	long failed = 0;
	uint64_t first_failed = 0;
	for (long i = 0; i < runs; i++) {
		uint64_t seed = seed0 + (uint64_t)i;
		fprintf(stderr,
			"quiesce: chaos seed %llu (QC_REPEAT run %ld/%ld)\n",
			(unsigned long long)seed, i + 1, runs);
		fflush(stderr);
		qc__chaos_set(true, seed);
		if (run_once(suites, n) != EXIT_SUCCESS) {
			if (failed++ == 0)
				first_failed = seed;
			fprintf(stderr,
				"quiesce: run %ld/%ld failed: replay with "
				"QC_CHAOS_SEED=%llu\n",
				i + 1, runs, (unsigned long long)seed);
		}
	}
	qc__chaos_set(chaos, seed0);
	if (failed)
		fprintf(stderr,
			"quiesce: QC_REPEAT: %ld of %ld runs failed (first: "
			"QC_CHAOS_SEED=%llu)\n",
			failed, runs, (unsigned long long)first_failed);
	else
		fprintf(stderr, "quiesce: QC_REPEAT: %ld runs passed\n", runs);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
