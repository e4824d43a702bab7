/*
 * wait.c: blocking that a context can interrupt: condition variables,
 * sleeps on real and virtual clocks, and fd waits.
 *
 * Every wait blocks with a futex on one 32-bit word:
 * - qc_sleep on the real clock waits on ctx->err itself (after setting
 *   QC_F_WAITERS, so the canceller's single FUTEX_WAKE releases every
 *   waiter), with a timeout recomputed from the real clock on each turn;
 * - qc_sleep on a virtual clock, and qc_cond_wait, wait on a word of their
 *   own (block.h) that a clock timer (virtual sleeps), a signaller (conds) or
 *   a context hook (cancellation, including the context's own deadline) moves
 *   away from QC_W_WAITING with one compare-and-swap: the first wins.
 * The fd waits (qc_poll, qc_read, qc_write) block in poll(2) on the user's
 * fds plus the context's done fd; they never park (an outside event can end
 * them).
 *
 * Invariants:
 * - a waiter's word and hook live on its stack; a signaller wakes the word
 *   while holding the cond lock, and the waiter takes that lock once more
 *   before it returns, so no waker touches a dead stack frame; timer fire
 *   callbacks run under the clock lock, which the sleeper takes to disarm;
 *   context hooks are waited for by qc__hook_remove;
 * - cond->waiters counts the threads inside qc_cond_wait; it drops (the
 *   thread's last touch of the cond) only after the cond lock is released,
 *   so qc_cond_destroy can wait for leaving threads.
 *
 * Lock order: user mutex -> clock lock (qc__hook_add) -> cond lock. The user
 * mutex is released before the thread parks or blocks; no lock is held
 * across qc__park_begin (which may move a virtual clock and run hooks).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <quiesce/wait.h>

#include "annotate.h"
#include "block.h"
#include "chaos.h"
#include "internal.h"
#include "park.h"

/* ---------------------------------------------------------- conditions */

enum { COND_MAGIC = 0x71636f6eu, COND_SIGNALLED = 2 };

typedef struct cond_node {
	_Atomic uint32_t word; /* QC_W_WAITING, QC_W_CANCELLED, SIGNALLED */
	bool queued;	       /* in the cond's FIFO (cond lock) */
	struct cond_node *next, *prev;
} cond_node;

/* The private shape of qc_cond. */
typedef struct cond_impl {
	qc__lock lock;
	uint32_t magic;		  /* COND_MAGIC while initialised */
	cond_node *head, *tail;	  /* FIFO of waiters (cond lock) */
	_Atomic uint32_t waiters; /* threads inside qc_cond_wait */
	uint32_t queued;	  /* nodes in the FIFO (cond lock) */
} cond_impl;

_Static_assert(sizeof(cond_impl) <= sizeof(qc_cond), "qc_cond too small");
_Static_assert(_Alignof(cond_impl) <= _Alignof(qc_cond), "qc_cond misaligned");

static cond_impl *cond_get(qc_cond *cv)
{
	return (cond_impl *)(void *)cv;
}

static void cond_push(cond_impl *c, cond_node *n)
{
	n->next = NULL;
	n->prev = c->tail;
	if (c->tail)
		c->tail->next = n;
	else
		c->head = n;
	c->tail = n;
	n->queued = true;
	c->queued++;
}

static void cond_unlink(cond_impl *c, cond_node *n)
{
	if (!n->queued)
		return;
	if (n->prev)
		n->prev->next = n->next;
	else
		c->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		c->tail = n->prev;
	n->next = n->prev = NULL;
	n->queued = false;
	c->queued--;
}

int qc_cond_init(qc_cond *cv)
{
	if (!cv)
		return EINVAL;
	memset(cv, 0, sizeof *cv);
	cond_impl *c = cond_get(cv);
	qc__lock_init(&c->lock);
	atomic_init(&c->waiters, 0);
	c->magic = COND_MAGIC;
	return 0;
}

int qc_cond_destroy(qc_cond *cv)
{
	if (!cv)
		return EINVAL;
	cond_impl *c = cond_get(cv);
	if (c->magic != COND_MAGIC)
		return EINVAL;
	for (;;) {
		qc__lock_acquire(&c->lock);
		/* A queued node whose word already moved belongs to a thread
		 * on its way out (cancelled); only true waiters refuse. */
		for (cond_node *n = c->head; n; n = n->next) {
			if (atomic_load(&n->word) == QC_W_WAITING) {
				qc__lock_release(&c->lock);
				return EBUSY;
			}
		}
		qc__lock_release(&c->lock);
		if (atomic_load(&c->waiters) == 0)
			break;
		sched_yield(); /* woken threads still leaving */
	}
	qc__lock_destroy(&c->lock);
	c->magic = 0;
	return 0;
}

