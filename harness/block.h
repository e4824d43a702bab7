/*
 * block.h: the small pieces shared by quiesce's blocking primitives
 * (wait.c, chan.c, group.c): a futex lock that fits in 32 bits, and the
 * waiter word with the context hook that cancels it.
 *
 * The lock is Drepper's three-state futex mutex ("Futexes are tricky"):
 * 0 free, 1 locked, 2 locked with possible sleepers. Its acquire and release
 * are C11 atomics, so ThreadSanitizer sees the happens-before edges it makes.
 * It is not recursive and does not check its owner. helgrind and drd know
 * it as a lock through annotate.h (a lock whose memory is freed must be
 * passed to qc__lock_destroy first).
 *
 * A waiter word is a 32-bit atomic a blocked thread futex-waits on while it
 * holds QC_W_WAITING. Whoever ends the wait moves it away from QC_W_WAITING
 * with one compare-and-swap (so exactly one waker wins) and then wakes it.
 * That store is also what tells a live harness the thread is no longer
 * parked (park.h evaluates *word != expect).
 */
#ifndef QC_BLOCK_H
#define QC_BLOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "annotate.h"
#include "futex.h"

/* ---------------------------------------------------------------- lock */

typedef struct qc__lock {
	_Atomic uint32_t v; /* 0 free, 1 locked, 2 locked and contended */
} qc__lock;

#define QC_LOCK_INIT \
	{            \
		0    \
	}

static inline void qc__lock_slow(qc__lock *l)
{
	/* A short spin first: the critical sections are a few hundred
	 * nanoseconds, far less than a futex round trip. */
	for (int i = 0; i < 100; i++) {
		uint32_t c = 0;
		if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->v, &c, 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return;
		if (i >= 50)
			sched_yield();
	}
	while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
		qc__futex_wait(&l->v, 2, -1);
}

static inline void qc__lock_acquire(qc__lock *l)
{
	uint32_t c = 0;
	if (!atomic_compare_exchange_strong_explicit(
		&l->v, &c, 1, memory_order_acquire, memory_order_relaxed))
		qc__lock_slow(l);
	QC_ANN_LOCK_ACQUIRED(l);
}

static inline void qc__lock_release(qc__lock *l)
{
	QC_ANN_LOCK_RELEASED(l);
	if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
		qc__futex_wake(&l->v, 1);
}

/* Initialises a lock in memory that may hold an old one; a lock in zeroed
 * or static memory needs no call. */
static inline void qc__lock_init(qc__lock *l)
{
	atomic_init(&l->v, 0);
	QC_ANN_LOCK_CREATE(l);
}

/* Before freeing the memory of a lock (unlocked, never to be used again):
 * tells helgrind and drd that it is gone. No effect outside them. */
static inline void qc__lock_destroy(qc__lock *l)
{
	QC_ANN_LOCK_DESTROY(l);
}

/* --------------------------------------------------------- waiter words */

enum {
	QC_W_WAITING = 0,   /* blocked; the park record's expected value */
	QC_W_CANCELLED = 1, /* the context ended the wait */
			    /* Values >= 2 are the primitive's own results. */
};

/* Moves *w from QC_W_WAITING to v; true if this call won. seq_cst, so the
 * harness's lazy "still parked?" check sees it at once. The claim publishes
 * what the claimer did before it to the waiter (qc__word_wait); a claimer
 * that loses the compare-and-swap still counts as publishing for helgrind,
 * so the load first keeps that to the rare lost race. */
static inline bool qc__word_claim(_Atomic uint32_t *w, uint32_t v)
{
	uint32_t expect = QC_W_WAITING;
	if (atomic_load(w) != QC_W_WAITING)
		return false;
	QC_ANN_HAPPENS_BEFORE(w);
	return atomic_compare_exchange_strong(w, &expect, v);
}

/* A context hook (qc__hook_add) that cancels the wait of the thread whose
 * waiter word is arg. Runs on the cancelling thread with no lock held; the
 * waiter keeps the word alive until qc__hook_remove has returned. */
static inline void qc__word_cancel_hook(void *arg)
{
	_Atomic uint32_t *w = arg;
	if (qc__word_claim(w, QC_W_CANCELLED))
		qc__futex_wake(w, 1);
}

/* Blocks while *w is QC_W_WAITING; returns its final value. */
static inline uint32_t qc__word_wait(_Atomic uint32_t *w)
{
	uint32_t v;
	while ((v = atomic_load(w)) == QC_W_WAITING)
		qc__futex_wait(w, QC_W_WAITING, -1);
	QC_ANN_HAPPENS_AFTER(w);
	return v;
}

#endif /* QC_BLOCK_H */
