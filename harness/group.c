/*
 * group.c: Go's errgroup: functions on threads sharing a context; the first
 * non-zero return cancels that context with the error as its cause; wait
 * joins them all and returns the first error.
 *
 * Each qc_group_go allocates a node (the function, its argument, the thread
 * and a copy of its name) and starts a thread through qc__thread_start, so a
 * live harness tracks it. Two futex words drive the waits:
 * - running: threads started and not yet finished; qc_group_wait sleeps on
 *   it until it reaches 0, then joins every node;
 * - active: threads holding a slot under the limit; qc_group_go sleeps on it
 *   while it equals the limit (a counting semaphore).
 * Both waits park inside a harness ("qc_group_wait", "qc_group_go"); their
 * park records point at the word and the value it had, and the harness
 * counts a thread whose word changed as no longer parked. So every change
 * of either word wakes all its sleepers (they look again and park anew
 * with the new value), never only the change a sleeper is waiting for:
 * a sleeper left asleep on a changed word would look runnable to the
 * harness forever, and virtual time would stop.
 *
 * Invariants:
 * - running is raised (under the group lock, after checking that wait has
 *   not returned) before the thread starts, by one more while qc_group_go
 *   has not yet listed the node, and dropped as the thread's last touch of
 *   the group; the group outlives its threads because qc_group_free refuses
 *   until qc_group_wait has joined them all;
 * - first_err is set once (compare-and-swap from 0) and only the setter
 *   cancels the group context, so the cause is the first error.
 *
 * Lock order: group lock, then nothing (it is never held while blocking,
 * starting threads or cancelling).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <quiesce/group.h>

#include "block.h"
#include "internal.h"
#include "park.h"

typedef struct node {
	struct node *next;
	qc_group *g;
	int (*fn)(qc_ctx *ctx, void *arg);
	void *arg;
	pthread_t thread;
	char name[]; /* the thread's name, for reports */
} node;

struct qc_group {
	qc__lock lock;
	qc_ctx *ctx;		  /* owned: one user reference */
	int limit;		  /* max concurrent functions; 0: none */
	int goes;		  /* qc_group_go calls begun and not failed
				     (group lock); > 0 fixes the limit */
	bool waited;		  /* (group lock) */
	node *nodes;		  /* started threads, newest first (lock) */
	_Atomic uint32_t running; /* started, not finished */
	_Atomic uint32_t active;  /* holding a slot under the limit */
	_Atomic int first_err;
	_Atomic uint32_t sleepers; /* threads in group_block */
};

#undef qc_group_new

qc_group *qc_group_new_at(qc_ctx *parent, const qc_site *site)
{
	if (!parent) {
		errno = EINVAL;
		return NULL;
	}
	qc_group *g = qc__calloc(1, sizeof *g);
	if (!g)
		return NULL;
	qc__lock_init(&g->lock);
	atomic_init(&g->running, 0);
	atomic_init(&g->active, 0);
	atomic_init(&g->first_err, 0);
	atomic_init(&g->sleepers, 0);
	g->ctx = qc_with_cancel_at(parent, site);
	if (!g->ctx) {
		int e = errno;
		qc__lock_destroy(&g->lock);
		qc__free(g);
		errno = e;
		return NULL;
	}
	return g;
}

qc_group *qc_group_new(qc_ctx *parent)
{
	return qc_group_new_at(parent, NULL);
}

qc_ctx *qc_group_ctx(qc_group *g)
{
	return g ? g->ctx : NULL;
}

int qc_group_set_limit(qc_group *g, int n)
{
	if (!g)
		return EINVAL;
	int e = 0;
	qc__lock_acquire(&g->lock);
	if (g->goes > 0)
		e = EBUSY;
	else
		g->limit = n > 0 ? n : 0;
	qc__lock_release(&g->lock);
	return e;
}

/* Blocks until *w != v (parked inside a harness as 'what'). */
static void group_block(qc_group *g, _Atomic uint32_t *w, uint32_t v,
			const char *what)
{
	qc__park p = {.what = what,
		      .clock = g->ctx->clock,
		      .ctx = NULL,
		      .until = QC_TIME_NEVER,
		      .word = w,
		      .expect = v};
	/* seq_cst both sides: a waker that changed *w either sees sleepers
	 * and wakes us, or we see its change before sleeping. */
	atomic_fetch_add(&g->sleepers, 1);
	qc__park_begin(&p);
	while (atomic_load(w) == v)
		qc__futex_wait(w, v, -1);
	qc__park_end(&p);
	atomic_fetch_sub(&g->sleepers, 1);
}