size_t qc_cond_waiters(qc_cond *cv)
{
	if (!cv || cond_get(cv)->magic != COND_MAGIC)
		return 0;
	cond_impl *c = cond_get(cv);
	size_t n = 0;
	qc__lock_acquire(&c->lock);
	for (cond_node *x = c->head; x; x = x->next)
		n += atomic_load(&x->word) == QC_W_WAITING;
	qc__lock_release(&c->lock);
	return n;
}

/* Wakes up to n waiters (0: all), oldest first. */
static void cond_wake(qc_cond *cv, size_t n)
{
	if (!cv)
		return;
	cond_impl *c = cond_get(cv);
	if (c->magic != COND_MAGIC)
		return;
	qc__lock_acquire(&c->lock);
	size_t woken = 0;
	while (c->head && (n == 0 || woken < n)) {
		cond_node *x = c->head;
		cond_unlink(c, x);
		/* A cancelled node is skipped, so the signal is not lost. */
		if (qc__word_claim(&x->word, COND_SIGNALLED)) {
			qc__futex_wake(&x->word, 1);
			woken++;
		}
	}
	qc__lock_release(&c->lock);
}

void qc_cond_signal(qc_cond *cv)
{
	cond_wake(cv, 1);
}

void qc_cond_broadcast(qc_cond *cv)
{
	cond_wake(cv, 0);
}

int qc_cond_wait(qc_ctx *ctx, qc_cond *cv, pthread_mutex_t *mu)
{
	if (!ctx || !cv || !mu || cond_get(cv)->magic != COND_MAGIC)
		return EINVAL;
	int e = qc_err(ctx);
	if (e)
		return e;
	cond_impl *c = cond_get(cv);
	cond_node node = {.queued = false};
	atomic_init(&node.word, QC_W_WAITING);
	qc__hook hook;
	bool hooked = qc__can_be_done(ctx);
	if (hooked) {
		e = qc__hook_add(ctx, &hook, qc__word_cancel_hook, &node.word);
		if (e)
			return e;
	}
	qc__lock_acquire(&c->lock);
	cond_push(c, &node);
	atomic_fetch_add(&c->waiters, 1);
	qc__lock_release(&c->lock);

	e = pthread_mutex_unlock(mu);
	if (e == 0) {
		qc__park p = {.what = "qc_cond_wait",
			      .clock = ctx->clock,
			      .ctx = ctx,
			      .until = QC_TIME_NEVER,
			      .word = &node.word,
			      .expect = QC_W_WAITING};
		qc__chaos_point(QC_CHAOS_WAIT);
		qc__park_begin(&p);
		qc__word_wait(&node.word);
		qc__park_end(&p);
		qc__chaos_point(QC_CHAOS_WAKE);
	}

	qc__lock_acquire(&c->lock);
	cond_unlink(c, &node);
	qc__lock_release(&c->lock);
	/* The last touch of the cond: qc_cond_destroy may free it after. */
	atomic_fetch_sub(&c->waiters, 1);
	if (hooked)
		qc__hook_remove(ctx, &hook);
	if (e)
		return e; /* mu was not ours to unlock: it is as it was */
	int le = pthread_mutex_lock(mu);
	QC_ASSERT(le == 0);
	if (atomic_load(&node.word) == COND_SIGNALLED)
		return 0;
	/* Cancelled (the hook ran, so ctx is done), or never slept. */
	e = qc_err(ctx);
	return e ? e : 0;
}

/* -------------------------------------------------------------- sleeps */

/* The real clock: wait on ctx->err (or a local word if ctx can never be
 * done) with a timeout recomputed on every turn. */
static int sleep_real(qc_ctx *ctx, qc_time until)
{
	qc_clock *c = ctx->clock;
	_Atomic uint32_t local = 0;
	const void *word = &local;
	if (qc__can_be_done(ctx)) {
		qc__ctx_set_waiters(ctx);
		word = &ctx->err;
	}
	qc__park p = {.what = "qc_sleep",
		      .clock = c,
		      .ctx = ctx,
		      .until = until,
		      .word = NULL};
	qc__chaos_point(QC_CHAOS_WAIT);
	qc__park_begin(&p);
	int e;
	/* seq_cst load after the seq_cst flag store: a canceller either sees
	 * QC_F_WAITERS and wakes us, or set err before this load. */
	while ((e = atomic_load(&ctx->err)) == 0) {
		qc_time now = qc_now(c);
		if (now >= until)
			break;
		qc__futex_wait(word, 0,
			       until == QC_TIME_NEVER ? -1 : until - now);
	}
	if (e)
		QC_ANN_HAPPENS_AFTER(&ctx->err); /* mark_done's */
	qc__park_end(&p);
	qc__chaos_point(QC_CHAOS_WAKE);
	return e;
}

