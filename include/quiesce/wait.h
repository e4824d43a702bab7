/*
 * quiesce/wait.h: blocking that a context can interrupt.
 *
 * Every call checks its context first: a context done at entry returns its
 * error and sleeps, waits or reads nothing. Timeouts are measured on the
 * context's clock, so on a virtual clock a 1-hour sleep returns as soon as
 * the clock passes it, in no real time. Inside a harness, qc_sleep,
 * qc_sleep_until and qc_cond_wait park the caller (virtual time may move);
 * the fd waits (qc_poll, qc_read, qc_write) never do, since an event from
 * outside can end them.
 *
 * Thread safety: every function is thread-safe; the waits block.
 */
#ifndef QUIESCE_WAIT_H
#define QUIESCE_WAIT_H

#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <quiesce/api.h>
#include <quiesce/ctx.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

/* qc_cond: a condition variable whose waits a context can end. Caller
 * storage; contents private. A qc_cond must be initialised with
 * qc_cond_init (an all-zero one is refused with EINVAL, not used). */
typedef struct qc_cond {
	uintptr_t qc__opaque[6];
} qc_cond;

/* qc_cond_init: initialises cv (caller storage). Returns 0 or EINVAL (NULL).
 * Thread safety: not with other calls on the same cv; does not block. */
QC_API int qc_cond_init(qc_cond *cv);

/*
 * qc_cond_destroy: makes cv unusable. Returns 0, EINVAL (NULL or not
 * initialised) or EBUSY while threads wait on cv (then cv is left intact).
 * Threads that were signalled or cancelled but have not yet returned from
 * qc_cond_wait are waited for (briefly), so destroying right after a
 * broadcast is allowed. Thread safety: safe against concurrent waiters
 * leaving; does not block beyond that.
 */
QC_API int qc_cond_destroy(qc_cond *cv);

/* qc_cond_signal / qc_cond_broadcast: wake the oldest waiter / every waiter.
 * A waiter whose context ended at the same moment does not swallow a signal:
 * it goes to the next one. NULL or an uninitialised cv: no-op.
 * Thread safety: safe, with or without the waiters' mutex held; do not
 * block. */
QC_API void qc_cond_signal(qc_cond *cv);
QC_API void qc_cond_broadcast(qc_cond *cv);

/* qc_cond_waiters: the number of threads blocked in qc_cond_wait on cv now
 * (0 for NULL), for tests that must know a thread is waiting before they
 * act. Thread safety: safe; does not block. */
QC_API size_t qc_cond_waiters(qc_cond *cv);

/*
 * qc_cond_wait: atomically unlocks mu and waits on cv until signalled or ctx
 * is done (cancel or deadline); mu is held again on return in every case.
 * Returns 0 when signalled (spurious wake-ups are possible, as with
 * pthread_cond_wait: re-check the predicate), qc_err(ctx) when ctx ended the
 * wait or was done at entry (mu is then never released), EINVAL for NULL
 * arguments or an uninitialised cv, ENOMEM when ctx could not record the
 * waiter, or pthread_mutex_unlock's error (EPERM: mu not held by the
 * caller; nothing waited). When a signal and the end of ctx race, exactly
 * one of them ends the wait: 0 means the signal was taken.
 * Thread safety: safe; blocks, and parks the caller inside a harness.
 */
QC_API int qc_cond_wait(qc_ctx *ctx, qc_cond *cv, pthread_mutex_t *mu);

/*
 * qc_sleep: waits d on ctx's clock. Returns 0 when the time comes, or
 * qc_err(ctx) if ctx is done first (or at entry); d <= 0 returns at once
 * (0, or the context's error). EINVAL for NULL ctx; ENOMEM (virtual clocks)
 * when the wake-up timer could not be armed. On a virtual clock nothing
 * happens in real time: the sleep ends when the clock is moved past it, at
 * once if a harness moves it. If the time comes and ctx ends at the same
 * virtual instant, whichever was armed first wins (a deadline set before the
 * sleep began: the context's error). Thread safety: safe; blocks, and parks
 * the caller inside a harness.
 */
QC_API int qc_sleep(qc_ctx *ctx, qc_duration d);

/* qc_sleep_until: as qc_sleep, until time t on ctx's clock (t at or before
 * now: returns at once; QC_TIME_NEVER: until ctx is done). */
QC_API int qc_sleep_until(qc_ctx *ctx, qc_time t);

/*
 * qc_poll: poll(2) on fds plus ctx's done fd and deadline, for at most
 * timeout on ctx's clock (negative: no limit beyond ctx's deadline; 0: one
 * look without waiting). Returns the number of ready entries of fds (>0;
 * revents set as by poll), 0 on timeout (every revents 0), or -1 with errno
 * ECANCELED/ETIMEDOUT when ctx ended first (also at entry: then nothing is
 * polled), EINVAL for NULL ctx or NULL fds with n > 0, ENOMEM, EMFILE or
 * ENFILE (the done fd or the virtual timer's eventfd could not be made),
 * EBADF (the context's done fd, or the timer's eventfd, was closed by
 * someone else meanwhile: the wait could never end), or poll's own errno.
 * EINTR is retried. When fds are ready and ctx ended in
 * the same poll, the ready fds win. On a virtual clock a finite timeout is a
 * timer on that clock (visible to qc_clock_next_timer while the call waits)
 * which wakes poll through an eventfd when the clock passes it; it never
 * elapses in real time. qc_poll never parks the caller: an outside event can
 * end it. Thread safety: safe; blocks.
 */
QC_API int qc_poll(qc_ctx *ctx, struct pollfd *fds, nfds_t n,
		   qc_duration timeout);

/*
 * qc_read / qc_write: wait until fd is ready (or ctx ends), then one
 * read(2)/write(2) (which may transfer less than n). Return its result, or
 * -1 with errno ECANCELED or ETIMEDOUT (nothing transferred), EINVAL (NULL
 * ctx, fd < 0, NULL buf with n > 0), EBADF (fd not open), qc_poll's errors,
 * or the call's own errno. EINTR, and EAGAIN on a non-blocking fd whose
 * readiness was taken by another thread, are retried (checking ctx again).
 * Thread safety: safe; block; never park.
 */
QC_API ssize_t qc_read(qc_ctx *ctx, int fd, void *buf, size_t n);
QC_API ssize_t qc_write(qc_ctx *ctx, int fd, const void *buf, size_t n);

QC_END_DECLS

#endif /* QUIESCE_WAIT_H */
