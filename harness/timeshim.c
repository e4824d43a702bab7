/*
 * timeshim.c: virtual time for code that reads the clock and sleeps
 * directly (qc_h_opts.intercept_time).
 *
 * libquiesce defines time, gettimeofday, clock_gettime, timespec_get,
 * nanosleep, clock_nanosleep, usleep, sleep, thrd_sleep, and poll/select
 * used with no fds. On a bubble thread of a harness created with
 * intercept_time they read and sleep on the harness's virtual clock (a
 * sleep parks the thread, so auto-advance and qc_h_advance drive legacy
 * loops); everywhere else they call the next definition (libc's, or a
 * sanitizer's interceptor) after one relaxed atomic load (time() also
 * reads one thread-local flag, for qc__time_intercept_available).
 *
 * Covered: reads of CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
 * CLOCK_MONOTONIC_RAW and the _COARSE clocks; sleeps on CLOCK_REALTIME,
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME, relative or TIMER_ABSTIME (the other
 * clocks cannot sleep in the kernel either: ENOTSUP). Not covered: CPU-time
 * clocks and CLOCK_TAI, timed waits on plain condition variables, mutexes,
 * joins and semaphores, timers (alarm, setitimer, timer_create, timerfd),
 * ppoll, pselect, epoll_wait, and waits with fds.
 *
 * Virtual wall time is the clock's time (it counts from the Unix epoch);
 * virtual monotonic time is the same number, so differences agree. A
 * virtual sleep behaves like the real call: bad arguments give the
 * kernel's errors, a signal handler ends it with EINTR and the time left
 * (its futex wait always has a timeout, which the kernel never restarts
 * after a handler, SA_RESTART or not; quiesce's own stack-capture signal
 * is told apart and does not end it), and if its harness goes away while
 * it sleeps (abandoned by qc_h_free), the rest of the sleep is real.
 *
 * qc__real_clock_gettime (qc_clock_real) reads the process's clock, never
 * the virtual one, whichever thread calls it.
 *
 * Invariants: a sleeper's timer and word live on its stack; the timer is
 * disarmed under the clock lock before the frame goes away. This file must
 * not call its own interposed names internally: it reaches libc through
 * pointers found with dlsym.
 * Lock order: the clock lock only (to arm and disarm), never held across
 * qc__park_begin, which takes the harness lock and may move the clock.
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include "annotate.h"
#include "block.h"
#include "internal.h"
#include "park.h"
#include "stack.h"
#include "timeshim.h"

#define EXPORT __attribute__((visibility("default")))

/* How long a virtual sleeper's futex wait lasts before it checks that its
 * harness is still there (real time). */
#define SHIM_SLICE (250 * QC_MILLISECOND)

static struct {
	int (*clock_gettime)(clockid_t, struct timespec *);
	int (*gettimeofday)(struct timeval *, void *);
	time_t (*time)(time_t *);
	int (*timespec_get)(struct timespec *, int);
	int (*nanosleep)(const struct timespec *, struct timespec *);
	int (*clock_nanosleep)(clockid_t, int, const struct timespec *,
			       struct timespec *);
	int (*usleep)(useconds_t);
	unsigned (*sleep)(unsigned);
	int (*thrd_sleep)(const struct timespec *, struct timespec *);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
} next;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

/* The process's clock_gettime for qc__real_clock_gettime. */
static int (*process_gettime)(clockid_t, struct timespec *);
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

/* Set while qc__real_clock_gettime runs: a sanitizer's or libfaketime's
 * clock_gettime may call ours as its "real" one, which must then pass on. */
static __attribute__((tls_model("initial-exec"))) _Thread_local bool in_real;

/* Set while qc__time_intercept_available probes. */
static __attribute__((tls_model("initial-exec"))) _Thread_local bool probing,
    probe_hit;

/* POSIX lets dlsym's result become a function pointer; ISO C needs the
 * copy. */