/* A virtual clock: a timer on the clock and a hook on ctx both end the wait
 * by claiming the sleeper's word; the first wins. */
static int sleep_virtual(qc_ctx *ctx, qc_time until)
{
	qc_clock *c = ctx->clock;
	qc__sleeper s = QC_SLEEPER_INIT;
	atomic_init(&s.word, QC_W_WAITING);
	qc__hook hook;
	bool hooked = qc__can_be_done(ctx);
	if (hooked) {
		int e = qc__hook_add(ctx, &hook, qc__word_cancel_hook, &s.word);
		if (e)
			return e;
	}
	int e = 0;
	bool armed = false;
	/* No timer for "never": it would be the clock's next timer, and a
	 * harness would move time to the end of time. */
	if (until != QC_TIME_NEVER) {
		qc__clock_lock(c);
		if (until <= qc_now(c))
			atomic_store(&s.word, QC_W_TIME);
		else if ((e = qc__timer_arm_locked(c, &s.timer, until)) == 0)
			armed = true;
		qc__clock_unlock(c);
	}
	if (e == 0) {
		qc__park p = {.what = "qc_sleep",
			      .clock = c,
			      .ctx = ctx,
			      .until = until,
			      .word = &s.word,
			      .expect = QC_W_WAITING};
		qc__chaos_point(QC_CHAOS_WAIT);
		qc__park_begin(&p);
		qc__word_wait(&s.word);
		qc__park_end(&p);
		qc__chaos_point(QC_CHAOS_WAKE);
	}
	if (armed) {
		qc__clock_lock(c);
		qc__timer_disarm_locked(c, &s.timer);
		qc__clock_unlock(c);
	}
	if (hooked)
		qc__hook_remove(ctx, &hook);
	if (e)
		return e;
	return atomic_load(&s.word) == QC_W_TIME ? 0 : qc_err(ctx);
}

int qc_sleep_until(qc_ctx *ctx, qc_time t)
{
	if (!ctx)
		return EINVAL;
	int e = qc_err(ctx);
	if (e)
		return e;
	if (t <= qc_now(ctx->clock))
		return 0;
	if (ctx->clock->is_virtual)
		return sleep_virtual(ctx, t);
	return sleep_real(ctx, t);
}

int qc_sleep(qc_ctx *ctx, qc_duration d)
{
	if (!ctx)
		return EINVAL;
	int e = qc_err(ctx);
	if (e || d <= 0)
		return e;
	return qc_sleep_until(ctx, qc_time_add(qc_now(ctx->clock), d));
}

/* ------------------------------------------------------------ fd waits */

enum { POLL_STACK = 8 };

/* A virtual-clock timeout cannot be waited for in real time: a timer on the
 * clock writes to an eventfd that poll watches beside the user's fds. */
typedef struct poll_timer {
	qc__timer timer; /* first member */
	int fd;
} poll_timer;

static void poll_timer_fire(qc__timer *t, qc__batch *b)
{
	(void)b;
	poll_timer *pt = (poll_timer *)(void *)t;
	uint64_t one = 1;
	ssize_t w = write(pt->fd, &one, sizeof one);
	(void)w; /* an eventfd write of 1 cannot fail short of overflow */
}

/* Milliseconds for poll() until 'until' on the real clock c (-1: never),
 * rounded up so that poll does not return just before the time. */
