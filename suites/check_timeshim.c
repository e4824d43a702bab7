/*
 * check_timeshim.c: virtual time for code that reads the clock and sleeps
 * directly (qc_h_opts.intercept_time, harness/timeshim.c).
 *
 * The legacy modules of legacy.c (a retry loop, a session cache with a
 * janitor, a draining shutdown) run on the harness's virtual clock with
 * exact attempt counts and times, in well under a second of real time.
 * Then each interposed function: virtual reads and sleeps on bubble
 * threads, real ones everywhere else, the kernel's answers to bad input,
 * signals, and sleepers outliving their harness.
 *
 * Real time is read with a raw system call (qcs_now, raw_realtime), which
 * neither quiesce nor libfaketime can fake.
 */
/* quiesce-suite: static */
/* quiesce-suite: sources legacy.c */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/census.h>
#include <quiesce/harness.h>

#include "alloc.h"
#include "legacy.h"
#include "park.h"
#include "support.h"

/* The virtual epoch in whole seconds: where time() starts in a harness. */
#define VSEC ((time_t)(QC_VIRTUAL_EPOCH / QC_SECOND))

/* ------------------------------------------------------------ helpers */

static qc_time raw_realtime(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

static qc_time ts_ns(struct timespec ts)
{
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

/* A harness whose bubble threads' time functions are virtual. */
static qc_h *icept_new(void)
{
	qc_h_opts o = {.intercept_time = true};
	qc_h *h = qc_h_new(&o);
	ck_assert_msg(h != NULL, "qc_h_new(intercept_time): errno %d", errno);
	return h;
}

/* The harness's clock as an offset from its start. */
static qc_duration vnow(qc_h *h)
{
	return qc_now(qc_h_clock(h)) - QC_VIRTUAL_EPOCH;
}

#define ck_no_leaks(h)                                                       \
	do {                                                                 \
		int n_ = qc_h_check_leaks(h);                                \
		ck_assert_msg(n_ == 0, "%d leaks:\n%s", n_, qc_h_report(h)); \
	} while (0)

/* Real time: at once, not the virtual minutes or hours slept. */
#define ck_fast(t0)                                        \
	do {                                               \
		qc_duration took_ = qcs_now() - (t0);      \
		ck_assert_msg(took_ < qcs_hang(QC_SECOND), \
			      "took %lld ms of real time", \
			      (long long)took_ / 1000000); \
	} while (0)

static void on_usr1(int sig)
{
	(void)sig;
}

/* SIGUSR1 runs a handler that does nothing: it only interrupts sleeps. */
static void catch_usr1(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* ------------------------------------------------ legacy: retry loop */

struct attempts {
	atomic_int n;
	int succeed_at; /* the attempt that succeeds; 0: none */
	time_t at[16];	/* time() of each attempt */
	atomic_int stop;
};

static int attempt(void *arg)
{
	struct attempts *a = arg;
	int n = atomic_load(&a->n);
	if (n < 16)
		a->at[n] = time(NULL);
	atomic_store(&a->n, n + 1);
	return n + 1 == a->succeed_at ? 0 : -1;
}

static int run_retry(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct attempts *a = arg;
	return legacy_retry(attempt, a, &a->stop);
}

START_TEST(test_timeshim_retry_gives_up_after_exactly_11_attempts)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	struct attempts a = {.succeed_at = 0};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "retry", run_retry, &a), 0);
	/* Step by step: each 30 s pause ends with exactly one attempt. */
	ck_assert_int_eq(qc_h_advance(h, 29 * QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&a.n), 1);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&a.n), 2);
	ck_assert_int_eq(qc_h_advance(h, 4 * QC_MINUTE), 0);
	ck_assert_int_eq(atomic_load(&a.n), 10);
	int ret;
	ck_assert_int_eq(qc_h_result(h, "retry", &ret), EBUSY);
	ck_assert_int_eq(qc_h_advance(h, 30 * QC_SECOND), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
	ck_assert_int_eq(qc_h_result(h, "retry", &ret), 0);
	ck_assert_int_eq(ret, -1); /* gave up */
	ck_assert_int_eq(atomic_load(&a.n), 11);
	for (int i = 0; i < 11; i++)
		ck_assert_int_eq((long long)a.at[i],
				 (long long)(VSEC + i * LEGACY_RETRY_PAUSE));
	ck_assert_int_eq(vnow(h), 5 * QC_MINUTE);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

START_TEST(test_timeshim_retry_on_the_test_thread_auto_advances)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	/* The test thread is in the bubble: its sleep(30) parks it, and as
	 * the last thread to park it moves the clock itself. */
	struct attempts a = {.succeed_at = 0};
	ck_assert_int_eq(legacy_retry(attempt, &a, NULL), -1);
	ck_assert_int_eq(atomic_load(&a.n), 11);
	ck_assert_int_eq(vnow(h), 5 * QC_MINUTE);

	struct attempts b = {.succeed_at = 4};
	ck_assert_int_eq(legacy_retry(attempt, &b, NULL), 0);
	ck_assert_int_eq(atomic_load(&b.n), 4);
	ck_assert_int_eq((long long)b.at[3],
			 (long long)(VSEC + 5 * 60 + 3 * LEGACY_RETRY_PAUSE));
	ck_assert_int_eq(vnow(h), 5 * QC_MINUTE + 90 * QC_SECOND);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

START_TEST(test_timeshim_retry_notices_cancel_only_after_its_sleep)
{
	qc_h *h = icept_new();
	struct attempts a = {.succeed_at = 0};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "retry", run_retry, &a), 0);
	ck_assert_int_eq(qc_h_advance(h, 45 * QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&a.n), 2);
	/* Asked to stop at +45s, it sleeps on until +1m0s. */
	atomic_store(&a.stop, 1);
	qc_h_cancel(h);
	ck_assert_int_eq(qc_h_expect_quiet(h, 10 * QC_SECOND), ETIMEDOUT);
	const char *rep = qc_h_report(h);
	ck_assert_msg(strstr(rep, "parked in sleep until +1m0s"), "%s", rep);
	ck_assert_int_eq(vnow(h), 55 * QC_SECOND);
	ck_assert_int_eq(qc_h_expect_quiet(h, 30 * QC_SECOND), 0);
	int ret;
	ck_assert_int_eq(qc_h_result(h, "retry", &ret), 0);
	ck_assert_int_eq(ret, -2);
	ck_assert_int_eq(atomic_load(&a.n), 2);
	ck_assert_int_eq(vnow(h), 60 * QC_SECOND);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* --------------------------------------------- legacy: session cache */

