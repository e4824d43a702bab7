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
#include <stdint.h>
#include <sys/types.h>

#include <quiesce/api.h>
#include <quiesce/ctx.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

/* qc_cond: a condition variable whose waits a context can end. Caller
 * storage; contents private. */
typedef struct qc_cond {
	uintptr_t qc__opaque[6];
} qc_cond;

/* qc_cond_init: initialises cv. Returns 0 or EINVAL (NULL). */
QC_API int qc_cond_init(qc_cond *cv);

/* qc_cond_destroy: returns 0, EINVAL (NULL) or EBUSY while threads wait on
 * cv (then cv is left intact). */
QC_API int qc_cond_destroy(qc_cond *cv);

/* qc_cond_signal / qc_cond_broadcast: wake one / every waiter. NULL: no-op. */
QC_API void qc_cond_signal(qc_cond *cv);
QC_API void qc_cond_broadcast(qc_cond *cv);

/*
 * qc_cond_wait: atomically unlocks mu and waits on cv until signalled or ctx
 * is done (cancel or deadline); mu is held again on return in every case.
 * Returns 0 when signalled (spurious wake-ups are possible, as with
 * pthread_cond_wait), qc_err(ctx) when ctx ended the wait, EINVAL for NULL
 * arguments.
 */
QC_API int qc_cond_wait(qc_ctx *ctx, qc_cond *cv, pthread_mutex_t *mu);

/* qc_sleep: waits d on ctx's clock. Returns 0 when the time comes, or
 * qc_err(ctx) if ctx is done first (or at entry); d <= 0 returns at once
 * (0, or the context's error). EINVAL for NULL ctx. */
QC_API int qc_sleep(qc_ctx *ctx, qc_duration d);

/* qc_sleep_until: as qc_sleep, until time t on ctx's clock. */
QC_API int qc_sleep_until(qc_ctx *ctx, qc_time t);

/*
 * qc_poll: poll(2) on fds plus ctx's done fd and deadline, for at most
 * timeout on ctx's clock (negative: no limit beyond ctx's deadline).
 * Returns the number of ready entries (>0), 0 on timeout, or -1 with errno
 * ECANCELED/ETIMEDOUT when ctx ended first (also at entry), EINVAL for NULL
 * ctx or NULL fds with n > 0, or poll's own errno.
 */
QC_API int qc_poll(qc_ctx *ctx, struct pollfd *fds, nfds_t n,
		   qc_duration timeout);

/* qc_read / qc_write: wait until fd is ready (or ctx ends), then one
 * read(2)/write(2). Return its result, or -1 with errno ECANCELED or
 * ETIMEDOUT (nothing transferred), EINVAL, or the call's own errno. */
QC_API ssize_t qc_read(qc_ctx *ctx, int fd, void *buf, size_t n);
QC_API ssize_t qc_write(qc_ctx *ctx, int fd, const void *buf, size_t n);

QC_END_DECLS

#endif /* QUIESCE_WAIT_H */