#define FIND(name)                                          \
	do {                                                \
		void *sym = dlsym(RTLD_NEXT, #name);        \
		memcpy(&next.name, &sym, sizeof next.name); \
	} while (0)

static void find_next(void)
{
	FIND(clock_gettime);
	FIND(gettimeofday);
	FIND(time);
	FIND(timespec_get);
	FIND(nanosleep);
	FIND(clock_nanosleep);
	FIND(usleep);
	FIND(sleep);
	FIND(thrd_sleep);
	FIND(poll);
	FIND(select);
	QC_ANN_ONCE_DONE(&next_once);
}

static void ensure_next(void)
{
	QC_ONCE(&next_once, find_next);
}

/*
 * The first clock_gettime in the process's lookup order that is not this
 * file's. RTLD_NEXT alone would skip a preloaded libfaketime when
 * libquiesce is a shared library (preloads come before it), so that
 * qc_clock_real would not follow the faked clock as documented; with a
 * static link, RTLD_NEXT already starts after the executable.
 */
static void find_process_gettime(void)
{
	ensure_next();
	process_gettime = next.clock_gettime;
	void *def = dlsym(RTLD_DEFAULT, "clock_gettime");
	Dl_info d, self;
	if (def && dladdr(def, &d) &&
	    dladdr((void *)(uintptr_t)find_process_gettime, &self) &&
	    d.dli_fbase != self.dli_fbase)
		memcpy(&process_gettime, &def, sizeof process_gettime);
	QC_ANN_ONCE_DONE(&process_once);
}

int qc__real_clock_gettime(clockid_t id, struct timespec *ts)
{
	QC_ONCE(&process_once, find_process_gettime);
	in_real = true;
	int r = process_gettime(id, ts);
	in_real = false;
	return r;
}

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
	if (QC_LIKELY(!atomic_load_explicit(&qc__h_live, memory_order_relaxed)))
		return NULL;
	return qc__h_time_clock();
}

/* Clocks whose reads are virtual. */
static bool read_clock_id(clockid_t id)
{
	return id == CLOCK_REALTIME || id == CLOCK_MONOTONIC ||
	       id == CLOCK_REALTIME_COARSE || id == CLOCK_MONOTONIC_COARSE ||
	       id == CLOCK_BOOTTIME || id == CLOCK_MONOTONIC_RAW;
}

/* Clocks whose sleeps are virtual: the ones the kernel can sleep on among
 * the above. */
static bool sleep_clock_id(clockid_t id)
{
	return id == CLOCK_REALTIME || id == CLOCK_MONOTONIC ||
	       id == CLOCK_BOOTTIME;
}

static struct timespec to_timespec(qc_duration t)
{
	struct timespec ts = {(time_t)(t / QC_SECOND), (long)(t % QC_SECOND)};
	return ts;
}

/* The kernel's rule for a sleep's timespec. */
static bool valid_timespec(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < QC_SECOND;
}

/* A valid timespec in ns, saturating at QC_TIME_NEVER ("sleep forever"
 * idioms such as {LONG_MAX, 0}). */
static qc_duration from_timespec(const struct timespec *ts)
{
	if (ts->tv_sec > (INT64_MAX - ts->tv_nsec) / QC_SECOND)
		return QC_TIME_NEVER;
	return (qc_duration)ts->tv_sec * QC_SECOND + ts->tv_nsec;
}

/* p, hidden from the optimiser: libc declares some pointer parameters
 * nonnull, yet its own code accepts NULL (gettimeofday) or the kernel
 * answers EFAULT, and so must these definitions. */
static void *opaque(const void *p)
{
	void *q = (void *)(uintptr_t)p;
	__asm__("" : "+r"(q));
	return q;
}

/* ------------------------------------------------------------- sleeps */

/* The rest of an orphaned sleep, in real time (QC_TIME_NEVER: until a
 * signal). Returns 0 or EINTR with *left set. */
static int real_rest(qc_duration rest, qc_duration *left)
{
	ensure_next();
	if (rest == QC_TIME_NEVER) {
		(void)next.poll(NULL, 0, -1);
		*left = QC_TIME_NEVER;
		return EINTR;
	}
	struct timespec ts = to_timespec(rest), rem = {0, 0};
	if (next.nanosleep(&ts, &rem) == 0)
		return 0;
	*left = from_timespec(&rem);
	return EINTR;
}

/*
 * Parks the caller on c until c reads until (QC_TIME_NEVER: until a
 * signal). what names the call in reports. Returns 0; EINTR when a signal
 * handler ran (*left: the time that was left, QC_TIME_NEVER for a sleep
 * forever); or ENOMEM (no timer: nothing slept).
 */