/* After a change of *w: wakes every sleeper (see the top comment). */
static void word_changed(qc_group *g, _Atomic uint32_t *w)
{
	if (atomic_load(&g->sleepers))
		qc__futex_wake(w, INT_MAX);
}

static void slot_acquire(qc_group *g)
{
	uint32_t lim = (uint32_t)g->limit;
	for (;;) {
		uint32_t a = atomic_load(&g->active);
		if (a < lim) {
			if (atomic_compare_exchange_weak(&g->active, &a,
							 a + 1)) {
				word_changed(g, &g->active);
				return;
			}
			continue;
		}
		group_block(g, &g->active, a, "qc_group_go");
	}
}

static void slot_release(qc_group *g)
{
	if (g->limit == 0)
		return;
	atomic_fetch_sub(&g->active, 1);
	word_changed(g, &g->active);
}

/* Drops running by n and wakes qc_group_wait to look again. */
static void running_drop(qc_group *g, uint32_t n)
{
	atomic_fetch_sub(&g->running, n);
	word_changed(g, &g->running);
}

static void *group_main(void *arg)
{
	node *nd = arg;
	qc_group *g = nd->g;
	int r = nd->fn(g->ctx, nd->arg);
	int zero = 0;
	if (r != 0 && atomic_compare_exchange_strong(&g->first_err, &zero, r))
		qc_cancel_cause(g->ctx, r);
	slot_release(g);
	/* The last touch of g by this thread: qc_group_wait joins it before
	 * the group can be freed, so the wake inside is still safe. */
	running_drop(g, 1);
	return NULL;
}

int qc_group_go(qc_group *g, const char *name,
		int (*fn)(qc_ctx *ctx, void *arg), void *arg)
{
	if (!g || !fn)
		return EINVAL;
	if (!name)
		name = "group";
	size_t len = strlen(name) + 1;
	node *nd = qc__malloc(sizeof *nd + len);
	if (!nd)
		return ENOMEM;
	nd->g = g;
	nd->fn = fn;
	nd->arg = arg;
	memcpy(nd->name, name, len);

	qc__lock_acquire(&g->lock);
	bool waited = g->waited;
	if (!waited)
		g->goes++; /* fixes the limit from here on */
	qc__lock_release(&g->lock);
	if (waited) {
		qc__free(nd);
		return EINVAL;
	}
	if (g->limit > 0)
		slot_acquire(g);

	qc__lock_acquire(&g->lock);
	if (g->waited) {
		g->goes--;
		qc__lock_release(&g->lock);
		slot_release(g);
		qc__free(nd);
		return EINVAL;
	}
	/* One count for the thread, one for this call until the node is
	 * listed: wait cannot conclude (and miss the node) in between. */
	atomic_fetch_add(&g->running, 2);
	qc__lock_release(&g->lock);
	word_changed(g, &g->running);

	int e = qc__thread_start(&nd->thread, nd->name, g->ctx, group_main, nd);
	if (e) {
		/* A failed go leaves the group as it was. */
		qc__lock_acquire(&g->lock);
		g->goes--;
		qc__lock_release(&g->lock);
		slot_release(g);
		qc__free(nd);
		running_drop(g, 2);
		return e;
	}
	qc__lock_acquire(&g->lock);
	nd->next = g->nodes;
	g->nodes = nd;
	qc__lock_release(&g->lock);
	running_drop(g, 1);
	return 0;
}

int qc_group_wait(qc_group *g)
{
	if (!g)
		return EINVAL;
	node *list;
	for (;;) {
		uint32_t r = atomic_load(&g->running);
		if (r != 0) {
			group_block(g, &g->running, r, "qc_group_wait");
			continue;
		}
		qc__lock_acquire(&g->lock);
		if (atomic_load(&g->running) != 0) {
			qc__lock_release(&g->lock); /* a go slipped in */
			continue;
		}
		g->waited = true;
		list = g->nodes;
		g->nodes = NULL;
		qc__lock_release(&g->lock);
		break;
	}
	/* Every thread has finished its function: the joins are quick. */
	while (list) {
		node *next = list->next;
		int e = pthread_join(list->thread, NULL);
		QC_ASSERT(e == 0);
		qc__free(list);
		list = next;
	}
	qc_cancel(g->ctx);
	return atomic_load(&g->first_err);
}

int qc_group_free(qc_group *g)
{
	if (!g)
		return 0;
	qc__lock_acquire(&g->lock);
	bool busy = g->goes > 0 && !g->waited;
	qc__lock_release(&g->lock);
	if (busy)
		return EBUSY;
	qc_cancel(g->ctx);
	qc_release(g->ctx);
	qc__lock_destroy(&g->lock);
	qc__free(g);
	return 0;
}
