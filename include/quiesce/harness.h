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
 * manual_time).
 *
 * Only one harness is live per process.
 *
 * Thread safety: qc_h_spawn, qc_h_cancel, qc_h_ctx, qc_h_clock and
 * qc_h_result may be called from any thread; the rest from the test thread
 * (the one that called qc_h_new).
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
	bool real_clock;     /* false (default): a virtual clock */
	qc_time start;	     /* virtual start; 0: QC_VIRTUAL_EPOCH */
	bool manual_time;    /* true: never auto-advance */
	qc_duration guard;   /* real-time give-up, ns; 0: 1 s x multiplier */
	bool intercept_time; /* bubble threads' time()/sleep() are virtual */
	qc_duration
	    quiet_bound;  /* the Check fixture's teardown bound; 0: 1 s */
	int stack_signal; /* signal for stack capture; 0: SIGRTMIN+3 */
} qc_h_opts;

/*
 * qc_h_new: a new harness (NULL opts: all defaults). Returns it (free with
 * qc_h_free), or NULL with errno EBUSY (another harness is live; a line on
 * stderr names its creation site), EINVAL (bad option), ENOTSUP
 * (intercept_time without working interposition), or ENOMEM.
 */
QC_API qc_h *qc_h_new(const qc_h_opts *opts);
QC_API qc_h *qc_h_new_at(const qc_h_opts *opts, const qc_site *site);
#define qc_h_new(opts) qc_h_new_at((opts), QC_SITE())

/* qc_h_ctx: the test's cancelable root context (borrowed; NULL for NULL). */
QC_API qc_ctx *qc_h_ctx(qc_h *h);

/* qc_h_clock: the harness's clock (borrowed; NULL for NULL). */
QC_API qc_clock *qc_h_clock(qc_h *h);

/*
 * qc_h_spawn: runs fn(ctx, arg) on a new tracked thread named name (copied;
 * shown whole in reports, truncated to 15 bytes for the OS). ctx is retained
 * until the thread exits. Returns 0, EINVAL (NULL h, ctx, name or fn; ctx on
 * another clock), or pthread_create's error.
 */
QC_API int qc_h_spawn(qc_h *h, qc_ctx *ctx, const char *name,
		      int (*fn)(qc_ctx *ctx, void *arg), void *arg);

/* qc_h_result: fn's return value of the spawned thread called name into
 * *ret. Returns 0, EBUSY (still running), ENOENT (unknown), EEXIST (several
 * threads share the name), EINVAL (NULL). */
QC_API int qc_h_result(qc_h *h, const char *name, int *ret);

/* qc_h_cancel: cancels qc_h_ctx(h); qc_h_expect_quiet's bound is measured
 * from here. NULL: no-op. */
QC_API void qc_h_cancel(qc_h *h);

/*
 * qc_h_advance: moves the virtual clock forward by d timer by timer, and
 * after each timer waits until every other bubble thread is parked or gone
 * (settles), so work woken by a timer runs before the next one fires.
 * Returns 0, EINVAL (NULL, real clock, d < 0), or ETIMEDOUT when the
 * real-time guard expired while settling.
 */
QC_API int qc_h_advance(qc_h *h, qc_duration d);

/* qc_h_settle: waits, without parking the caller or moving time, until
 * every other bubble thread is parked or gone. Returns 0, EINVAL, or
 * ETIMEDOUT (the guard expired: a thread spins or blocks outside quiesce). */
QC_API int qc_h_settle(qc_h *h);

/*
 * qc_h_expect_quiet: parks the caller until every tracked thread has
 * exited, letting virtual time run up to the bound measured from
 * qc_h_cancel (or from this call when nothing was cancelled). Returns 0 when
 * quiet, ETIMEDOUT when threads survive the bound or the real-time guard,
 * EDEADLK when every bubble thread is parked with no timer pending, EINVAL
 * for NULL or a negative bound. On failure qc_h_report says why.
 */
QC_API int qc_h_expect_quiet(qc_h *h, qc_duration bound);

/* qc_h_check_leaks: looks for what the test left behind (contexts, threads,
 * timers, fds, child processes, heap bytes) and returns the number of
 * findings (0: clean), or -1 with errno EINVAL for NULL. */
QC_API int qc_h_check_leaks(qc_h *h);

/* qc_h_write_json: the report and the event trace as JSON. Returns 0,
 * EINVAL, or the errno of a failed write. */
QC_API int qc_h_write_json(const qc_h *h, FILE *out);

/* qc_h_ignore: threads whose start routine has this symbol name are never
 * reported (like goleak's IgnoreTopFunction). Returns 0, EINVAL, ENOMEM. */
QC_API int qc_h_ignore(qc_h *h, const char *start_routine);

/* qc_h_report: the last failure report, "" if none; never NULL. Valid until
 * the next call on h. */
QC_API const char *qc_h_report(const qc_h *h);

/* qc_h_time_multiplier: the real-time multiplier: QC_TIME_MULTIPLIER if set,
 * else 20 under valgrind, else 5 in a sanitizer build, else 1. */
QC_API int qc_h_time_multiplier(void);

/*
 * qc_h_free: frees h. Accepts NULL (0). With tracked threads still running
 * it returns EBUSY and abandons h: nothing they may touch is freed, and a new
 * harness may be created (the survivors are its baseline). Contexts or
 * timers left alive (a lost cancel) are left allocated and reachable.
 */
QC_API int qc_h_free(qc_h *h);

QC_END_DECLS

#endif /* QUIESCE_HARNESS_H */
