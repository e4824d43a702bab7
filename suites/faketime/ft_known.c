/*
 * ft_known: the behaviour of libfaketime 0.9.10 (Debian 12) that quiesce is
 * designed around (quiesce/faketime.h), checked so that a different
 * libfaketime shows up as a failing test rather than as odd behaviour.
 *
 * Runs only under libfaketime with FAKETIME="+0 x100" (CTest
 * quiesce.faketime.known sets both); run plainly it fails and says so.
 * A plain program: no libquiesce, whose own time functions would come
 * between. Kernel time is syscall(SYS_clock_gettime), which libfaketime
 * does not intercept. Prints one line per check; exits 0 when all hold.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MS  1000000LL
#define SEC 1000000000LL

static int failures;

static long long kernel_ns(clockid_t id)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, id, &ts);
	return (long long)ts.tv_sec * SEC + ts.tv_nsec;
}

static long long libc_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ms: the kernel time it took, or -1 when that means nothing. */
static void check(bool ok, const char *what, long long ms)
{
	if (ms >= 0)
		printf("%s: %s (%lld ms of kernel time)\n",
		       ok ? "ok" : "FAILED", what, ms);
	else
		printf("%s: %s\n", ok ? "ok" : "FAILED", what);
	if (!ok)
		failures++;
}

/* A one-second sleep of libc must take about 10 ms of kernel time at x100:
 * between 2 ms and 200 ms. */
static void sleep_is_fast(const char *what, void (*fn)(void))
{
	long long t0 = kernel_ns(CLOCK_MONOTONIC);
	fn();
	long long ms = (kernel_ns(CLOCK_MONOTONIC) - t0) / MS;
	check(ms >= 2 && ms < 200, what, ms);
}

static void do_nanosleep(void)
{
	struct timespec ts = {1, 0};
	nanosleep(&ts, NULL);
}

static void do_clock_nanosleep(void)
{
	struct timespec ts = {1, 0};
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void do_usleep(void)
{
	usleep(1000000);
}

static void do_sleep(void)
{
	sleep(1);
}

static void do_poll(void)
{
	poll(NULL, 0, 1000);
}

static void do_cond_timedwait(void)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct timespec at;
	clock_gettime(CLOCK_REALTIME, &at);
	at.tv_sec += 1;
	pthread_mutex_lock(&mu);
	while (pthread_cond_timedwait(&cv, &mu, &at) == 0)
		;
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&cv);
	pthread_mutex_destroy(&mu);
}

static volatile sig_atomic_t fired;

static void on_alarm(int sig)
{
	(void)sig;
	fired = 1;
}

/* timer_settime is not faked (glibc >= 2.34 binds a version libfaketime
 * does not define): Check's test timeouts rely on that. A 100 ms timer
 * must take at least 80 ms of kernel time. */
static void timer_is_real(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	timer_t t;
	struct sigevent ev;
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGALRM;
	if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0) {
		check(false, "timer_create", -1);
		return;
	}
	struct itimerspec its = {{0, 0}, {0, 100 * MS}};
	long long t0 = kernel_ns(CLOCK_MONOTONIC);
	timer_settime(t, 0, &its, NULL);
	while (!fired && kernel_ns(CLOCK_MONOTONIC) - t0 < 5 * SEC) {
		struct timespec ts = {0, MS};
		syscall(SYS_nanosleep, &ts, NULL); /* raw: not faked */
	}
	long long ms = (kernel_ns(CLOCK_MONOTONIC) - t0) / MS;
	check(fired && ms >= 80, "timer_settime(100 ms) is not faked", ms);
	timer_delete(t);
}

int main(void)
{
	const char *ft = getenv("FAKETIME"), *pre = getenv("LD_PRELOAD");
	if (!ft || strcmp(ft, "+0 x100") != 0 || !pre ||
	    !strstr(pre, "libfaketime")) {
		fprintf(stderr,
			"ft_known: run me with LD_PRELOAD=<libfaketime> "
			"and FAKETIME=\"+0 x100\" (got FAKETIME=%s, "
			"LD_PRELOAD=%s)\n",
			ft ? ft : "(unset)", pre ? pre : "(unset)");
		return 1;
	}

	/* The faked clocks run 100 times fast: 50 ms of kernel time reads
	 * as ~5 s; at least 2 s. */
	long long k0 = kernel_ns(CLOCK_MONOTONIC);
	long long m0 = libc_ns(CLOCK_MONOTONIC), r0 = libc_ns(CLOCK_REALTIME);
	struct timespec w = {0, 50 * MS};
	syscall(SYS_nanosleep, &w, NULL);
	long long k = (kernel_ns(CLOCK_MONOTONIC) - k0) / MS;
	long long m = (libc_ns(CLOCK_MONOTONIC) - m0) / MS;
	long long r = (libc_ns(CLOCK_REALTIME) - r0) / MS;
	printf("50 ms of kernel time: CLOCK_MONOTONIC +%lld ms, CLOCK_REALTIME "
	       "+%lld ms\n",
	       m, r);
	check(m >= 2000, "the faked CLOCK_MONOTONIC runs x100", k);
	check(r >= 2000, "the faked CLOCK_REALTIME runs x100", k);

	/* The faked CLOCK_MONOTONIC is not the kernel's: it reads near wall
	 * time (why pthread_cond_clockwait on it can hang). */
	long long off = libc_ns(CLOCK_MONOTONIC) - kernel_ns(CLOCK_MONOTONIC);
	long long wall = kernel_ns(CLOCK_REALTIME);
	bool near_wall = off > wall / 2;
	printf("faked CLOCK_MONOTONIC - kernel's: %lld s (wall: %lld s)\n",
	       off / SEC, wall / SEC);
	check(near_wall, "the faked CLOCK_MONOTONIC reads near wall time", -1);

	sleep_is_fast("nanosleep(1 s) runs x100", do_nanosleep);
	sleep_is_fast("clock_nanosleep(CLOCK_MONOTONIC, 1 s) runs x100",
		      do_clock_nanosleep);
	sleep_is_fast("usleep(1 s) runs x100", do_usleep);
	sleep_is_fast("sleep(1) runs x100", do_sleep);
	sleep_is_fast("poll(NULL, 0, 1000) runs x100", do_poll);
	sleep_is_fast("pthread_cond_timedwait(+1 s) runs x100",
		      do_cond_timedwait);
	timer_is_real();

	if (failures)
		printf("%d check(s) failed: libfaketime no longer behaves as "
		       "quiesce/faketime.h says\n",
		       failures);
	return failures ? 1 : 0;
}
