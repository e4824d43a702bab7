/*
 * quiesce/harness.h: the harness: a bubble of threads on a virtual clock, a
 * bound on shutdown, and reports that say why.
 *
 * A harness owns a clock (virtual unless real_clock) and a cancelable root
 * context for the test. The thread that calls qc_h_new and every thread the
 * harness tracks (every thread created after qc_h_new, through qc_h_spawn,
 * groups, or pthread_create anywhere in the process) form its bubble. When
 * every bubble thread is parked in a quiesce wait and a timer is pending,
 * the last thread to park moves the clock to that timer (unless
 * manual_time). A bubble thread is parked while it waits in qc_sleep*,
 * qc_cond_wait, qc_chan_*, qc_wait, qc_group_wait, qc_group_go (for a slot),
 * pthread_join of a tracked thread, or (with intercept_time) an interposed
 * sleep, on contexts or clocks of its harness. fd waits (qc_poll, qc_read,
 * qc_write), plain mutexes and condition variables and system calls are
 * not parked: an event from outside can end them.
 *
 * Only one harness is live per process. Threads that existed before
 * qc_h_new (or outlived an abandoned harness) are its baseline: never
 * blamed. Threads created through neither pthread_create nor quiesce (C11
 * thrd_create, glibc's helpers) are not tracked; qc_h_check_leaks still
 * counts them from /proc.
 *
 * Thread safety: qc_h_spawn, qc_h_cancel, qc_h_ctx, qc_h_clock and
 * qc_h_result may be called from any thread; the rest from the test thread
 * (the one that called qc_h_new).
 *
 * Environment:
 * - QC_TIME_MULTIPLIER=N: the real-time multiplier (qc_h_time_multiplier).
 * - QC_THREAD_STACK=bytes: the stack size of the threads quiesce starts.
 * - QC_CHAOS_SEED=S (decimal, or 0x hex; read when the library loads):
 *   chaos mode. quiesce then injects seeded delays at its own wait, wake
 *   and cancel points (the blocking waits of qc_wait, qc_sleep*,
 *   qc_cond_wait, qc_chan_* before they block and after they wake,
 *   qc_cancel/qc_cancel_cause before they lock, and every park): a sleep
 *   of 0-50 us of real time or (one time in four) a yield of the CPU, at
 *   half of a thread's first 256 points, then ever more rarely (a k-th
 *   point with odds 32/k, at least 1/4096), so that loops of a million
 *   calls stay quick. Each thread draws from its own generator, seeded from S
 * and the thread's creation order in its harness (the test thread first;
 *   threads no harness tracks are numbered as they first reach a point),
 *   so a run's delays replay from S, and races in the code under test
 *   that depend on a rare interleaving show up. Virtual time is
 *   untouched: a correct test passes under every seed. Off (one relaxed
 *   load per point) when unset.
 * - QC_REPEAT=N: QC_CHECK_MAIN (quiesce/check.h) runs the whole suite N
 *   times with chaos seeds S, S+1, ... (S: QC_CHAOS_SEED, else from the
 *   clock), printing "quiesce: chaos seed <seed>" before each run; a
 *   failure replays with QC_CHAOS_SEED=<seed>.
 */
#ifndef QUIESCE_HARNESS_H
#define QUIESCE_HARNESS_H

#include <stdbool.h>
#include <stdio.h>

#include <quiesce/api.h>
#include <quiesce/clock.h>
#include <quiesce/ctx.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

typedef struct qc_h qc_h;

