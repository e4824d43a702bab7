/*
 * check_harness.c: the harness's lifecycle, tracking, parking and virtual
 * time: qc_h_new/free, spawn/result, settle, advance, expect_quiet,
 * auto-advance, the one-live-harness rule, abandoned harnesses.
 *
 * Failing cases clean up after the verdict (release what the thread waits
 * for), so every test ends with no thread of its own left running.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/group.h>
#include <quiesce/harness.h>
#include <quiesce/wait.h>

#include "alloc.h"
#include "support.h"

/* Fails with the leak report when h left anything behind. */
#define ck_no_leaks(h)                                                       \
	do {                                                                 \
		int n_ = qc_h_check_leaks(h);                                \
		ck_assert_msg(n_ == 0, "%d leaks:\n%s", n_, qc_h_report(h)); \
	} while (0)

/* --------------------------------------------------------------- helpers */

static int wait_ctx(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_wait(ctx) == ECANCELED ? 42 : -1;
}

/* Sleeps 30 s at a time until the context ends; counts the wake-ups. */
static int retry_loop(qc_ctx *ctx, void *arg)
{
	_Atomic int *runs = arg;
	while (qc_sleep(ctx, 30 * QC_SECOND) == 0)
		atomic_fetch_add(runs, 1);
	return 0;
}

struct pipe_reader {
	int fds[2];
	_Atomic pid_t tid;
	_Atomic int done;
};

/* Blocks in a raw read(2): ignores its context. */
static int raw_reader(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct pipe_reader *p = arg;
	atomic_store(&p->tid, (pid_t)syscall(SYS_gettid));
	char c;
	ssize_t r = read(p->fds[0], &c, 1);
	atomic_store(&p->done, 1);
	return r == 1 ? 0 : -1;
}

static void *raw_reader_thread(void *arg)
{
	(void)raw_reader(NULL, arg);
	return NULL;
}

static bool is_done(void *arg)
{
	return atomic_load((_Atomic int *)arg) != 0;
}

/* Captures what fn writes to stderr into buf. */
static void capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t n)
{
	fflush(stderr);
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	int saved = dup(2);
	dup2(fileno(tmp), 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t got = fread(buf, 1, n - 1, tmp);
	buf[got] = '\0';
	fclose(tmp);
}

/* ------------------------------------------------------------- lifecycle */

START_TEST(test_harness_new_free_defaults)
{
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(qc_h_ctx(h));
	ck_assert(qc_clock_is_virtual(qc_h_clock(h)));
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH);
	ck_assert_int_eq(qc_err(qc_h_ctx(h)), 0);
	ck_assert_str_eq(qc_h_report(h), "");
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_bad_input_is_einval)
{
	ck_assert_int_eq(qc_h_free(NULL), 0);
	ck_assert_ptr_null(qc_h_ctx(NULL));
	ck_assert_ptr_null(qc_h_clock(NULL));
	ck_assert_str_eq(qc_h_report(NULL), "");
	qc_h_cancel(NULL);
	ck_assert_int_eq(qc_h_settle(NULL), EINVAL);
	ck_assert_int_eq(qc_h_advance(NULL, 1), EINVAL);
	ck_assert_int_eq(qc_h_expect_quiet(NULL, 1), EINVAL);
	errno = 0;
	ck_assert_int_eq(qc_h_check_leaks(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(qc_h_write_json(NULL, stdout), EINVAL);
	ck_assert_int_eq(qc_h_ignore(NULL, "f"), EINVAL);

	qc_h_opts bad = {.guard = -1};
	errno = 0;
	ck_assert_ptr_null(qc_h_new(&bad));
	ck_assert_int_eq(errno, EINVAL);
	bad = (qc_h_opts){.stack_signal = 9 /* SIGKILL */};
	ck_assert_ptr_null(qc_h_new(&bad));
	ck_assert_int_eq(errno, EINVAL);
	bad = (qc_h_opts){.real_clock = true, .start = 5};
	ck_assert_ptr_null(qc_h_new(&bad));
	ck_assert_int_eq(errno, EINVAL);

	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	int ret;
	ck_assert_int_eq(qc_h_spawn(h, NULL, "w", wait_ctx, NULL), EINVAL);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), NULL, wait_ctx, NULL),
			 EINVAL);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "w", NULL, NULL), EINVAL);
	qc_clock *other = qc_clock_virtual_new(0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_clock_root(other), "w", wait_ctx, NULL), EINVAL);
	ck_assert_int_eq(qc_h_spawn(h, qc_background(), "w", wait_ctx, NULL),
			 EINVAL);
	ck_assert_int_eq(qc_clock_free(other), 0);
	ck_assert_int_eq(qc_h_result(h, NULL, &ret), EINVAL);
	ck_assert_int_eq(qc_h_result(h, "w", NULL), EINVAL);
	ck_assert_int_eq(qc_h_result(h, "nobody", &ret), ENOENT);
	ck_assert_int_eq(qc_h_advance(h, -1), EINVAL);
	ck_assert_int_eq(qc_h_expect_quiet(h, -1), EINVAL);
	ck_assert_int_eq(qc_h_ignore(h, NULL), EINVAL);
	ck_assert_int_eq(qc_h_ignore(h, ""), EINVAL);
	ck_assert_int_eq(qc_h_write_json(h, NULL), EINVAL);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static qc_h *second;