static int poll_ms(qc_clock *c, qc_time until)
{
	if (until == QC_TIME_NEVER)
		return -1;
	qc_time now = qc_now(c);
	if (now >= until)
		return 0;
	qc_duration rel = until - now;
	qc_duration ms = (rel + QC_MILLISECOND - 1) / QC_MILLISECOND;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* The loop of qc_poll over arr = the user's n fds + extra internal ones
 * (the done fd at n, the timer fd after it); once: a single look. */
static int poll_loop(qc_ctx *ctx, struct pollfd *fds, nfds_t n,
		     struct pollfd *arr, nfds_t total, qc_time until, bool once)
{
	qc_clock *c = ctx->clock;
	for (;;) {
		/* A virtual clock's time is never waited for in real time:
		 * its timeout is the timer fd. */
		int ms = once ? 0 : c->is_virtual ? -1 : poll_ms(c, until);
		int r = poll(arr, total, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		int ready = 0;
		for (nfds_t i = 0; i < n; i++)
			ready += arr[i].revents != 0;
		if (ready > 0) {
			for (nfds_t i = 0; i < n; i++)
				fds[i].revents = arr[i].revents;
			return ready;
		}
		/* quiesce's own fds closed under it (code that closes every
		 * fd): poll would say so at once, forever; give up. */
		for (nfds_t i = n; i < total; i++) {
			if (arr[i].revents & POLLNVAL) {
				errno = EBADF;
				return -1;
			}
		}
		int e = qc_err(ctx);
		if (e) {
			errno = e;
			return -1;
		}
		if (once || qc_now(c) >= until) {
			for (nfds_t i = 0; i < n; i++)
				fds[i].revents = 0;
			return 0;
		}
	}
}

int qc_poll(qc_ctx *ctx, struct pollfd *fds, nfds_t n, qc_duration timeout)
{
	if (!ctx || (!fds && n > 0)) {
		errno = EINVAL;
		return -1;
	}
	int e = qc_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	qc_clock *c = ctx->clock;
	qc_time until =
	    timeout < 0 ? QC_TIME_NEVER : qc_time_add(qc_now(c), timeout);
	int dfd = -1;
	if (qc__can_be_done(ctx)) {
		dfd = qc_done_fd(ctx);
		if (dfd < 0 && errno != EINVAL)
			return -1; /* EMFILE, ENFILE, ENOMEM */
	}
	poll_timer pt = {.timer = QC_TIMER_INIT(poll_timer_fire), .fd = -1};
	bool vtimer = c->is_virtual && until != QC_TIME_NEVER && timeout > 0;
	if (vtimer) {
		pt.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (pt.fd < 0)
			return -1;
	}

	struct pollfd stackarr[POLL_STACK + 2], *arr = stackarr;
	if (n > POLL_STACK) {
		if (n > SIZE_MAX / sizeof *arr - 2) {
			errno = EINVAL;
			goto fail_fd;
		}
		arr = qc__malloc((n + 2) * sizeof *arr);
		if (!arr)
			goto fail_fd;
	}
	for (nfds_t i = 0; i < n; i++) {
		arr[i] = fds[i];
		arr[i].revents = 0;
	}
	nfds_t total = n;
	arr[total++] = (struct pollfd){.fd = dfd, .events = POLLIN};
	if (vtimer) {
		arr[total++] = (struct pollfd){.fd = pt.fd, .events = POLLIN};
		qc__clock_lock(c);
		/* The clock may have passed until since it was computed: a
		 * timer in the past would fire only at the next move. */
		if (until <= qc_now(c))
			poll_timer_fire(&pt.timer, NULL);
		else
			e = qc__timer_arm_locked(c, &pt.timer, until);
		qc__clock_unlock(c);
		if (e) {
			errno = e;
			goto fail_arr;
		}
	}
	int r = poll_loop(ctx, fds, n, arr, total, until, timeout == 0);
	int save = errno;
	if (vtimer) {
		qc__clock_lock(c);
		qc__timer_disarm_locked(c, &pt.timer);
		qc__clock_unlock(c);
	}
	if (arr != stackarr)
		qc__free(arr);
	if (pt.fd >= 0)
		close(pt.fd);
	errno = save;
	return r;

fail_arr:
	if (arr != stackarr)
		qc__free(arr);
fail_fd:
	save = errno;
	if (pt.fd >= 0)
		close(pt.fd);
	errno = save;
	return -1;
}

/* Waits for events on fd, then runs io once; retries a spurious readiness
 * (EAGAIN on a non-blocking fd) and EINTR, checking ctx again each time. */
static ssize_t fd_io(qc_ctx *ctx, int fd, short events, void *rbuf,
		     const void *wbuf, size_t n)
{
	if (!ctx || fd < 0 || (!rbuf && !wbuf && n > 0)) {
		errno = EINVAL;
		return -1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		if (qc_poll(ctx, &p, 1, -1) < 0)
			return -1;
		if (p.revents & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
		ssize_t r = rbuf ? read(fd, rbuf, n) : write(fd, wbuf, n);
		if (r >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return r;
	}
}

ssize_t qc_read(qc_ctx *ctx, int fd, void *buf, size_t n)
{
	if (!buf && n > 0) {
		errno = EINVAL;
		return -1;
	}
	char dummy;
	return fd_io(ctx, fd, POLLIN, buf ? buf : &dummy, NULL, n);
}

ssize_t qc_write(qc_ctx *ctx, int fd, const void *buf, size_t n)
{
	if (!buf && n > 0) {
		errno = EINVAL;
		return -1;
	}
	static const char dummy;
	return fd_io(ctx, fd, POLLOUT, NULL, buf ? buf : &dummy, n);
}
