/*
 * timeshim.c: virtual time for code that reads the clock and sleeps
 * directly (qc_h_opts.intercept_time).
 *
 * libquiesce defines time, gettimeofday, clock_gettime, nanosleep,
 * clock_nanosleep, usleep, sleep, and poll/select used with no fds. On a
 * bubble thread of a harness created with intercept_time they read and
 * sleep on the harness's virtual clock (a sleep parks the thread, so
 * auto-advance and qc_h_advance drive legacy loops); everywhere else they
 * call the next definition (libc's) after one relaxed atomic load.
 *
 * Covered: CLOCK_REALTIME, CLOCK_MONOTONIC and their _COARSE variants,
 * CLOCK_BOOTTIME (as monotonic). Not covered: CPU-time clocks, timed waits
 * on plain condition variables and semaphores (pthread_cond_timedwait,
 * sem_timedwait), timer_create/timerfd, alarm, epoll_wait/ppoll with fds.
 *
 * Virtual wall time is the clock's time (it counts from the Unix epoch);
 * virtual monotonic time is the same number, so differences agree.
 * This file must not call its own interposed names internally: it reaches
 * libc through pointers found with dlsym(RTLD_NEXT).
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/ctx.h>
#include <quiesce/wait.h>

#include "park.h"
#include "timeshim.h"

#define EXPORT __attribute__((visibility("default")))

static struct {
	int (*clock_gettime)(clockid_t, struct timespec *);
	int (*gettimeofday)(struct timeval *, void *);
	time_t (*time)(time_t *);
	int (*nanosleep)(const struct timespec *, struct timespec *);
	int (*clock_nanosleep)(clockid_t, int, const struct timespec *,
			       struct timespec *);
	int (*usleep)(useconds_t);
	unsigned (*sleep)(unsigned);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
} next;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

/* POSIX lets dlsym's result become a function pointer; ISO C needs the
 * copy. */
#define FIND(name)                                                             \
	do {                                                                   \
		void *sym = dlsym(RTLD_NEXT, #name);                           \
		memcpy(&next.name, &sym, sizeof next.name);                    \
	} while (0)

static void find_next(void)
{
	FIND(clock_gettime);
	FIND(gettimeofday);
	FIND(time);
	FIND(nanosleep);
	FIND(clock_nanosleep);
	FIND(usleep);
	FIND(sleep);
	FIND(poll);
	FIND(select);
}

static void ensure_next(void)
{
	pthread_once(&next_once, find_next);
}

int qc__real_clock_gettime(clockid_t id, struct timespec *ts)
{
	ensure_next();
	return next.clock_gettime(id, ts);
}

static _Thread_local bool probing, probe_hit;

bool qc__time_intercept_available(void)
{
	probing = true;
	probe_hit = false;
	(void)time(NULL); /* through the normal lookup */
	probing = false;
	return probe_hit;
}

/* The virtual clock for this thread, or NULL: one relaxed load when no
 * harness is live. */
static qc_clock *virtual_clock(void)
{
	if (QC_UNLIKELY(probing))
		probe_hit = true;
	if (QC_LIKELY(!atomic_load_explicit(&qc__h_live,
					    memory_order_relaxed)))
		return NULL;
	return qc__h_time_clock();
}

static bool faked_clock_id(clockid_t id)
{
	return id == CLOCK_REALTIME || id == CLOCK_MONOTONIC ||
	       id == CLOCK_REALTIME_COARSE || id == CLOCK_MONOTONIC_COARSE ||
	       id == CLOCK_BOOTTIME || id == CLOCK_MONOTONIC_RAW;
}

static struct timespec to_timespec(qc_time t)
{
	struct timespec ts = {(time_t)(t / QC_SECOND), (long)(t % QC_SECOND)};
	return ts;
}

static qc_duration from_timespec(const struct timespec *ts)
{
	return (qc_duration)ts->tv_sec * QC_SECOND + ts->tv_nsec;
}

/* Parks the caller on c until t (never cancelled: the clock's root). */
static void sleep_until(qc_clock *c, qc_time t)
{
	(void)qc_sleep_until(qc_clock_root(c), t);
}

EXPORT int clock_gettime(clockid_t id, struct timespec *ts)
{
	qc_clock *c = virtual_clock();
	if (!c || !faked_clock_id(id)) {
		ensure_next();
		return next.clock_gettime(id, ts);
	}
	*ts = to_timespec(qc_now(c));
	return 0;
}

EXPORT int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.gettimeofday(tv, tz);
	}
	(void)tz;
	qc_time t = qc_now(c);
	tv->tv_sec = (time_t)(t / QC_SECOND);
	tv->tv_usec = (suseconds_t)(t % QC_SECOND / 1000);
	return 0;
}

EXPORT time_t time(time_t *out)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.time(out);
	}
	time_t t = (time_t)(qc_now(c) / QC_SECOND);
	if (out)
		*out = t;
	return t;
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.nanosleep(req, rem);
	}
	if (!req || req->tv_nsec < 0 || req->tv_nsec >= QC_SECOND ||
	    req->tv_sec < 0) {
		errno = EINVAL;
		return -1;
	}
	sleep_until(c, qc_time_add(qc_now(c), from_timespec(req)));
	if (rem)
		*rem = (struct timespec){0, 0};
	return 0;
}

EXPORT int clock_nanosleep(clockid_t id, int flags, const struct timespec *req,
			   struct timespec *rem)
{
	qc_clock *c = virtual_clock();
	if (!c || !faked_clock_id(id)) {
		ensure_next();
		return next.clock_nanosleep(id, flags, req, rem);
	}
	if (!req || req->tv_nsec < 0 || req->tv_nsec >= QC_SECOND)
		return EINVAL;
	qc_time until = flags & TIMER_ABSTIME
				? from_timespec(req)
				: qc_time_add(qc_now(c), from_timespec(req));
	sleep_until(c, until);
	if (rem && !(flags & TIMER_ABSTIME))
		*rem = (struct timespec){0, 0};
	return 0;
}

EXPORT int usleep(useconds_t us)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.usleep(us);
	}
	sleep_until(c, qc_time_add(qc_now(c), (qc_duration)us * 1000));
	return 0;
}

EXPORT unsigned sleep(unsigned s)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.sleep(s);
	}
	sleep_until(c, qc_time_add(qc_now(c), (qc_duration)s * QC_SECOND));
	return 0;
}

/* poll with no fds is a sleep (timeout < 0: forever, which a harness sees
 * as a parked thread with no timer: EDEADLK if nothing else can run). */
EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	qc_clock *c = n == 0 ? virtual_clock() : NULL;
	if (!c) {
		ensure_next();
		return next.poll(fds, n, timeout);
	}
	sleep_until(c, timeout < 0 ? QC_TIME_NEVER
				   : qc_time_add(qc_now(c), (qc_duration)timeout *
								    QC_MILLISECOND));
	return 0;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e,
		  struct timeval *tv)
{
	qc_clock *c = nfds == 0 ? virtual_clock() : NULL;
	if (!c) {
		ensure_next();
		return next.select(nfds, r, w, e, tv);
	}
	qc_duration d = tv ? (qc_duration)tv->tv_sec * QC_SECOND +
				     (qc_duration)tv->tv_usec * 1000
			   : -1;
	sleep_until(c, d < 0 ? QC_TIME_NEVER : qc_time_add(qc_now(c), d));
	if (tv)
		*tv = (struct timeval){0, 0};
	return 0;
}