START_TEST(test_timeshim_session_expires_after_exactly_10_minutes)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	legacy_cache c;
	legacy_cache_init(&c);
	ck_assert_int_eq(legacy_cache_login(&c, "alice"), 0);
	ck_assert_int_eq(qc_h_advance(h, 9 * QC_MINUTE + 59 * QC_SECOND), 0);
	ck_assert(legacy_cache_valid(&c, "alice"));
	ck_assert_int_eq(legacy_cache_login(&c, "bob"), 0);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0);
	ck_assert(!legacy_cache_valid(&c, "alice"));
	ck_assert(legacy_cache_valid(&c, "bob"));
	ck_assert_int_eq(qc_h_advance(h, 9 * QC_MINUTE + 58 * QC_SECOND), 0);
	ck_assert_int_eq(legacy_cache_sweep(&c), 0);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0);
	ck_assert_int_eq(legacy_cache_sweep(&c), 1); /* bob, at +19m59s */
	ck_assert(!legacy_cache_valid(&c, "bob"));
	legacy_cache_destroy(&c);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

START_TEST(test_timeshim_janitor_evicts_at_its_tenth_and_sixteenth_sweep)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	legacy_cache c;
	legacy_cache_init(&c);
	ck_assert_int_eq(legacy_cache_login(&c, "alice"), 0); /* +0 */
	/* Started as such code starts it: a raw pthread_create. */
	pthread_t janitor;
	ck_assert_int_eq(
	    pthread_create(&janitor, NULL, legacy_cache_janitor, &c), 0);
	ck_assert_int_eq(qc_h_advance(h, 5 * QC_MINUTE + 30 * QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&c.sweeps), 5);
	ck_assert_int_eq(legacy_cache_login(&c, "bob"), 0); /* +5m30s */
	ck_assert_int_eq(qc_h_advance(h, 4 * QC_MINUTE + 29 * QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&c.sweeps), 9);
	ck_assert_int_eq(atomic_load(&c.evicted), 0);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0); /* +10m */
	ck_assert_int_eq(atomic_load(&c.sweeps), 10);
	ck_assert_int_eq(atomic_load(&c.evicted), 1); /* alice */
	/* bob expires at +15m30s: the sweep at +16m finds him. */
	ck_assert_int_eq(qc_h_advance(h, 5 * QC_MINUTE + 59 * QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&c.sweeps), 15);
	ck_assert_int_eq(atomic_load(&c.evicted), 1);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0); /* +16m */
	ck_assert_int_eq(atomic_load(&c.sweeps), 16);
	ck_assert_int_eq(atomic_load(&c.evicted), 2);

	/* Its stop flag is seen only after the current minute's sleep. */
	atomic_store(&c.stop, 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, 59 * QC_SECOND), ETIMEDOUT);
	ck_assert_msg(strstr(qc_h_report(h), "parked in sleep until +17m0s"),
		      "%s", qc_h_report(h));
	ck_assert_int_eq(qc_h_expect_quiet(h, 59 * QC_SECOND), 0);
	ck_assert_int_eq(vnow(h), 17 * QC_MINUTE);
	ck_assert_int_eq(atomic_load(&c.sweeps), 17);
	ck_assert_int_eq(pthread_join(janitor, NULL), 0);
	legacy_cache_destroy(&c);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