typedef struct qc_h_opts {
	bool real_clock;  /* false (default): a virtual clock */
	qc_time start;	  /* virtual start; 0: QC_VIRTUAL_EPOCH */
	bool manual_time; /* true: never auto-advance */
	/* Real-time give-up, ns; 0: 1 s x multiplier. It catches hangs, not
	 * a loaded machine: while a bubble thread is runnable but starved of
	 * a CPU (under an eighth of one over a probe of a quarter guard), the
	 * guard stretches, up to 10 guards (at least 5 s) in all. */
	qc_duration guard;
	/* intercept_time: bubble threads' own clock reads and sleeps use the
	 * virtual clock (a sleep parks): time, gettimeofday, timespec_get
	 * (TIME_UTC), clock_gettime (REALTIME, MONOTONIC, BOOTTIME,
	 * MONOTONIC_RAW, the _COARSE ones), sleep, usleep, nanosleep,
	 * thrd_sleep, clock_nanosleep (REALTIME, MONOTONIC, BOOTTIME;
	 * relative or TIMER_ABSTIME), poll with no fds, select with nfds 0.
	 * Not covered (real time): CPU-time clocks and CLOCK_TAI, timed
	 * waits on plain condition variables, mutexes, joins and semaphores,
	 * timers (alarm, setitimer, timer_create, timerfd), ppoll, pselect,
	 * epoll_wait, waits with fds. Other threads always see real time. */
	bool intercept_time;
	qc_duration
	    quiet_bound;  /* the Check fixture's teardown bound; 0: 1 s */
	int stack_signal; /* signal for stack capture; 0: SIGRTMIN+3 */
} qc_h_opts;

/*
 * qc_h_new: a new harness (NULL opts: all defaults), whose test thread is
 * the caller. Returns it (free with qc_h_free), or NULL with errno EBUSY
 * (another harness is live; a "quiesce: " line on stderr names its creation
 * site), EINVAL (a negative guard, quiet_bound or start; start or
 * intercept_time with real_clock; a stack_signal that cannot be caught),
 * ENOTSUP (intercept_time, but time interposition is not available: a
 * static link dropped it or a preloaded libfaketime comes first; a line on
 * stderr says so), or ENOMEM. qc_h_new is a macro recording the call site.
 * Thread safety: any thread; the first to publish wins.
 */
QC_API qc_h *qc_h_new(const qc_h_opts *opts);
QC_API qc_h *qc_h_new_at(const qc_h_opts *opts, const qc_site *site);
#define qc_h_new(opts) qc_h_new_at((opts), QC_SITE())

/* qc_h_ctx: the test's cancelable root context (borrowed; NULL for NULL). */
QC_API qc_ctx *qc_h_ctx(qc_h *h);

/* qc_h_clock: the harness's clock (borrowed; NULL for NULL). */
QC_API qc_clock *qc_h_clock(qc_h *h);

/*
 * qc_h_spawn: runs fn(ctx, arg) on a new tracked, joinable thread named name
 * (copied; shown whole in reports, truncated to 15 bytes for the OS; names
 * may repeat). ctx is kept alive (an internal reference, not a user one)
 * until the thread exits; the harness joins the thread. Uses QC_THREAD_STACK
 * bytes of stack when that is set. Returns 0, EINVAL (NULL h, ctx, name or
 * fn; ctx on another clock; h not live), ENOMEM, or pthread_create's error.
 */
QC_API int qc_h_spawn(qc_h *h, qc_ctx *ctx, const char *name,
		      int (*fn)(qc_ctx *ctx, void *arg), void *arg);

/* qc_h_result: fn's return value of the spawned thread called name into
 * *ret (written only on success). Returns 0, EBUSY (still running), ENOENT
 * (no spawned thread has that name), EEXIST (several threads share the
 * name), EINVAL (NULL). Does not block beyond joining an exited thread. */
QC_API int qc_h_result(qc_h *h, const char *name, int *ret);

/* qc_h_cancel: cancels qc_h_ctx(h); qc_h_expect_quiet's bound is measured
 * from the first call. NULL: no-op. Runs the after-functions it triggers. */
QC_API void qc_h_cancel(qc_h *h);

/*
 * qc_h_advance: settles, then moves the virtual clock forward by d timer by
 * timer, and after each timer waits until every other bubble thread is
 * parked or gone (settles), so work woken by a timer runs before the next
 * one fires: a 30 s retry loop advanced 5 minutes runs exactly 10 times.
 * Returns 0, EINVAL (NULL, not live, real clock, d < 0), or ETIMEDOUT when
 * the real-time guard (per settle) expired; the clock then stays where it
 * was. Blocks.
 */
QC_API int qc_h_advance(qc_h *h, qc_duration d);

/* qc_h_settle: waits, without parking the caller or moving time, until
 * every other bubble thread is parked or gone. Returns 0, EINVAL (NULL, not
 * live), or ETIMEDOUT (the real-time guard expired: a thread spins or
 * blocks outside quiesce's waits). Blocks up to the guard. */
QC_API int qc_h_settle(qc_h *h);