static int vsleep(qc_clock *c, qc_time until, const char *what,
		  qc_duration *left)
{
	qc__sleeper s = QC_SLEEPER_INIT;
	atomic_init(&s.word, QC_W_WAITING);
	bool armed = false;
	/* No timer for "never": it would be the clock's next timer, and a
	 * harness would move time to the end of time. */
	if (until != QC_TIME_NEVER) {
		int e = 0;
		qc__clock_lock(c);
		if (until <= qc_now(c))
			atomic_store(&s.word, QC_W_TIME);
		else if ((e = qc__timer_arm_locked(c, &s.timer, until)) == 0)
			armed = true;
		qc__clock_unlock(c);
		if (e)
			return e;
		if (!armed)
			return 0; /* its time has come: no park, no yield */
	}
	qc__park p = {.what = what,
		      .clock = c,
		      .ctx = NULL,
		      .until = until,
		      .word = &s.word,
		      .expect = QC_W_WAITING};
	int r;
	bool orphaned;
	for (;;) {
		r = 0;
		orphaned = false;
		unsigned hits = 0;
		qc__park_begin(&p);
		while (atomic_load(&s.word) == QC_W_WAITING) {
			hits = qc__stack_hits;
			int e =
			    qc__futex_wait(&s.word, QC_W_WAITING, SHIM_SLICE);
			if (e == EINTR) {
				r = EINTR;
				break;
			}
			if (e == ETIMEDOUT && qc__h_time_clock() != c) {
				orphaned = true;
				break;
			}
		}
		qc__park_end(&p);
		/* A signal that only served quiesce's stack capture must not
		 * end the sleep: a report must not change what the code does
		 * next. Looked at after qc__park_end: a sanitizer may run
		 * the handler late, at the lock there. */
		if (r != EINTR || qc__stack_hits == hits)
			break;
	}
	if (armed) {
		qc__clock_lock(c);
		qc__timer_disarm_locked(c, &s.timer);
		qc__clock_unlock(c);
	}
	if (atomic_load(&s.word) == QC_W_TIME)
		return 0;
	qc_time now = qc_now(c);
	qc_duration rest = until == QC_TIME_NEVER ? QC_TIME_NEVER
			   : until > now	  ? until - now
						  : 0;
	if (orphaned)
		return real_rest(rest, left);
	*left = rest;
	return r;
}

/* vsleep for a relative duration d >= 0 (QC_TIME_NEVER: forever). */
static int vsleep_for(qc_clock *c, qc_duration d, const char *what,
		      qc_duration *left)
{
	qc_time until =
	    d == QC_TIME_NEVER ? QC_TIME_NEVER : qc_time_add(qc_now(c), d);
	return vsleep(c, until, what, left);
}

/* A time left as a timespec (forever: the largest one). */
static struct timespec left_timespec(qc_duration left)
{
	if (left == QC_TIME_NEVER)
		return (struct timespec){(time_t)(INT64_MAX / QC_SECOND),
					 (long)(INT64_MAX % QC_SECOND)};
	return to_timespec(left);
}

/* -------------------------------------------------------------- reads */

EXPORT int clock_gettime(clockid_t id, struct timespec *ts)
{
	qc_clock *c = virtual_clock();
	if (!c || !read_clock_id(id) || in_real) {
		ensure_next();
		return next.clock_gettime(id, ts);
	}
	if (!opaque(ts)) {
		errno = EFAULT;
		return -1;
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
	if (opaque(tv)) {
		qc_time t = qc_now(c);
		tv->tv_sec = (time_t)(t / QC_SECOND);
		tv->tv_usec = (suseconds_t)(t % QC_SECOND / 1000);
	}
	if (tz) /* glibc's answer: UTC, no DST */
		memset(tz, 0, sizeof(struct timezone));
	return 0;
}

EXPORT time_t time(time_t *out)
{
	if (QC_UNLIKELY(probing))
		probe_hit = true;
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

EXPORT int timespec_get(struct timespec *ts, int base)
{
	qc_clock *c = virtual_clock();
	if (!c || base != TIME_UTC) {
		ensure_next();
		return next.timespec_get(ts, base);
	}
	*ts = to_timespec(qc_now(c));
	return base;
}

/* ------------------------------------------------------------- sleeps */

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.nanosleep(req, rem);
	}
	if (!req || !valid_timespec(req)) {
		errno = req ? EINVAL : EFAULT;
		return -1;
	}
	qc_duration left = 0;
	int e = vsleep_for(c, from_timespec(req), "nanosleep", &left);
	if (e == 0)
		return 0;
	if (e == EINTR && rem)
		*rem = left_timespec(left);
	errno = e;
	return -1;
}