static void try_second(void *arg)
{
	(void)arg;
	second = qc_h_new(NULL);
}

START_TEST(test_harness_second_harness_is_ebusy_and_names_the_first)
{
	qc_h *h = qc_h_new(NULL);
	int line = __LINE__ - 1;
	ck_assert_ptr_nonnull(h);
	char err[512], want[64];
	errno = 0;
	capture_stderr(try_second, NULL, err, sizeof err);
	ck_assert_ptr_null(second);
	ck_assert_int_eq(errno, EBUSY);
	snprintf(want, sizeof want, "check_harness.c:%d", line);
	ck_assert_msg(strstr(err, "quiesce: ") == err, "stderr: %s", err);
	ck_assert_msg(strstr(err, want), "stderr: %s", err);
	ck_assert_msg(strstr(err, "another harness is live"), "stderr: %s",
		      err);
	ck_assert_int_eq(qc_h_free(h), 0);
	/* Once freed, a new one is allowed. */
	h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static qc_h *icept;

static void try_intercept(void *arg)
{
	(void)arg;
	qc_h_opts o = {.intercept_time = true};
	icept = qc_h_new(&o);
}

START_TEST(test_harness_intercept_time_works_or_says_why)
{
	char err[512];
	errno = 0;
	capture_stderr(try_intercept, NULL, err, sizeof err);
	if (!icept) {
		ck_assert_int_eq(errno, ENOTSUP);
		ck_assert_msg(strstr(err, "quiesce: intercept_time: time "
					  "interposition is not built into "
					  "this library"),
			      "stderr: %s", err);
		return;
	}
	/* The test thread is in the bubble: time() is virtual. */
	ck_assert_int_eq((long long)time(NULL),
			 (long long)(QC_VIRTUAL_EPOCH / QC_SECOND));
	ck_assert_int_eq(qc_h_free(icept), 0);
}
END_TEST

START_TEST(test_harness_time_multiplier_follows_the_environment)
{
	setenv("QC_TIME_MULTIPLIER", "7", 1);
	ck_assert_int_eq(qc_h_time_multiplier(), 7);
	setenv("QC_TIME_MULTIPLIER", "junk", 1);
	unsetenv("QC_TIME_MULTIPLIER");
	ck_assert_int_eq(qc_h_time_multiplier(), qcs_multiplier());
}
END_TEST

START_TEST(test_harness_new_out_of_memory_fails_cleanly)
{
	for (long n = 0;; n++) {
		qc__alloc_fail_after(n);
		errno = 0;
		qc_h *h = qc_h_new(NULL);
		qc__alloc_fail_after(-1);
		if (h) {
			ck_assert_int_eq(qc_h_free(h), 0);
			ck_assert_int_gt(n, 0);
			break;
		}
		ck_assert_int_eq(errno, ENOMEM);
		ck_assert_int_lt(n, 10000);
	}
}
END_TEST

/* --------------------------------------------------------- virtual time */

START_TEST(test_harness_auto_advance_wait_one_hour_returns_at_once)
{
	qc_h *h = qc_h_new(NULL);
	qc_ctx *ctx = qc_with_timeout(qc_h_ctx(h), QC_HOUR);
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_wait(ctx), ETIMEDOUT);
	ck_assert_int_lt(qcs_now() - t0, qcs_hang(QC_SECOND));
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH + QC_HOUR);
	qc_release(ctx);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_advance_runs_a_30s_retry_loop_exactly_10_times)
{
	qc_h *h = qc_h_new(NULL);
	_Atomic int runs = 0;
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "retry", retry_loop, &runs),
			 0);
	ck_assert_int_eq(qc_h_advance(h, 5 * QC_MINUTE), 0);
	ck_assert_int_eq(atomic_load(&runs), 10);
	ck_assert_int_eq(qc_now(qc_h_clock(h)),
			 QC_VIRTUAL_EPOCH + 5 * QC_MINUTE);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&runs), 10);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