/*
 * qc_h_expect_quiet: waits until every tracked thread has exited (ignored
 * ones aside), moving virtual time timer by timer while every other bubble
 * thread is parked, but never past the bound, measured from the first
 * qc_h_cancel (or from this call when nothing was cancelled; a bound already
 * past leaves no time to move). Returns 0 when quiet (the spawned threads
 * are joined); ETIMEDOUT when threads survive the bound (every thread
 * parked; the clock is left at the bound), or the real-time guard (a
 * thread runs or blocks outside quiesce's waits: virtual time could not
 * move), or, with real_clock, the bound in real time; EDEADLK (virtual
 * clock) when every bubble thread is parked with no timer pending; EINVAL
 * for NULL, a
 * harness that is not live, or a negative bound. On failure qc_h_report
 * says why, thread by thread (stacks are captured once the verdict is
 * final): the first 16 surviving threads in full, the next 200 in one line
 * each, the rest counted (qc_h_write_json lists every thread), so that the
 * report of 1,000 survivors stays short and quick. Blocks up to the guard
 * (with real_clock, up to the bound).
 */
QC_API int qc_h_expect_quiet(qc_h *h, qc_duration bound);

/*
 * qc_h_check_leaks: looks for what the test left behind since qc_h_new:
 * contexts on the harness's clock with user references not all released
 * (name and creation site; not done: a lost cancel, done: a lost release),
 * armed timers, tracked threads still running or exited but never joined
 * or detached, threads no pthread_create made (a /proc count diff), new
 * file descriptors (what each is), child processes and zombies, heap bytes
 * lost (under valgrind or LeakSanitizer), and contexts a bubble thread
 * derived from qc_background() or a context of no harness (the wrong
 * parent). Joins the exited threads qc_h_spawn made first. Returns the
 * number of findings (0: clean; then qc_h_report is unchanged, else it is
 * the leak report), or -1 with errno EINVAL for NULL, or ENOMEM (or the
 * errno of reading /proc) when a part of the check could not be done:
 * never 0 for a check that did not look; qc_h_report then says so. Like
 * qc_h_expect_quiet's, the report describes 16 threads in full and 200
 * more in one line each, and counts the rest. Blocks briefly.
 */
QC_API int qc_h_check_leaks(qc_h *h);

/* qc_h_write_json: the last report, the threads and the event trace (the
 * virtual and real time of every spawn, park, wake, cancel, timer firing,
 * exit and verdict; the last 2048) as one JSON object. Returns 0, EINVAL
 * (NULL), ENOMEM, or the errno of a failed write. */
QC_API int qc_h_write_json(const qc_h *h, FILE *out);

/* qc_h_ignore: threads whose start routine has this symbol name (copied)
 * are left out of the bubble, of qc_h_expect_quiet and of reports (like
 * goleak's IgnoreTopFunction). Returns 0, EINVAL (NULL or empty), ENOMEM. */
QC_API int qc_h_ignore(qc_h *h, const char *start_routine);

/* qc_h_report: the last failure report, "" if none; never NULL. Valid until
 * the next call on h. A thread's stack there shows the code under test:
 * from the quiesce call it waits in (or its pc) down to its start routine;
 * QC_STACK_FULL=1 in the environment keeps every frame. */
QC_API const char *qc_h_report(const qc_h *h);

/* qc_h_time_multiplier: the real-time multiplier: QC_TIME_MULTIPLIER if set,
 * else 20 under valgrind, else 5 in a sanitizer build, else 1. */
QC_API int qc_h_time_multiplier(void);

/*
 * qc_h_free: cancels qc_h_ctx(h) and frees h. Accepts NULL (0). With
 * tracked threads still running it returns EBUSY and abandons h: nothing
 * they may touch is freed, and a new harness may be created (the survivors
 * are its baseline, "left over from an earlier test"); when the only
 * survivors are ignored threads it abandons h the same way but returns 0.
 * A second call on an abandoned harness returns EBUSY again. Contexts or
 * timers left alive (a lost cancel) are left allocated, with their clock,
 * and reachable; qc_h_free then returns 0. Call it from the test thread.
 */
QC_API int qc_h_free(qc_h *h);

QC_END_DECLS

#endif /* QUIESCE_HARNESS_H */
