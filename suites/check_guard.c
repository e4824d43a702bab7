/*
 * check_guard.c: quiesce's own real-time measurements stay real when the
 * process runs under libfaketime, and its virtual time stays exact.
 *
 * The faketime variant (quiesce.guard.faketime) runs this binary with
 * libfaketime preloaded and FAKETIME="+0 x100": libc's clocks then run 100
 * times fast and its sleeps 100 times short. The harness's guard must still
 * take its full length of kernel time (quiesce reads the kernel clock with
 * a raw system call and waits with raw futex calls), while the process's
 * CLOCK_MONOTONIC, and qc_clock_real which follows it, do run fast: if they
 * did not, libfaketime would not be working and this test would prove
 * nothing, so that fails too. Run plainly, the same tests check the
 * unfaked case. Kernel time here is syscall(SYS_clock_gettime), which
 * neither libfaketime nor quiesce intercepts.
 */
/* quiesce-suite: faketime +0 x100 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/harness.h>
#include <quiesce/wait.h>

#include "support.h"

#define GUARD (300 * QC_MILLISECOND)

/* True when this run is the faketime variant. */
static bool faked(void)
{
	const char *ft = getenv("FAKETIME");
	return ft && *ft;
}

static qc_time kernel_now(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

/* The process's CLOCK_MONOTONIC: libc's (libfaketime's, when preloaded). */
static qc_time libc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

/* Waits d of kernel time without any libc sleep (which would be faked). */
static void kernel_wait(qc_duration d)
{
	struct timespec ts = {(time_t)(d / QC_SECOND), (long)(d % QC_SECOND)};
	while (syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR)
		;
}

struct blocker {
	int fds[2];
};

/* Blocks in a raw read(2): never parks, so only the guard ends a wait. */
static int block_in_read(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct blocker *b = arg;
	char c;
	return read(b->fds[0], &c, 1) == 1 ? 0 : -1;
}

/* What one guarded wait took, in kernel time and in libc's faked time. */
struct took {
	qc_duration kernel, libc;
};

static void ck_guard_took(struct took t)
{
	qc_duration guard = GUARD * qc_h_time_multiplier();
	ck_assert_msg(t.kernel >= guard,
		      "the guard took %lld ms of kernel time, not %lld",
		      (long long)(t.kernel / QC_MILLISECOND),
		      (long long)(guard / QC_MILLISECOND));
	ck_assert_int_lt(t.kernel, guard + qcs_guard(5 * QC_SECOND));
	if (faked())
		/* x100: the same wait reads as ~30 s on libc's clock. */
		ck_assert_msg(t.libc >= 10 * t.kernel,
			      "libc's clock moved %lld ms in %lld ms: is "
			      "libfaketime preloaded?",
			      (long long)(t.libc / QC_MILLISECOND),
			      (long long)(t.kernel / QC_MILLISECOND));
}

START_TEST(test_guard_settle_waits_the_guard_in_kernel_time)
{
	qc_h_opts o = {.guard = GUARD};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	struct blocker b;
	ck_assert_int_eq(pipe(b.fds), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "reader", block_in_read, &b), 0);
	qc_time k0 = kernel_now(), l0 = libc_now();
	ck_assert_int_eq(qc_h_settle(h), ETIMEDOUT);
	struct took t = {kernel_now() - k0, libc_now() - l0};
	ck_guard_took(t);
	ck_assert_int_eq(write(b.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	close(b.fds[0]);
	close(b.fds[1]);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_guard_expect_quiet_waits_the_guard_in_kernel_time)
{
	qc_h_opts o = {.guard = GUARD};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	struct blocker b;
	ck_assert_int_eq(pipe(b.fds), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "reader", block_in_read, &b), 0);
	qc_h_cancel(h);
	qc_time k0 = kernel_now(), l0 = libc_now();
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_HOUR), ETIMEDOUT);
	struct took t = {kernel_now() - k0, libc_now() - l0};
	ck_assert_msg(strstr(qc_h_report(h), "\"reader\""), "%s",
		      qc_h_report(h));
	ck_guard_took(t);
	/* Virtual time did not move: the thread never parked. */
	ck_assert_int_eq(qc_now(qc_h_clock(h)), QC_VIRTUAL_EPOCH);
	ck_assert_int_eq(write(b.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_HOUR), 0);
	close(b.fds[0]);
	close(b.fds[1]);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* The process's clocks, and libc's sleeps, are faked: proof that this run
 * really is under libfaketime (or really is not). */
START_TEST(test_guard_libfaketime_is_in_effect_or_absent)
{
	qc_time k0 = kernel_now(), l0 = libc_now();
	kernel_wait(50 * QC_MILLISECOND);
	qc_duration k = kernel_now() - k0, l = libc_now() - l0;
	qc_time k1 = kernel_now();
	struct timespec one = {1, 0};
	ck_assert_int_eq(nanosleep(&one, NULL), 0);
	qc_duration slept = kernel_now() - k1;
	if (faked()) {
		ck_assert_msg(l >= 20 * k,
			      "libc's CLOCK_MONOTONIC moved %lld "
			      "us in %lld us: not x100",
			      (long long)(l / 1000), (long long)(k / 1000));
		ck_assert_msg(slept < 200 * QC_MILLISECOND,
			      "nanosleep(1 s) took %lld ms of kernel time",
			      (long long)(slept / QC_MILLISECOND));
	} else {
		ck_assert_int_lt(l, 2 * k + 50 * QC_MILLISECOND);
		ck_assert_int_ge(slept, QC_SECOND);
	}
}
END_TEST

/* qc_clock_real follows the process's CLOCK_MONOTONIC, faked or not, and
 * its deadlines fire on that clock. */