/* -------------------------------------------- legacy: shutdown drain */

struct request {
	legacy_server *s;
	unsigned ms;
};

static int run_request(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct request *r = arg;
	return legacy_server_handle(r->s, r->ms);
}

static int run_shutdown(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	return legacy_server_shutdown(arg);
}

START_TEST(test_timeshim_shutdown_drains_a_7500ms_request_in_8_polls)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	legacy_server s;
	legacy_server_init(&s);
	struct request r = {&s, 7500};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "request", run_request, &r),
			 0);
	ck_assert_int_eq(qc_h_settle(h), 0); /* in flight, in usleep */
	ck_assert_int_eq(atomic_load(&s.inflight), 1);
	/* On the test thread: its sleep(1)s and the request's usleep take
	 * turns moving the clock. */
	ck_assert_int_eq(legacy_server_shutdown(&s), 0);
	ck_assert_int_eq(atomic_load(&s.polls), 8);
	ck_assert_int_eq(vnow(h), 8 * QC_SECOND);
	ck_assert_int_eq(legacy_server_handle(&s, 1), -1); /* refused */
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
	int ret;
	ck_assert_int_eq(qc_h_result(h, "request", &ret), 0);
	ck_assert_int_eq(ret, 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

START_TEST(test_timeshim_shutdown_gives_up_after_20_polls)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	legacy_server s;
	legacy_server_init(&s);
	struct request r = {&s, 45000};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "request", run_request, &r),
			 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "shutdown", run_shutdown, &s), 0);
	ck_assert_int_eq(qc_h_advance(h, 19 * QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&s.polls), 19);
	int ret;
	ck_assert_int_eq(qc_h_result(h, "shutdown", &ret), EBUSY);
	ck_assert_int_eq(qc_h_advance(h, QC_SECOND), 0);
	ck_assert_int_eq(qc_h_result(h, "shutdown", &ret), 0);
	ck_assert_int_eq(ret, -1); /* gave up at +20s */
	ck_assert_int_eq(atomic_load(&s.polls), 20);
	ck_assert_int_eq(atomic_load(&s.inflight), 1);
	/* The request still ends on time, 25 s later. */
	ck_assert_int_eq(qc_h_expect_quiet(h, 25 * QC_SECOND), 0);
	ck_assert_int_eq(vnow(h), 45 * QC_SECOND);
	ck_assert_int_eq(atomic_load(&s.inflight), 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

/* ------------------------------------------------------------- reads */

/* Every interposed read, on the calling thread. */
struct reads {
	time_t time;
	struct timeval tv;
	struct timespec rt, mono, rt_coarse, mono_coarse, boot, raw, utc;
	struct timespec cpu;
};

static void read_all(struct reads *r)
{
	r->time = time(NULL);
	gettimeofday(&r->tv, NULL);
	clock_gettime(CLOCK_REALTIME, &r->rt);
	clock_gettime(CLOCK_MONOTONIC, &r->mono);
	clock_gettime(CLOCK_REALTIME_COARSE, &r->rt_coarse);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &r->mono_coarse);
	clock_gettime(CLOCK_BOOTTIME, &r->boot);
	clock_gettime(CLOCK_MONOTONIC_RAW, &r->raw);
	timespec_get(&r->utc, TIME_UTC);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &r->cpu);
}

static void ck_reads_at(const struct reads *r, qc_time t)
{
	ck_assert_int_eq((long long)r->time, (long long)(t / QC_SECOND));
	ck_assert_int_eq((long long)r->tv.tv_sec, (long long)(t / QC_SECOND));
	ck_assert_int_eq((long long)r->tv.tv_usec,
			 (long long)(t % QC_SECOND / 1000));
	ck_assert_int_eq(ts_ns(r->rt), t);
	ck_assert_int_eq(ts_ns(r->mono), t);
	ck_assert_int_eq(ts_ns(r->rt_coarse), t);
	ck_assert_int_eq(ts_ns(r->mono_coarse), t);
	ck_assert_int_eq(ts_ns(r->boot), t);
	ck_assert_int_eq(ts_ns(r->raw), t);
	ck_assert_int_eq(ts_ns(r->utc), t);
	/* CPU time is not covered: real, and small. */
	ck_assert_int_lt(ts_ns(r->cpu), QC_HOUR);
}