EXPORT int clock_nanosleep(clockid_t id, int flags, const struct timespec *req,
			   struct timespec *rem)
{
	qc_clock *c = virtual_clock();
	if (!c || !sleep_clock_id(id)) {
		ensure_next();
		return next.clock_nanosleep(id, flags, req, rem);
	}
	if (!req)
		return EFAULT;
	if (!valid_timespec(req))
		return EINVAL;
	qc_duration left = 0;
	int e =
	    flags & TIMER_ABSTIME
		? vsleep(c, from_timespec(req), "clock_nanosleep", &left)
		: vsleep_for(c, from_timespec(req), "clock_nanosleep", &left);
	/* Like the kernel: the time left only for a relative sleep. */
	if (e == EINTR && rem && !(flags & TIMER_ABSTIME))
		*rem = left_timespec(left);
	return e;
}

EXPORT int usleep(useconds_t us)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.usleep(us);
	}
	qc_duration left = 0;
	int e =
	    vsleep_for(c, (qc_duration)us * QC_MICROSECOND, "usleep", &left);
	if (e == 0)
		return 0;
	errno = e;
	return -1;
}

EXPORT unsigned sleep(unsigned s)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.sleep(s);
	}
	qc_duration left = 0;
	int e = vsleep_for(c, (qc_duration)s * QC_SECOND, "sleep", &left);
	if (e == 0)
		return 0;
	if (e != EINTR)
		return s; /* nothing slept */
	/* glibc's rounding of the time left. */
	return (unsigned)(left / QC_SECOND +
			  (left % QC_SECOND >= 500 * QC_MILLISECOND));
}

EXPORT int thrd_sleep(const struct timespec *req, struct timespec *rem)
{
	qc_clock *c = virtual_clock();
	if (!c) {
		ensure_next();
		return next.thrd_sleep(req, rem);
	}
	if (!req || !valid_timespec(req))
		return -2; /* glibc's "other error" */
	qc_duration left = 0;
	int e = vsleep_for(c, from_timespec(req), "thrd_sleep", &left);
	if (e == 0)
		return 0;
	if (e != EINTR)
		return -2;
	if (rem)
		*rem = left_timespec(left);
	return -1;
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
	qc_duration left = 0;
	int e = vsleep_for(c,
			   timeout < 0 ? QC_TIME_NEVER
				       : (qc_duration)timeout * QC_MILLISECOND,
			   "poll", &left);
	if (e == 0)
		return 0;
	errno = e;
	return -1;
}

/* select with no fds is a sleep too (no timeval: forever). Like Linux's,
 * it leaves the time not slept in *tv. */
EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	qc_clock *c = nfds == 0 ? virtual_clock() : NULL;
	if (!c) {
		ensure_next();
		return next.select(nfds, r, w, e, tv);
	}
	qc_duration d = QC_TIME_NEVER;
	if (tv) {
		if (tv->tv_sec < 0 || tv->tv_usec < 0) {
			errno = EINVAL;
			return -1;
		}
		/* Linux takes tv_usec >= 1000000 as whole seconds. */
		time_t extra = (time_t)(tv->tv_usec / 1000000);
		struct timespec ts = {tv->tv_sec > INT64_MAX - extra
					  ? INT64_MAX
					  : tv->tv_sec + extra,
				      (long)(tv->tv_usec % 1000000) * 1000};
		d = from_timespec(&ts);
	}
	qc_duration left = 0;
	int err = vsleep_for(c, d, "select", &left);
	if (tv && err != ENOMEM) {
		qc_duration l = err == EINTR ? left : 0;
		*tv = (struct timeval){(time_t)(l / QC_SECOND),
				       (suseconds_t)(l % QC_SECOND / 1000)};
	}
	if (err == 0)
		return 0;
	errno = err;
	return -1;
}