START_TEST(test_guard_real_clock_follows_the_process_clock)
{
	qc_clock *real = qc_clock_real();
	qc_time k0 = kernel_now(), r0 = qc_now(real);
	kernel_wait(50 * QC_MILLISECOND);
	qc_duration k = kernel_now() - k0, r = qc_now(real) - r0;
	if (faked())
		ck_assert_msg(r >= 20 * k,
			      "qc_clock_real moved %lld us in %lld us",
			      (long long)(r / 1000), (long long)(k / 1000));
	else
		ck_assert_int_lt(r, 2 * k + 50 * QC_MILLISECOND);

	/* A 2 s deadline on it: 20 ms of kernel time at x100. */
	qc_duration timeout = faked() ? 2 * QC_SECOND : 100 * QC_MILLISECOND;
	k0 = kernel_now();
	qc_ctx *ctx = qc_with_timeout(qc_background(), timeout);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(qc_wait(ctx), ETIMEDOUT);
	k = kernel_now() - k0;
	if (faked())
		ck_assert_msg(k < QC_SECOND, "a 2 s deadline took %lld ms",
			      (long long)(k / QC_MILLISECOND));
	else
		ck_assert_int_ge(k, timeout);
	qc_release(ctx);
}
END_TEST

/* True when libquiesce is a shared library here (quiesce.guard), false
 * when linked into the executable (quiesce.guard_static). */
static bool shared_libquiesce(void)
{
	Dl_info d;
	return dladdr((void *)(uintptr_t)qc_h_new_at, &d) && d.dli_fname &&
	       strstr(d.dli_fname, "libquiesce.so");
}

/* intercept_time works, with exact virtual time that libfaketime does not
 * touch; except under libfaketime with the shared libquiesce, where the
 * preloaded library's time functions come first: refused (ENOTSUP). With
 * the static one the executable's own definitions still come first. */
START_TEST(test_guard_intercept_time_is_exact_or_refused)
{
	qc_h_opts o = {.intercept_time = true};
	errno = 0;
	qc_h *h = qc_h_new(&o);
	if (faked() && shared_libquiesce()) {
		ck_assert_ptr_null(h);
		ck_assert_int_eq(errno, ENOTSUP);
		return;
	}
	ck_assert_msg(h != NULL, "qc_h_new(intercept_time): errno %d", errno);
	qc_time k0 = kernel_now();
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(sleep(30), 0);
	ck_assert_int_eq((long long)time(NULL),
			 (long long)(QC_VIRTUAL_EPOCH / QC_SECOND + 300));
	struct timespec ts;
	ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	ck_assert_int_eq((qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec,
			 QC_VIRTUAL_EPOCH + 5 * QC_MINUTE);
	ck_assert_int_lt(kernel_now() - k0, qcs_hang(QC_SECOND));
	/* qc_clock_real stays the process's clock on a bubble thread, also
	 * where a sanitizer's clock_gettime calls quiesce's back. */
	qc_time real = qc_now(qc_clock_real()), kernel = kernel_now();
	qc_duration off = real > kernel ? real - kernel : kernel - real;
	if (faked()) /* near wall time, far from the virtual year 2000 */
		ck_assert_int_gt(real, QC_VIRTUAL_EPOCH + QC_HOUR * 24 * 365);
	else
		ck_assert_int_lt(off, QC_SECOND);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* Waits on its context as the lowest-priority thread (SCHED_IDLE): once
 * woken, it runs only when the hog on its CPU lets it. */
static int idle_waiter(qc_ctx *ctx, void *arg)
{
	(void)arg;
	struct sched_param sp = {0};
	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
		return -1;
	return qc_wait(ctx) == ECANCELED ? 0 : -1;
}

/* A loaded machine is no hang: a cancelled thread that waits for a CPU
 * behind a busy process (here one pinned to its CPU, with the thread at
 * SCHED_IDLE) stretches the guard instead of failing the test. */
START_TEST(test_guard_stretches_for_a_thread_starved_of_cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
	qc_h_opts o = {.guard = 20 * QC_MILLISECOND};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "idle", idle_waiter, NULL),
			 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	pid_t hog = fork();
	ck_assert_int_ge(hog, 0);
	if (hog == 0)
		for (;;)
			; /* on the same CPU: the affinity is inherited */
	qc_time t0 = kernel_now();
	qc_h_cancel(h);
	int e = qc_h_expect_quiet(h, QC_SECOND);
	qc_duration took = kernel_now() - t0;
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	ck_assert_msg(e == 0, "%s", qc_h_report(h));
	ck_assert_int_eq(qc_h_result(h, "idle", &e), 0);
	ck_assert_int_eq(e, 0);
	if (getenv("QC_SHOW_TIMES"))
		fprintf(stderr, "starved thread quiet after %lld us\n",
			(long long)(took / 1000));
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* A guard of "forever" is accepted, and its stretch cap saturates (no
 * overflow for UBSan to catch). */
START_TEST(test_guard_forever_is_accepted)
{
	qc_h_opts o = {.guard = QC_TIME_NEVER};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static Suite *guard_suite(void)
{
	Suite *s = suite_create("guard");
	TCase *tc = tcase_create("guard");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_guard_settle_waits_the_guard_in_kernel_time);
	tcase_add_test(tc,
		       test_guard_expect_quiet_waits_the_guard_in_kernel_time);
	tcase_add_test(tc, test_guard_libfaketime_is_in_effect_or_absent);
	tcase_add_test(tc, test_guard_real_clock_follows_the_process_clock);
	tcase_add_test(tc, test_guard_intercept_time_is_exact_or_refused);
	tcase_add_test(tc, test_guard_stretches_for_a_thread_starved_of_cpu);
	tcase_add_test(tc, test_guard_forever_is_accepted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(guard_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