struct sleeper {
	_Atomic int reached, woke;
};

static int sleep_once(qc_ctx *ctx, void *arg)
{
	struct sleeper *s = arg;
	atomic_fetch_add(&s->reached, 1);
	int e = qc_sleep(ctx, QC_SECOND);
	atomic_fetch_add(&s->woke, 1);
	return e;
}

START_TEST(test_harness_settle_waits_for_every_thread_to_park)
{
	qc_h *h = qc_h_new(NULL);
	struct sleeper s = {0, 0};
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(
		    qc_h_spawn(h, qc_h_ctx(h), "sleeper", sleep_once, &s), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(atomic_load(&s.reached), 8);
	ck_assert_int_eq(atomic_load(&s.woke), 0);
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&s.woke), 8);
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_manual_time_never_moves_by_itself)
{
	qc_h_opts o = {.manual_time = true, .guard = 50 * QC_MILLISECOND};
	qc_h *h = qc_h_new(&o);
	struct sleeper s = {0, 0};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "sleeper", sleep_once, &s),
			 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	/* Everything is parked and a timer is due: time still stands. */
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_HOUR), ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(qc_h_report(h), "manual_time"));
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH);
	ck_assert_int_eq(atomic_load(&s.woke), 0);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&s.woke), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* ------------------------------------------------------ spawn, result */