static int read_in_thread(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	read_all(arg);
	return 0;
}

static void *read_in_pthread(void *arg)
{
	read_all(arg);
	return NULL;
}

START_TEST(test_timeshim_reads_are_virtual_on_bubble_threads)
{
	qc_h *h = icept_new();
	qc_time t = QC_VIRTUAL_EPOCH;
	struct reads r;
	read_all(&r);
	ck_reads_at(&r, t);

	ck_assert_int_eq(qc_h_advance(h, 90 * QC_MINUTE + 250 * QC_MILLISECOND +
					     7 * QC_MICROSECOND + 3),
			 0);
	t += 90 * QC_MINUTE + 250 * QC_MILLISECOND + 7 * QC_MICROSECOND + 3;
	read_all(&r);
	ck_reads_at(&r, t);

	struct reads s, p;
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "reader", read_in_thread, &s), 0);
	pthread_t pt;
	ck_assert_int_eq(pthread_create(&pt, NULL, read_in_pthread, &p), 0);
	ck_assert_int_eq(pthread_join(pt, NULL), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
	ck_reads_at(&s, t);
	ck_reads_at(&p, t);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* What a thread sees of real time: differences from the raw clocks. */
struct real_probe {
	qc_duration time_off, rt_off, mono_off, gtod_off;
	qc_duration usleep_took;
};

static qc_duration absdiff(qc_time a, qc_time b)
{
	return a > b ? a - b : b - a;
}

static void probe_real(struct real_probe *p)
{
	struct timespec ts;
	struct timeval tv;
	p->time_off = absdiff((qc_time)time(NULL) * QC_SECOND, raw_realtime());
	clock_gettime(CLOCK_REALTIME, &ts);
	p->rt_off = absdiff(ts_ns(ts), raw_realtime());
	clock_gettime(CLOCK_MONOTONIC, &ts);
	p->mono_off = absdiff(ts_ns(ts), qcs_now());
	gettimeofday(&tv, NULL);
	p->gtod_off =
	    absdiff((qc_time)tv.tv_sec * QC_SECOND + (qc_time)tv.tv_usec * 1000,
		    raw_realtime());
	qc_time t0 = qcs_now();
	usleep(20000);
	p->usleep_took = qcs_now() - t0;
}

static void ck_real(const struct real_probe *p)
{
	/* Generous: only "real, not the year 2000" matters. */
	ck_assert_int_lt(p->time_off, 2 * QC_SECOND);
	ck_assert_int_lt(p->rt_off, QC_SECOND);
	ck_assert_int_lt(p->mono_off, QC_SECOND);
	ck_assert_int_lt(p->gtod_off, QC_SECOND);
	ck_assert_int_ge(p->usleep_took, 20 * QC_MILLISECOND);
}

struct baseline {
	int go[2];
	struct real_probe p;
};

/* A thread from before qc_h_new: waits (raw read) for the go, probes. */
static void *baseline_main(void *arg)
{
	struct baseline *b = arg;
	char c;
	if (read(b->go[0], &c, 1) == 1)
		probe_real(&b->p);
	return NULL;
}

static void *untracked_main(void *arg)
{
	probe_real(arg);
	return NULL;
}

START_TEST(test_timeshim_non_bubble_threads_see_real_time)
{
	struct baseline b;
	ck_assert_int_eq(pipe(b.go), 0);
	pthread_t base;
	ck_assert_int_eq(pthread_create(&base, NULL, baseline_main, &b), 0);

	qc_h *h = icept_new();
	ck_assert_int_eq(write(b.go[1], "g", 1), 1);
	ck_assert_int_eq(pthread_join(base, NULL), 0);
	ck_real(&b.p);

	struct real_probe u;
	pthread_t t;
	ck_assert_int_eq(
	    qc__thread_create_untracked(&t, NULL, untracked_main, &u), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_real(&u);

	/* Their sleeps did not move the virtual clock. */
	ck_assert_int_eq(vnow(h), 0);
	ck_assert_int_eq((long long)time(NULL), (long long)VSEC);
	ck_assert_int_eq(qc_h_free(h), 0);
	close(b.go[0]);
	close(b.go[1]);
}
END_TEST

static int probe_in_thread(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	probe_real(arg);
	return 0;
}

START_TEST(test_timeshim_real_time_without_a_harness_or_intercept_time)
{
	struct real_probe p;
	probe_real(&p); /* no harness */
	ck_real(&p);

	qc_h *h = qc_h_new(NULL); /* intercept_time off */
	ck_assert_ptr_nonnull(h);
	probe_real(&p);
	ck_real(&p);
	struct real_probe s;
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "prober", probe_in_thread, &s), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_real(&s);
	ck_assert_int_eq(vnow(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);

	/* After an intercepting harness is freed, real again. */
	h = icept_new();
	ck_assert_int_eq((long long)time(NULL), (long long)VSEC);
	ck_assert_int_eq(qc_h_free(h), 0);
	probe_real(&p);
	ck_real(&p);
}
END_TEST

/* Waits until thread tid is blocked in a virtual sleep's futex(2) wait
 * (the one with a timeout: a mutex's has none). A signal sent earlier,
 * between its park and its wait, would be handled before the wait began
 * and interrupt nothing (as with a real sleep). */
static bool spin_until_in_futex(pid_t tid, qc_duration guard)
{
	qc_time end = qcs_now() + qcs_hang(guard);
	for (;;) {
		qc_thread_info info;
		if (qc_census_thread(0, tid, &info) == 0 &&
		    info.syscall == SYS_futex && info.args[3] != 0)
			return true;
		if (qcs_now() > end)
			return false;
		sched_yield();
	}
}

/* Waits (yielding, on the raw clock) until *flag is set; false after
 * guard. Not qcs_wait_for: its naps would be virtual sleeps here, which
 * end only once every other bubble thread is parked. */
static bool spin_until(atomic_int *flag, qc_duration guard)
{
	qc_time end = qcs_now() + qcs_hang(guard);
	while (!atomic_load(flag)) {
		if (qcs_now() > end)
			return false;
		sched_yield();
	}
	return true;
}

struct blocker {
	int fds[2];
	atomic_int in_read;
};

/* Blocks in a raw read(2): never parks, so only the guard ends a wait. */
static int block_in_read(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct blocker *b = arg;
	atomic_store(&b->in_read, 1);
	char c;
	return read(b->fds[0], &c, 1) == 1 ? 0 : -1;
}

START_TEST(test_timeshim_real_clock_and_guard_stay_real_on_bubble_threads)
{
	qc_h_opts o = {.intercept_time = true, .guard = 200 * QC_MILLISECOND};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	/* qc_clock_real is CLOCK_MONOTONIC, never the virtual clock. */
	ck_assert_int_lt(absdiff(qc_now(qc_clock_real()), qcs_now()),
			 QC_SECOND);
	qc_time t0 = qcs_now();
	qc_ctx *real = qc_with_timeout(qc_background(), 50 * QC_MILLISECOND);
	ck_assert_int_eq(qc_wait(real), ETIMEDOUT);
	ck_assert_int_ge(qcs_now() - t0, 50 * QC_MILLISECOND);
	qc_release(real);

	/* The guard is real time too. */
	struct blocker b = {.in_read = 0};
	ck_assert_int_eq(pipe(b.fds), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "reader", block_in_read, &b), 0);
	ck_assert(spin_until(&b.in_read, QC_SECOND));
	t0 = qcs_now();
	ck_assert_int_eq(qc_h_settle(h), ETIMEDOUT);
	qc_duration took = qcs_now() - t0;
	ck_assert_int_ge(took, qc_h_time_multiplier() * 200 * QC_MILLISECOND);
	ck_assert_int_eq(vnow(h), 0);
	ck_assert_int_eq(write(b.fds[1], "x", 1), 1);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	close(b.fds[0]);
	close(b.fds[1]);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* ------------------------------------------------------------ sleeps */

START_TEST(test_timeshim_sleeps_are_exact_on_the_virtual_clock)
{
	qc_time t0 = qcs_now();
	qc_h *h = icept_new();
	struct timespec ts = {1, 500000000}, rem = {42, 42};
	ck_assert_int_eq(nanosleep(&ts, &rem), 0);
	ck_assert_int_eq(vnow(h), 1500 * QC_MILLISECOND);
	ck_assert_int_eq(rem.tv_sec, 42); /* untouched, as by the kernel */
	ck_assert_int_eq(usleep(250000), 0);
	ck_assert_int_eq(vnow(h), 1750 * QC_MILLISECOND);
	ck_assert_int_eq(sleep(3), 0);
	ck_assert_int_eq(vnow(h), 4750 * QC_MILLISECOND);
	struct timespec ten = {0, 10000000};
	ck_assert_int_eq(thrd_sleep(&ten, NULL), 0);
	ck_assert_int_eq(vnow(h), 4760 * QC_MILLISECOND);
	ck_assert_int_eq(sleep(0), 0);
	ck_assert_int_eq(usleep(0), 0);
	ck_assert_int_eq(vnow(h), 4760 * QC_MILLISECOND);
	/* An hour of sleep(1)s, as a polling loop would. */
	for (int i = 0; i < 3600; i++)
		ck_assert_int_eq(sleep(1), 0);
	ck_assert_int_eq(vnow(h), QC_HOUR + 4760 * QC_MILLISECOND);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
	ck_fast(t0);
}
END_TEST

START_TEST(test_timeshim_clock_nanosleep_relative_and_abstime)
{
	qc_h *h = icept_new();
	qc_time start = QC_VIRTUAL_EPOCH;
	/* TIMER_ABSTIME on the wall clock: an hour after the start. */
	struct timespec at = {(time_t)(start / QC_SECOND) + 3600, 0};
	ck_assert_int_eq(
	    clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL), 0);
	ck_assert_int_eq(vnow(h), QC_HOUR);
	/* ... and on the monotonic clock, which reads the same numbers. */
	struct timespec mono;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	mono.tv_sec += 30;
	mono.tv_nsec += 5;
	ck_assert_int_eq(
	    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &mono, NULL), 0);
	ck_assert_int_eq(vnow(h), QC_HOUR + 30 * QC_SECOND + 5);
	/* A time already past returns at once. */
	ck_assert_int_eq(
	    clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL), 0);
	ck_assert_int_eq(vnow(h), QC_HOUR + 30 * QC_SECOND + 5);
	/* Relative, on CLOCK_BOOTTIME. */
	struct timespec two = {2, 0};
	ck_assert_int_eq(clock_nanosleep(CLOCK_BOOTTIME, 0, &two, NULL), 0);
	ck_assert_int_eq(vnow(h), QC_HOUR + 32 * QC_SECOND + 5);

	/* It returns an errno value, never -1, and leaves errno alone. */
	errno = 0;
	struct timespec bad_ns = {0, QC_SECOND}, neg_ns = {0, -1},
			neg_s = {-1, 0};
	ck_assert_int_eq(clock_nanosleep(CLOCK_REALTIME, 0, &bad_ns, NULL),
			 EINVAL);
	ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &neg_ns, NULL),
			 EINVAL);
	ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &neg_s, NULL),
			 EINVAL);
	ck_assert_int_eq(
	    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &neg_s, NULL),
	    EINVAL);
	ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, NULL, NULL),
			 EFAULT);
	/* The kernel cannot sleep on the coarse clocks: nor can this. */
	ck_assert_int_eq(clock_nanosleep(CLOCK_REALTIME_COARSE, 0, &two, NULL),
			 ENOTSUP);
	ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &two, NULL),
			 ENOTSUP);
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(vnow(h), QC_HOUR + 32 * QC_SECOND + 5);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_timeshim_bad_sleeps_are_einval_and_sleep_nothing)
{
	qc_h *h = icept_new();
	struct timespec bad[] = {{0, -1}, {0, QC_SECOND}, {-1, 0}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		ck_assert_int_eq(nanosleep(&bad[i], NULL), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(thrd_sleep(&bad[i], NULL), -2);
	}
	errno = 0;
	ck_assert_int_eq(nanosleep(NULL, NULL), -1);
	ck_assert_int_eq(errno, EFAULT);
	struct timeval neg_s = {-1, 0}, neg_us = {0, -1};
	errno = 0;
	ck_assert_int_eq(select(0, NULL, NULL, NULL, &neg_s), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(select(0, NULL, NULL, NULL, &neg_us), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(vnow(h), 0);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

START_TEST(test_timeshim_poll_and_select_without_fds_sleep_virtually)
{
	qc_h *h = icept_new();
	ck_assert_int_eq(poll(NULL, 0, 1500), 0);
	ck_assert_int_eq(vnow(h), 1500 * QC_MILLISECOND);
	ck_assert_int_eq(poll(NULL, 0, 0), 0);
	ck_assert_int_eq(vnow(h), 1500 * QC_MILLISECOND);
	struct timeval tv = {2, 500000};
	ck_assert_int_eq(select(0, NULL, NULL, NULL, &tv), 0);
	ck_assert_int_eq(vnow(h), 4 * QC_SECOND);
	ck_assert_int_eq(tv.tv_sec, 0); /* Linux leaves the time not slept */
	ck_assert_int_eq(tv.tv_usec, 0);
	struct timeval big = {0, 1500000}; /* Linux takes it as 1.5 s */
	ck_assert_int_eq(select(0, NULL, NULL, NULL, &big), 0);
	ck_assert_int_eq(vnow(h), 5500 * QC_MILLISECOND);

	/* With fds they are the real calls. */
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	struct pollfd p = {.fd = fds[0], .events = POLLIN};
	qc_time t0 = qcs_now();
	ck_assert_int_eq(poll(&p, 1, 30), 0);
	ck_assert_int_ge(qcs_now() - t0, 30 * QC_MILLISECOND);
	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	ck_assert_int_eq(poll(&p, 1, 10000), 1);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(fds[0], &r);
	struct timeval ten = {10, 0};
	ck_assert_int_eq(select(fds[0] + 1, &r, NULL, NULL, &ten), 1);
	ck_assert_int_eq(vnow(h), 5500 * QC_MILLISECOND);
	close(fds[0]);
	close(fds[1]);
	ck_no_leaks(h);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

/* Polls with no fds and no timeout (pause-like) until told to stop. */
struct forever {
	pthread_t self;
	_Atomic pid_t tid;
	atomic_int started, stop, eintr;
};

static int poll_forever(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct forever *f = arg;
	f->self = pthread_self();
	atomic_store(&f->tid, (pid_t)syscall(SYS_gettid));
	atomic_store(&f->started, 1);
	while (!atomic_load(&f->stop)) {
		if (poll(NULL, 0, -1) == -1 && errno == EINTR)
			atomic_fetch_add(&f->eintr, 1);
	}
	return 0;
}

START_TEST(test_timeshim_poll_forever_is_edeadlk_and_a_signal_ends_it)
{
	catch_usr1();
	qc_h *h = icept_new();
	struct forever f = {.started = 0};
	ck_assert_int_eq(qc_h_spawn(h, qc_h_ctx(h), "pauser", poll_forever, &f),
			 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_HOUR), EDEADLK);
	const char *rep = qc_h_report(h);
	ck_assert_msg(strstr(rep, "parked in poll (no deadline)"), "%s", rep);
	ck_assert_int_eq(vnow(h), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	/* The report's stack capture signalled it, but did not end its
	 * poll: a report must not change what the code does next. */
	ck_assert_int_eq(atomic_load(&f.eintr), 0);
	ck_assert(atomic_load(&f.started));
	atomic_store(&f.stop, 1);
	ck_assert(spin_until_in_futex(atomic_load(&f.tid), QC_SECOND));
	ck_assert_int_eq(pthread_kill(f.self, SIGUSR1), 0);
	/* The harness cannot see a signal coming: until the thread runs,
	 * it is parked. */
	ck_assert(spin_until(&f.eintr, QC_SECOND));
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(atomic_load(&f.eintr), 1);
	ck_assert_int_eq(vnow(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

struct interrupted {
	pthread_t self;
	_Atomic pid_t tid;
	atomic_int ready, slept, napped;
	unsigned left;		/* sleep(100)'s result */
	int ns_ret, ns_errno;	/* nanosleep's */
	struct timespec ns_rem; /* ... and its time left */
};

static int sleep_interrupted(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	struct interrupted *s = arg;
	s->self = pthread_self();
	atomic_store(&s->tid, (pid_t)syscall(SYS_gettid));
	atomic_store(&s->ready, 1);
	s->left = sleep(100);
	atomic_store(&s->slept, 1);
	struct timespec ts = {60, 0};
	s->ns_ret = nanosleep(&ts, &s->ns_rem);
	s->ns_errno = errno;
	atomic_store(&s->napped, 1);
	return 0;
}

START_TEST(test_timeshim_a_signal_interrupts_a_virtual_sleep)
{
	catch_usr1();
	qc_h_opts o = {.intercept_time = true, .manual_time = true};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	struct interrupted s = {.ready = 0};
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "sleeper", sleep_interrupted, &s), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(qc_h_advance(h, 30 * QC_SECOND), 0);
	ck_assert(atomic_load(&s.ready));
	ck_assert(spin_until_in_futex(atomic_load(&s.tid), QC_SECOND));
	ck_assert_int_eq(pthread_kill(s.self, SIGUSR1), 0);
	ck_assert(spin_until(&s.slept, QC_SECOND));
	/* Now in the nanosleep: 20.25 s of it, then the signal. */
	ck_assert_int_eq(qc_h_settle(h), 0);
	ck_assert_int_eq(qc_h_advance(h, 20250 * QC_MILLISECOND), 0);
	ck_assert(spin_until_in_futex(atomic_load(&s.tid), QC_SECOND));
	ck_assert_int_eq(pthread_kill(s.self, SIGUSR1), 0);
	ck_assert(spin_until(&s.napped, QC_SECOND));
	ck_assert_int_eq(qc_h_expect_quiet(h, 0), 0);
	ck_assert_int_eq(s.left, 70);
	ck_assert_int_eq(s.ns_ret, -1);
	ck_assert_int_eq(s.ns_errno, EINTR);
	ck_assert_int_eq(ts_ns(s.ns_rem), 39750 * QC_MILLISECOND);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

struct orphan {
	int done;	  /* set last (atomic builtins), for qcs_join_within */
	qc_duration took; /* real time of its 300 ms nanosleep */
	qc_duration time_off;
};

/* Sleeps 300 ms on a clock nobody moves (manual_time). */
static void *orphan_main(void *arg)
{
	struct orphan *o = arg;
	qc_time t0 = qcs_now();
	struct timespec ts = {0, 300000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	o->took = qcs_now() - t0;
	o->time_off = absdiff((qc_time)time(NULL) * QC_SECOND, raw_realtime());
	qcs_flag_raise(&o->done);
	return NULL;
}

START_TEST(test_timeshim_a_sleeper_outliving_its_harness_finishes_in_real_time)
{
	qc_h_opts o = {.intercept_time = true, .manual_time = true};
	qc_h *h = qc_h_new(&o);
	ck_assert_ptr_nonnull(h);
	struct orphan s = {.done = 0};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, orphan_main, &s), 0);
	ck_assert_int_eq(qc_h_settle(h), 0);
	qc_time t0 = qcs_now();
	ck_assert_int_eq(qc_h_free(h), EBUSY); /* abandoned */
	ck_assert(qcs_join_within(t, &s.done, 5 * QC_SECOND));
	ck_assert_int_ge(qcs_now() - t0, 300 * QC_MILLISECOND);
	ck_assert_int_ge(s.took, 300 * QC_MILLISECOND);
	ck_assert_int_lt(s.time_off, 2 * QC_SECOND); /* real time now */
}
END_TEST

START_TEST(test_timeshim_no_timer_memory_sleeps_nothing_and_says_so)
{
	qc_h *h = icept_new();
	qc__alloc_fail_after(0);
	ck_assert_int_eq(sleep(5), 5);
	struct timespec ts = {1, 0};
	errno = 0;
	ck_assert_int_eq(nanosleep(&ts, NULL), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL),
			 ENOMEM);
	errno = 0;
	ck_assert_int_eq(poll(NULL, 0, 10), -1);
	ck_assert_int_eq(errno, ENOMEM);
	qc__alloc_fail_after(-1);
	ck_assert_int_eq(vnow(h), 0);
	ck_assert_int_eq(sleep(5), 0);
	ck_assert_int_eq(vnow(h), 5 * QC_SECOND);
	ck_assert_int_eq(qc_h_free(h), 0);
}
END_TEST

static Suite *timeshim_suite(void)
{
	Suite *s = suite_create("timeshim");
	TCase *tc = tcase_create("legacy");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc,
		       test_timeshim_retry_gives_up_after_exactly_11_attempts);
	tcase_add_test(tc,
		       test_timeshim_retry_on_the_test_thread_auto_advances);
	tcase_add_test(tc,
		       test_timeshim_retry_notices_cancel_only_after_its_sleep);
	tcase_add_test(tc,
		       test_timeshim_session_expires_after_exactly_10_minutes);
	tcase_add_test(
	    tc, test_timeshim_janitor_evicts_at_its_tenth_and_sixteenth_sweep);
	tcase_add_test(
	    tc, test_timeshim_shutdown_drains_a_7500ms_request_in_8_polls);
	tcase_add_test(tc, test_timeshim_shutdown_gives_up_after_20_polls);
	suite_add_tcase(s, tc);

	tc = tcase_create("reads");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_timeshim_reads_are_virtual_on_bubble_threads);
	tcase_add_test(tc, test_timeshim_non_bubble_threads_see_real_time);
	tcase_add_test(
	    tc, test_timeshim_real_time_without_a_harness_or_intercept_time);
	tcase_add_test(
	    tc, test_timeshim_real_clock_and_guard_stay_real_on_bubble_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("sleeps");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_timeshim_sleeps_are_exact_on_the_virtual_clock);
	tcase_add_test(tc, test_timeshim_clock_nanosleep_relative_and_abstime);
	tcase_add_test(tc,
		       test_timeshim_bad_sleeps_are_einval_and_sleep_nothing);
	tcase_add_test(
	    tc, test_timeshim_poll_and_select_without_fds_sleep_virtually);
	tcase_add_test(
	    tc, test_timeshim_poll_forever_is_edeadlk_and_a_signal_ends_it);
	tcase_add_test(tc, test_timeshim_a_signal_interrupts_a_virtual_sleep);
	tcase_add_test(
	    tc,
	    test_timeshim_a_sleeper_outliving_its_harness_finishes_in_real_time);
	tcase_add_test(
	    tc, test_timeshim_no_timer_memory_sleeps_nothing_and_says_so);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(timeshim_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