START_TEST(test_harness_spawn_result_reports_fn_return)
{
	qc_h *h = qc_h_new(NULL);
	int ret = 0;
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "one", wait_ctx, NULL), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "twin", wait_ctx, NULL), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "twin", wait_ctx, NULL), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(qc_h_result(h, "one", &ret), EBUSY);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_err(qc_h_ctx(h)), ECANCELED);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(qc_h_result(h, "one", &ret), 0);
	ck_assert_int_eq(ret, 42);
	ck_assert_int_eq(qc_h_result(h, "twin", &ret), EEXIST);
	ck_assert_int_eq(qc_h_result(h, "nobody", &ret), ENOENT);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_100_workers_cancel_and_quiet_quickly)
{
	qc_h *h = qc_h_new(NULL);
	qc_time t0 = qcs_now();
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(
		    qc_h_spawn(h, qc_h_ctx(h), "worker", wait_ctx, NULL), 0);
	qc_time t1 = qcs_now();
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, 100 * QC_MILLISECOND), 0);
	qc_time t2 = qcs_now();
	fprintf(stderr,
		"quiesce bench: 100 workers: spawn %.2f ms, cancel+quiet "
		"%.2f ms\n",
		(double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
	ck_assert_int_lt(t2 - t0, qcs_hang(5 * QC_SECOND));
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* -------------------------------------------------- tracking raw threads */

struct raw_arg {
	qc_ctx *ctx;
	_Atomic int done;
};

static void *raw_waiter(void *arg)
{
	struct raw_arg *a = arg;
	(void)qc_wait(a->ctx);
	atomic_store(&a->done, 1);
	return NULL;
}

static void *raw_sleeper(void *arg)
{
	struct raw_arg *a = arg;
	(void)qc_sleep(a->ctx, QC_HOUR);
	atomic_store(&a->done, 1);
	return NULL;
}

static void *raw_exits(void *arg)
{
	struct raw_arg *a = arg;
	(void)qc_wait(a->ctx);
	atomic_store(&a->done, 1);
	pthread_exit(NULL);
}

START_TEST(test_harness_raw_pthread_create_is_tracked)
{
	qc_h *h = qc_h_new(NULL);
	struct raw_arg a = {.ctx = qc_h_ctx(h)};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, raw_waiter, &a), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	/* Quiet means it exited: expect_quiet waited for it. */
	ck_assert_int_eq(atomic_load(&a.done), 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_pthread_exit_counts_as_exit)
{
	qc_h *h = qc_h_new(NULL);
	struct raw_arg a = {.ctx = qc_h_ctx(h)};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, raw_exits, &a), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_pthread_join_parks_the_joiner)
{
	qc_h *h = qc_h_new(NULL);
	struct raw_arg a = {.ctx = qc_h_ctx(h)};
	pthread_t t;
	qc_time t0 = qcs_now();
	ck_assert_int_eq(pthread_create(&t, NULL, raw_sleeper, &a), 0);
	/* The joiner parks, so the clock jumps to the sleeper's hour. */
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(atomic_load(&a.done), 1);
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH + QC_HOUR);
	ck_assert_int_lt(qcs_now() - t0, qcs_hang(QC_SECOND));
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static int group_fn(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return qc_wait(ctx) == ECANCELED ? 0 : -1;
}

START_TEST(test_harness_group_threads_are_tracked)
{
	qc_h *h = qc_h_new(NULL);
	qc_group *g = qc_group_new(qc_h_ctx(h));
	ck_assert_ptr_nonnull(g);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(qc_group_go(g, "grp", group_fn, NULL), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(qc_group_wait(g), 0);
	ck_assert_int_eq(qc_group_free(g), 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* ----------------------------------------------------------- failures */

START_TEST(test_harness_deadlock_is_edeadlk)
{
	qc_h *h = qc_h_new(NULL);
	qc_ctx *never = qc_with_cancel(qc_h_ctx(h));
	ck_assert_int_eq(qc_h_spawn(h, never, "stuck", wait_ctx, NULL), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), EDEADLK);
	ck_assert_ptr_nonnull(strstr(qc_h_report(h), "deadlock"));
	ck_assert_ptr_nonnull(strstr(qc_h_report(h), "\"stuck\""));
	qc_cancel(never);
	qc_release(never);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_name_truncated_for_the_os_whole_in_reports)
{
	qc_h_opts o = {.guard = 50 * QC_MILLISECOND};
	qc_h *h = qc_h_new(&o);
	static const char name[] = "a-rather-long-worker-name-0123";
	struct pipe_reader p = {.tid = 0};
	ck_assert_int_eq(pipe(p.fds), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), name, raw_reader, &p), 0);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), ETIMEDOUT);
	char want[64], path[64], comm[32] = "";
	snprintf(want, sizeof want, "\"%s\"", name);
	ck_assert_msg(strstr(qc_h_report(h), want), "%s", qc_h_report(h));
	snprintf(path, sizeof path, "/proc/self/task/%d/comm",
		 (int)atomic_load(&p.tid));
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(comm, sizeof comm, f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	ck_assert_str_eq(comm, "a-rather-long-w");
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	close(p.fds[0]);
	close(p.fds[1]);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_abandoned_harness_does_not_block_the_next)
{
	qc_h_opts o = {.guard = 50 * QC_MILLISECOND};
	qc_h *h1 = qc_h_new(&o);
	struct pipe_reader p = {.tid = 0};
	ck_assert_int_eq(pipe(p.fds), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, raw_reader_thread, &p), 0);
	ck_assert_int_eq(qc_h_free(h1), EBUSY);
	ck_assert_int_eq(qc_h_free(h1), EBUSY);

	qc_h *h2 = qc_h_new(&o);
	ck_assert_ptr_nonnull(h2);
	/* The survivor is left over: never blamed on this test. */
	ck_assert_int_eq(qc_h_expect_quiet(h2, QC_SECOND), 0);
	ck_no_leaks(h2);
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert(qcs_wait_for(is_done, &p.done, 5 * QC_SECOND));
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(qc_h_free(h2), 0);
	close(p.fds[0]);
	close(p.fds[1]);
}
END_TEST

START_TEST(test_harness_real_clock_quiets_on_cancel)
{
	qc_h_opts o = {.real_clock = true};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	ck_assert(!qc_clock_is_virtual(qc_h_clock(h)));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(
		    qc_h_spawn(h, qc_h_ctx(h), "real", wait_ctx, NULL), 0);
	ck_assert_int_eq(qc_h_advance(h, 1), EINVAL);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, qcs_guard(QC_SECOND)), 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_harness_settle_times_out_on_a_blocked_thread)
{
	qc_h_opts o = {.guard = 50 * QC_MILLISECOND};
	qc_h *h = qc_h_new(&o);
	struct pipe_reader p = {.tid = 0};
	ck_assert_int_eq(pipe(p.fds), 0);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "reader", raw_reader, &p),
			 0);
	ck_assert_int_eq(qc_h_settle(h), ETIMEDOUT);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), ETIMEDOUT);
	ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	close(p.fds[0]);
	close(p.fds[1]);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static Suite *harness_suite(void)
{
	Suite *s = suite_create("harness");
	TCase *tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_harness_new_free_defaults);
	tcase_add_test(tc, test_harness_bad_input_is_einval);
	tcase_add_test(
	    tc, test_harness_second_harness_is_ebusy_and_names_the_first);
	tcase_add_test(tc, test_harness_intercept_time_works_or_says_why);
	tcase_add_test(tc,
		       test_harness_time_multiplier_follows_the_environment);
	tcase_add_test(tc, test_harness_new_out_of_memory_fails_cleanly);
	suite_add_tcase(s, tc);

	tc = tcase_create("time");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc,
		       test_harness_auto_advance_wait_one_hour_returns_at_once);
	tcase_add_test(
	    tc, test_harness_advance_runs_a_30s_retry_loop_exactly_10_times);
	tcase_add_test(tc, test_harness_settle_waits_for_every_thread_to_park);
	tcase_add_test(tc, test_harness_manual_time_never_moves_by_itself);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_harness_spawn_result_reports_fn_return);
	tcase_add_test(tc, test_harness_100_workers_cancel_and_quiet_quickly);
	tcase_add_test(tc, test_harness_raw_pthread_create_is_tracked);
	tcase_add_test(tc, test_harness_pthread_exit_counts_as_exit);
	tcase_add_test(tc, test_harness_pthread_join_parks_the_joiner);
	tcase_add_test(tc, test_harness_group_threads_are_tracked);
	tcase_add_test(tc, test_harness_real_clock_quiets_on_cancel);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_harness_deadlock_is_edeadlk);
	tcase_add_test(tc,
		       test_harness_name_truncated_for_the_os_whole_in_reports);
	tcase_add_test(tc,
		       test_harness_abandoned_harness_does_not_block_the_next);
	tcase_add_test(tc, test_harness_settle_times_out_on_a_blocked_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(harness_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
