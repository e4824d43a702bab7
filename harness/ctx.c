/*
 * ctx.c: Go-style contexts on real and virtual clocks.
 *
 * Shape: every context that can be done and whose parent can be done is
 * linked into its parent's child list while it is not done; cancelling walks
 * that subtree once (iteratively, so a deep chain needs no stack), marks each
 * node done, detaches it, and queues the nodes that have hooks. Hooks
 * (after-functions and the wake-ups of waiting threads) run after the clock
 * lock is dropped, on the cancelling thread, in registration order.
 *
 * Invariants (under the clock lock):
 * - a linked context is not done; a done context is never linked;
 * - err goes from 0 to ECANCELED/ETIMEDOUT once; cause and the done fd are
 *   published before it (release), so a reader that sees err sees them;
 * - refs counts user references plus one per child (linked or not), so a
 *   child's parent pointer is always valid (value lookups need it);
 * - a context is freed by whoever drops refs to 0, which then takes the
 *   clock lock only if the context may still be reachable (linked, a timer,
 *   or the registry). The cancel walk takes a reference on a node only if
 *   refs > 0, so it never resurrects a context being freed.
 *
 * Lock order: clock lock only; hooks run with no lock held.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "annotate.h"
#include "chaos.h"
#include "futex.h"
#include "internal.h"
#include "park.h"

#define QC_POISON 0xdb

/* --------------------------------------------------------- allocation */

static void ext_init(qc__ctx_ext *x, qc_ctx *self)
{
	memset(x, 0, sizeof *x);
	x->timer.idx = SIZE_MAX;
	x->done_fd = -1;
	x->self = self;
}

/* True if x was allocated together with its context (derive). */
static bool ext_is_inline(const qc__ctx_ext *x)
{
	return (const void *)x == (const void *)(x->self + 1);
}

/* malloc + memset, not calloc: glibc's calloc bypasses the tcache. */
static qc__ctx_ext *ext_new(qc_ctx *self)
{
	qc__ctx_ext *x = qc__malloc(sizeof *x);
	if (x)
		ext_init(x, self);
	return x;
}

/* The context's ext, allocated on first use (clock lock held). */
static qc__ctx_ext *ext_get_locked(qc_ctx *ctx)
{
	if (!ctx->ext)
		ctx->ext = ext_new(ctx);
	return ctx->ext;
}

/* flags change only under the clock lock: a load and a release store, no
 * locked instruction. */
static void flag_set(qc_ctx *ctx, uint8_t f)
{
	uint8_t v = atomic_load_explicit(&ctx->flags, memory_order_relaxed);
	atomic_store_explicit(&ctx->flags, (uint8_t)(v | f),
			      memory_order_release);
}

static void flag_clear(qc_ctx *ctx, uint8_t f)
{
	uint8_t v = atomic_load_explicit(&ctx->flags, memory_order_relaxed);
	QC_ANN_HAPPENS_BEFORE(&ctx->flags); /* ctx_free may follow unlocked */
	atomic_store_explicit(&ctx->flags, (uint8_t)(v & ~f),
			      memory_order_release);
}

static bool flag_has(const qc_ctx *ctx, uint8_t f)
{
	return atomic_load_explicit(&((qc_ctx *)ctx)->flags,
				    memory_order_acquire) &
	       f;
}

/* For helgrind and drd (annotate.h): the first 16 bytes of a context are
 * atomics read without the clock lock (qc_err is inline in the user's code,
 * so its loads cannot carry annotations), and kind, which never changes
 * once the context is published; one request covers them, as a context's
 * creation is a hot path. The orderings the atomics make are annotated
 * where they are made: mark_done publishes err and the library's waits
 * consume it; flag_clear and release_locked publish the end of a
 * canceller's walk, and every dropped reference its holder's use, to
 * ctx_free. */
_Static_assert(offsetof(qc_ctx, err) == 0 && offsetof(qc_ctx, cause) == 4 &&
		   offsetof(qc_ctx, refs) == 8 &&
		   offsetof(qc_ctx, urefs) == 12 &&
		   offsetof(qc_ctx, kind) == 14 &&
		   offsetof(qc_ctx, flags) == 15,
	       "ctx_annotate covers err, cause, refs, urefs, kind and flags");

static void ctx_annotate(qc_ctx *ctx)
{
	QC_ANN_ATOMIC_RANGE(ctx, offsetof(qc_ctx, flags) + 1);
}

qc_ctx *qc__root_new(qc_clock *c)
{
	qc_ctx *r = qc__calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->kind = QC_KIND_ROOT;
	atomic_init(&r->refs, 1);
	r->clock = c;
	ctx_annotate(r);
	return r;
}

static void ext_free(qc__ctx_ext *x)
{
	if (!x)
		return;
	if (x->done_fd >= 0)
		close(x->done_fd);
	for (qc__hook *h = x->owned, *n; h; h = n) {
		n = h->owned_next;
		qc__free(h);
	}
	qc__free(x->name);
	if (!ext_is_inline(x))
		qc__free(x);
}

void qc__root_free(qc_ctx *root)
{
	if (!root)
		return;
	ext_free(root->ext);
	qc__free(root);
}

/* ------------------------------------------------------ tree structure */

static void link_child_locked(qc_ctx *parent, qc_ctx *x)
{
	x->prev = NULL;
	x->next = parent->child;
	if (parent->child)
		parent->child->prev = x;
	parent->child = x;
	flag_set(x, QC_F_LINKED);
}

static void unlink_locked(qc_ctx *x)
{
	if (!flag_has(x, QC_F_LINKED))
		return;
	if (x->prev)
		x->prev->next = x->next;
	else
		x->parent->child = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
	flag_clear(x, QC_F_LINKED);
}

static void reg_link_locked(qc_clock *c, qc_ctx *x)
{
	x->ext->reg_prev = NULL;
	x->ext->reg_next = c->reg_head;
	if (c->reg_head)
		c->reg_head->ext->reg_prev = x;
	c->reg_head = x;
	flag_set(x, QC_F_REG);
}

static void reg_unlink_locked(qc_clock *c, qc_ctx *x)
{
	if (!flag_has(x, QC_F_REG))
		return;
	qc__ctx_ext *e = x->ext;
	if (e->reg_prev)
		e->reg_prev->ext->reg_next = e->reg_next;
	else
		c->reg_head = e->reg_next;
	if (e->reg_next)
		e->reg_next->ext->reg_prev = e->reg_prev;
	flag_clear(x, QC_F_REG);
}

/* True if ctx may ever be done: a cancel or deadline context, or a value
 * context over one. */
static bool ever_done(const qc_ctx *ctx)
{
	while (ctx->kind == QC_KIND_VALUE)
		ctx = ctx->parent;
	return ctx->kind == QC_KIND_CANCEL || ctx->kind == QC_KIND_DEADLINE;
}

/* -------------------------------------------------------- cancellation */

/* Takes a reference unless refs is 0 (the context is being freed). */
static bool ref_if_live(qc_ctx *ctx)
{
	uint32_t r = atomic_load(&ctx->refs);
	while ((r & QC_REFS_MASK) > 0)
		if (atomic_compare_exchange_weak(&ctx->refs, &r, r + 1))
			return true;
	return false;
}

static void batch_add(qc__batch *b, qc_ctx *ctx)
{
	if (!ref_if_live(ctx))
		return;
	ctx->ext->batch_next = NULL;
	if (b->tail)
		b->tail->ext->batch_next = ctx;
	else
		b->head = ctx;
	b->tail = ctx;
}

/* Marks one context done: cause, then the done fd, then err (seq_cst, so
 * that a waiter who set QC_F_WAITERS before sleeping is seen). */
static void mark_done(qc_ctx *ctx, int err, int cause, qc__batch *b)
{
	QC_ASSERT(atomic_load_explicit(&ctx->err, memory_order_relaxed) == 0);
	atomic_store_explicit(&ctx->cause, cause, memory_order_relaxed);
	qc__ctx_ext *x = ctx->ext;
	if (x) {
		if (x->done_fd >= 0) {
			uint64_t one = 1;
			ssize_t w = write(x->done_fd, &one, sizeof one);
			(void)w; /* an eventfd write of 1 cannot fail here */
		}
		/* The flag stays set until the walk is done with ctx (see
		 * qc__cancel_locked): a thread woken below may release ctx,
		 * and must then wait for the clock lock before freeing it. */
		if (flag_has(ctx, QC_F_TIMER))
			qc__timer_disarm_locked(ctx->clock, &x->timer);
		if (x->hooks_head)
			batch_add(b, ctx);
	}
	QC_ANN_HAPPENS_BEFORE(&ctx->err);
	atomic_store(&ctx->err, err);
	if (atomic_load(&ctx->refs) & QC_REFS_WAITERS)
		qc__futex_wake(&ctx->err, INT_MAX);
}

/* The walk's last touch of a done node: its timer flag, then its link.
 * Once both are clear a releasing thread may free it without the lock, so
 * nothing may read the node afterwards. */
static void release_locked(qc_ctx *x)
{
	uint8_t v = atomic_load_explicit(&x->flags, memory_order_relaxed);
	if (v & QC_F_LINKED) {
		if (x->prev)
			x->prev->next = x->next;
		else
			x->parent->child = x->next;
		if (x->next)
			x->next->prev = x->prev;
		x->next = x->prev = NULL;
	}
	if (v & (QC_F_LINKED | QC_F_TIMER)) {
		QC_ANN_HAPPENS_BEFORE(&x->flags); /* ctx_free's acquire */
		atomic_store_explicit(
		    &x->flags, (uint8_t)(v & ~(QC_F_LINKED | QC_F_TIMER)),
		    memory_order_release);
	}
}

void qc__cancel_locked(qc_ctx *ctx, int err, int cause, qc__batch *b)
{
	if (atomic_load_explicit(&ctx->err, memory_order_relaxed))
		return;
	if (!cause)
		cause = err;
	mark_done(ctx, err, cause, b);
	/* Pre-order walk that detaches as it climbs: each node is entered
	 * once as its parent's current first child, and removed when it has
	 * no children left, so the walk is O(subtree) with no stack. */
	qc_ctx *node = ctx;
	for (;;) {
		if (node->child) {
			node = node->child;
			mark_done(node, err, cause, b);
			continue;
		}
		if (node == ctx)
			break;
		qc_ctx *p = node->parent;
		release_locked(node);
		node = p;
	}
	release_locked(ctx);
}

static void run_hooks(qc_ctx *ctx)
{
	qc_clock *c = ctx->clock;
	for (;;) {
		qc__clock_lock(c);
		qc__hook *h = ctx->ext->hooks_head;
		if (!h) {
			qc__clock_unlock(c);
			return;
		}
		ctx->ext->hooks_head = h->next;
		if (h->next)
			h->next->prev = NULL;
		else
			ctx->ext->hooks_tail = NULL;
		atomic_store(&h->state, QC_HOOK_RUNNING);
		qc__clock_unlock(c);
		h->fn(h->arg);
		/* After this store the hook's storage may be gone. */
		QC_ANN_HAPPENS_BEFORE(&h->state);
		atomic_store_explicit(&h->state, QC_HOOK_DONE,
				      memory_order_release);
	}
}

static void ctx_unref(qc_ctx *ctx);

void qc__batch_run(qc__batch *b)
{
	qc_ctx *ctx = b->head;
	while (ctx) {
		qc_ctx *next = ctx->ext->batch_next;
		run_hooks(ctx);
		ctx_unref(ctx);
		ctx = next;
	}
	b->head = b->tail = NULL;
}

static void deadline_fire(qc__timer *t, qc__batch *b)
{
	qc__ctx_ext *x =
	    (qc__ctx_ext *)((char *)t - offsetof(qc__ctx_ext, timer));
	qc__cancel_locked(x->self, ETIMEDOUT, ETIMEDOUT, b);
}

/* ----------------------------------------------------------- lifetime */

static void ctx_free(qc_ctx *ctx)
{
	qc_clock *c = ctx->clock;
	/* Acquire, pairing with flag_clear: a canceller that has just
	 * unlinked ctx in its walk is then done reading it. */
	if (atomic_load_explicit(&ctx->flags, memory_order_acquire) &
	    (QC_F_LINKED | QC_F_TIMER | QC_F_REG)) {
		qc__clock_lock(c);
		unlink_locked(ctx);
		if (flag_has(ctx, QC_F_TIMER))
			qc__timer_disarm_locked(c, &ctx->ext->timer);
		reg_unlink_locked(c, ctx);
		qc__clock_unlock(c);
	} else {
		QC_ANN_HAPPENS_AFTER(&ctx->flags);
	}
	atomic_fetch_add_explicit(&c->freed, 1, memory_order_release);
	ext_free(ctx->ext);
#ifdef QC_DEBUG
	memset(ctx, QC_POISON, sizeof *ctx);
#endif
	qc__free(ctx);
}

/* Drops one reference of any kind; frees the context, and then drops its
 * hold on its parent, when it was the last. Iterative for deep chains. */
static void ctx_unref(qc_ctx *ctx)
{
	while (ctx && ctx->kind != QC_KIND_ROOT) {
		/* acq_rel: every holder's use of ctx happens before the free
		 * by the last one. */
		QC_ANN_HAPPENS_BEFORE(&ctx->refs);
		if ((atomic_fetch_sub_explicit(&ctx->refs, 1,
					       memory_order_acq_rel) &
		     QC_REFS_MASK) != 1)
			return;
		QC_ANN_HAPPENS_AFTER(&ctx->refs);
		qc_ctx *parent = ctx->parent;
		ctx_free(ctx);
		ctx = parent;
	}
}

void qc__ctx_ref(qc_ctx *ctx)
{
	if (ctx && ctx->kind != QC_KIND_ROOT)
		atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void qc__ctx_unref(qc_ctx *ctx)
{
	ctx_unref(ctx);
}

static void die_bad_release(const qc_ctx *ctx, const char *what)
{
	const qc_site *s = ctx->site;
	qc__die("%s of a context created at %s:%d in %s()", what,
		s ? s->file : "?", s ? s->line : 0, s ? s->func : "?");
}

void qc_release(qc_ctx *ctx)
{
	if (!ctx || ctx->kind == QC_KIND_ROOT)
		return;
	if (ctx->kind == (uint8_t)(QC_POISON))
		qc__die("qc_release of a freed context");
	uint16_t u = atomic_load(&ctx->urefs);
	do {
		if (u == 0)
			die_bad_release(ctx, "double qc_release");
	} while (!atomic_compare_exchange_weak(&ctx->urefs, &u, u - 1));
	ctx_unref(ctx);
}

qc_ctx *qc_retain(qc_ctx *ctx)
{
	if (!ctx) {
		errno = EINVAL;
		return NULL;
	}
	if (ctx->kind == QC_KIND_ROOT)
		return ctx;
	uint16_t u = atomic_load(&ctx->urefs);
	do {
		if (u == UINT16_MAX) {
			errno = EOVERFLOW;
			return NULL;
		}
		if (u == 0)
			die_bad_release(ctx,
					"qc_retain after the last qc_release");
	} while (!atomic_compare_exchange_weak(&ctx->urefs, &u, u + 1));
	atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

/* --------------------------------------------------------- derivation */

static qc_ctx *derive(qc_ctx *parent, enum qc__kind kind, qc_time deadline,
		      const void *key, void *value, const qc_site *site)
{
	if (!parent) {
		errno = EINVAL;
		return NULL;
	}
	qc_clock *c = parent->clock;
	if (kind == QC_KIND_DEADLINE) {
		qc_time pd;
		if (qc_deadline(parent, &pd) && pd <= deadline)
			kind = QC_KIND_CANCEL; /* the parent's comes first */
	}
	/* A context that needs its cold part from the start gets it in the
	 * same allocation: one malloc and one free instead of two. */
	bool with_ext =
	    kind == QC_KIND_DEADLINE || kind == QC_KIND_VALUE || c->track;
	qc_ctx *ctx =
	    qc__malloc(sizeof *ctx + (with_ext ? sizeof(qc__ctx_ext) : 0));
	if (!ctx)
		return NULL;
	memset(ctx, 0, sizeof *ctx);
	atomic_init(&ctx->refs, 1);
	atomic_init(&ctx->urefs, 1);
	ctx_annotate(ctx);
	ctx->kind = (uint8_t)kind;
	ctx->parent = parent;
	ctx->site = site;
	ctx->clock = c;
	if (with_ext) {
		ctx->ext = (qc__ctx_ext *)(void *)(ctx + 1);
		ext_init(ctx->ext, ctx);
		ctx->ext->timer.fire = deadline_fire;
		ctx->ext->deadline = deadline;
		ctx->ext->key = key;
		ctx->ext->value = value;
	}

	qc__clock_lock(c);
	int perr = atomic_load_explicit(&parent->err, memory_order_relaxed);
	if (kind == QC_KIND_WITHOUT_CANCEL) {
		/* Never done, never linked. */
	} else if (perr) {
		atomic_store(&ctx->cause, atomic_load(&parent->cause));
		atomic_store(&ctx->err, perr);
	} else if (kind == QC_KIND_DEADLINE && deadline <= qc_now(c)) {
		atomic_store(&ctx->cause, ETIMEDOUT);
		atomic_store(&ctx->err, ETIMEDOUT);
	} else {
		if (kind == QC_KIND_DEADLINE) {
			if (qc__timer_arm_locked(c, &ctx->ext->timer,
						 deadline) != 0) {
				qc__clock_unlock(c);
				ext_free(ctx->ext);
				qc__free(ctx);
				errno = ENOMEM;
				return NULL;
			}
			flag_set(ctx, QC_F_TIMER);
		}
		if (qc__can_be_done(parent))
			link_child_locked(parent, ctx);
	}
	if (c->track && ctx->ext)
		reg_link_locked(c, ctx);
	if (parent->kind != QC_KIND_ROOT)
		atomic_fetch_add_explicit(&parent->refs, 1,
					  memory_order_relaxed);
	/* Under the clock lock, the only writers of made: no locked add. */
	atomic_store_explicit(
	    &c->made, atomic_load_explicit(&c->made, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	qc__clock_unlock(c);
	if (atomic_load_explicit(&qc__h_live, memory_order_relaxed))
		qc__h_note_derive(parent, ctx);
	return ctx;
}

qc_ctx *qc_background(void)
{
	return qc_clock_real()->root;
}

qc_ctx *qc_clock_root(qc_clock *c)
{
	if (!c) {
		errno = EINVAL;
		return NULL;
	}
	return c->root;
}

qc_ctx *qc_with_cancel_at(qc_ctx *parent, const qc_site *site)
{
	return derive(parent, QC_KIND_CANCEL, QC_TIME_NEVER, NULL, NULL, site);
}

qc_ctx *qc_with_deadline_at(qc_ctx *parent, qc_time deadline,
			    const qc_site *site)
{
	return derive(parent, QC_KIND_DEADLINE, deadline, NULL, NULL, site);
}

qc_ctx *qc_with_timeout_at(qc_ctx *parent, qc_duration timeout,
			   const qc_site *site)
{
	if (!parent) {
		errno = EINVAL;
		return NULL;
	}
	qc_time d = qc_time_add(qc_now(parent->clock), timeout);
	return derive(parent, QC_KIND_DEADLINE, d, NULL, NULL, site);
}

qc_ctx *qc_with_value_at(qc_ctx *parent, const void *key, void *value,
			 const qc_site *site)
{
	return derive(parent, QC_KIND_VALUE, QC_TIME_NEVER, key, value, site);
}

qc_ctx *qc_without_cancel_at(qc_ctx *parent, const qc_site *site)
{
	return derive(parent, QC_KIND_WITHOUT_CANCEL, QC_TIME_NEVER, NULL, NULL,
		      site);
}

/* The plain functions behind the site-recording macros. */
#undef qc_with_cancel
#undef qc_with_deadline
#undef qc_with_timeout
#undef qc_with_value
#undef qc_without_cancel
#undef qc_err

qc_ctx *qc_with_cancel(qc_ctx *parent)
{
	return qc_with_cancel_at(parent, NULL);
}

qc_ctx *qc_with_deadline(qc_ctx *parent, qc_time deadline)
{
	return qc_with_deadline_at(parent, deadline, NULL);
}

qc_ctx *qc_with_timeout(qc_ctx *parent, qc_duration timeout)
{
	return qc_with_timeout_at(parent, timeout, NULL);
}

qc_ctx *qc_with_value(qc_ctx *parent, const void *key, void *value)
{
	return qc_with_value_at(parent, key, value, NULL);
}

qc_ctx *qc_without_cancel(qc_ctx *parent)
{
	return qc_without_cancel_at(parent, NULL);
}

/* ------------------------------------------------------------ queries */

int qc_err(const qc_ctx *ctx)
{
	return qc__err_inline(ctx);
}

int qc_cancel_cause(qc_ctx *ctx, int cause)
{
	if (!ctx ||
	    (ctx->kind != QC_KIND_CANCEL && ctx->kind != QC_KIND_DEADLINE))
		return EINVAL;
	if (atomic_load_explicit(&ctx->err, memory_order_acquire))
		return 0; /* the first cancel won */
	qc__batch b = QC_BATCH_INIT;
	qc__chaos_point(QC_CHAOS_CANCEL);
	qc__clock_lock(ctx->clock);
	qc__cancel_locked(ctx, ECANCELED, cause ? cause : ECANCELED, &b);
	qc__clock_unlock(ctx->clock);
	if (b.head) /* hooks to run */
		qc__batch_run(&b);
	return 0;
}

int qc_cancel(qc_ctx *ctx)
{
	return qc_cancel_cause(ctx, 0);
}

int qc_cause(const qc_ctx *ctx)
{
	int e = qc__err_inline(ctx);
	if (e == 0 || !ctx)
		return e;
	return atomic_load_explicit(&((qc_ctx *)ctx)->cause,
				    memory_order_relaxed);
}

bool qc_deadline(const qc_ctx *ctx, qc_time *deadline)
{
	for (; ctx; ctx = ctx->parent) {
		if (ctx->kind == QC_KIND_DEADLINE) {
			if (deadline)
				*deadline = ctx->ext->deadline;
			return true;
		}
		if (ctx->kind == QC_KIND_ROOT ||
		    ctx->kind == QC_KIND_WITHOUT_CANCEL)
			return false;
	}
	return false;
}

void *qc_value(const qc_ctx *ctx, const void *key)
{
	for (; ctx; ctx = ctx->parent)
		if (ctx->kind == QC_KIND_VALUE && ctx->ext->key == key)
			return ctx->ext->value;
	return NULL;
}

qc_clock *qc_ctx_clock(const qc_ctx *ctx)
{
	return ctx ? ctx->clock : NULL;
}

int qc_done_fd(qc_ctx *ctx)
{
	if (!ctx) {
		errno = EINVAL;
		return -1;
	}
	while (ctx->kind == QC_KIND_VALUE)
		ctx = ctx->parent;
	if (!ever_done(ctx)) {
		errno = EINVAL;
		return -1;
	}
	qc_clock *c = ctx->clock;
	qc__clock_lock(c);
	qc__ctx_ext *x = ext_get_locked(ctx);
	int fd = -1, e = ENOMEM;
	if (x && x->done_fd >= 0) {
		fd = x->done_fd;
	} else if (x) {
		fd = eventfd(atomic_load(&ctx->err) ? 1 : 0,
			     EFD_CLOEXEC | EFD_NONBLOCK);
		e = errno;
		x->done_fd = fd;
	}
	qc__clock_unlock(c);
	if (fd < 0)
		errno = e;
	return fd;
}

int qc_wait(qc_ctx *ctx)
{
	if (!ctx)
		return EINVAL;
	int e = qc__err_inline(ctx);
	if (e) {
		QC_ANN_HAPPENS_AFTER(&ctx->err);
		return e;
	}
	if (!ever_done(ctx))
		return EINVAL;
	qc__ctx_set_waiters(ctx);
	qc__park p = {.what = "qc_wait",
		      .clock = ctx->clock,
		      .ctx = ctx,
		      .until = QC_TIME_NEVER};
	qc__chaos_point(QC_CHAOS_WAIT);
	qc__park_begin(&p);
	while ((e = atomic_load(&ctx->err)) == 0)
		qc__futex_wait(&ctx->err, 0, -1);
	QC_ANN_HAPPENS_AFTER(&ctx->err);
	qc__park_end(&p);
	qc__chaos_point(QC_CHAOS_WAKE);
	return e;
}

/* -------------------------------------------------------------- hooks */

static void hook_append_locked(qc__ctx_ext *x, qc__hook *h)
{
	h->next = NULL;
	h->prev = x->hooks_tail;
	if (x->hooks_tail)
		x->hooks_tail->next = h;
	else
		x->hooks_head = h;
	x->hooks_tail = h;
	atomic_store(&h->state, QC_HOOK_PENDING);
}

static void hook_unlink_locked(qc__ctx_ext *x, qc__hook *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		x->hooks_head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		x->hooks_tail = h->prev;
	h->next = h->prev = NULL;
}

int qc__hook_add(qc_ctx *ctx, qc__hook *h, void (*fn)(void *), void *arg)
{
	h->fn = fn;
	h->arg = arg;
	h->ctx = ctx;
	h->owned_next = NULL;
	QC_ANN_ATOMIC(&h->state); /* stored by run_hooks without the lock */
	qc__clock_lock(ctx->clock);
	int e = atomic_load_explicit(&ctx->err, memory_order_relaxed);
	if (!e) {
		qc__ctx_ext *x = ext_get_locked(ctx);
		if (x)
			hook_append_locked(x, h);
		else
			e = ENOMEM;
	}
	qc__clock_unlock(ctx->clock);
	return e;
}

void qc__hook_remove(qc_ctx *ctx, qc__hook *h)
{
	qc__clock_lock(ctx->clock);
	if (atomic_load(&h->state) == QC_HOOK_PENDING) {
		hook_unlink_locked(ctx->ext, h);
		atomic_store(&h->state, QC_HOOK_STOPPED);
	}
	qc__clock_unlock(ctx->clock);
	/* Fired: the canceller is running or about to run fn; h must stay
	 * valid until it is done. fn is a short wake-up. */
	int s;
	while ((s = atomic_load_explicit(&h->state, memory_order_acquire)) ==
	       QC_HOOK_RUNNING)
		sched_yield();
	if (s == QC_HOOK_DONE)
		QC_ANN_HAPPENS_AFTER(&h->state);
}

qc_after *qc_after_func(qc_ctx *ctx, void (*fn)(void *), void *arg)
{
	if (!ctx || !fn) {
		errno = EINVAL;
		return NULL;
	}
	qc__hook *h = qc__calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->fn = fn;
	h->arg = arg;
	h->ctx = ctx;
	QC_ANN_ATOMIC(&h->state); /* stored by run_hooks without the lock */
	qc_clock *c = ctx->clock;
	qc__clock_lock(c);
	qc__ctx_ext *x = ext_get_locked(ctx);
	if (!x) {
		qc__clock_unlock(c);
		qc__free(h);
		errno = ENOMEM;
		return NULL;
	}
	h->owned_next = x->owned;
	x->owned = h;
	bool run_now = atomic_load(&ctx->err) != 0;
	if (run_now)
		atomic_store(&h->state, QC_HOOK_RUNNING);
	else
		hook_append_locked(x, h); /* never fires if never done */
	qc__clock_unlock(c);
	if (run_now) {
		fn(arg);
		atomic_store(&h->state, QC_HOOK_DONE);
	}
	return (qc_after *)h;
}

bool qc_after_stop(qc_after *a)
{
	qc__hook *h = (qc__hook *)a;
	if (!h)
		return false;
	bool stopped = false;
	qc__clock_lock(h->ctx->clock);
	if (atomic_load(&h->state) == QC_HOOK_PENDING) {
		hook_unlink_locked(h->ctx->ext, h);
		atomic_store(&h->state, QC_HOOK_STOPPED);
		stopped = true;
	}
	qc__clock_unlock(h->ctx->clock);
	return stopped;
}

/* -------------------------------------------------- names and reports */

void qc_ctx_set_name(qc_ctx *ctx, const char *name)
{
	if (!ctx)
		return;
	char *copy = name ? qc__strdup(name) : NULL;
	if (name && !copy)
		return;
	qc__clock_lock(ctx->clock);
	qc__ctx_ext *x = ext_get_locked(ctx);
	if (x) {
		qc__free(x->name);
		x->name = copy;
		copy = NULL;
	}
	qc__clock_unlock(ctx->clock);
	qc__free(copy);
}

const char *qc_ctx_name(const qc_ctx *ctx)
{
	return ctx && ctx->ext ? ctx->ext->name : NULL;
}

const qc_site *qc_ctx_site(const qc_ctx *ctx)
{
	return ctx ? ctx->site : NULL;
}

const char *qc__ctx_kind_name(const qc_ctx *ctx)
{
	switch (ctx->kind) {
	case QC_KIND_ROOT:
		return ctx == qc_background() ? "background" : "clock root";
	case QC_KIND_CANCEL:
		return "cancel";
	case QC_KIND_DEADLINE:
		return "deadline";
	case QC_KIND_VALUE:
		return "value";
	default:
		return "without_cancel";
	}
}

static const char *err_name(int e)
{
	switch (e) {
	case 0:
		return "not done";
	case ECANCELED:
		return "ECANCELED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	default:
		return strerror(e);
	}
}

char *qc_ctx_describe(const qc_ctx *ctx, char *buf, size_t n)
{
	if (!buf || n == 0)
		return buf;
	if (!ctx) {
		snprintf(buf, n, "(null context)");
		return buf;
	}
	char when[64] = "", site[160] = "", cause[64] = "";
	qc_time d;
	if (qc_deadline(ctx, &d)) {
		char dur[32];
		qc_time now = qc_now(ctx->clock);
		qc_duration_format(d - now, dur, sizeof dur);
		snprintf(when, sizeof when, ", deadline %s%s",
			 d >= now ? "in " : "", dur);
	}
	if (ctx->site)
		snprintf(site, sizeof site, ", created at %s:%d in %s()",
			 ctx->site->file, ctx->site->line, ctx->site->func);
	int e = qc_err(ctx), c = qc_cause(ctx);
	if (e && c != e)
		snprintf(cause, sizeof cause, " (cause %d: %s)", c,
			 strerror(c));
	const char *name = qc_ctx_name(ctx);
	snprintf(buf, n, "%s%s%s(%s%s%s), %s%s", name ? "\"" : "",
		 name ? name : "", name ? "\" " : "", qc__ctx_kind_name(ctx),
		 when, site, err_name(e), cause);
	return buf;
}

void qc_ctx_dump(const qc_ctx *ctx, FILE *out)
{
	if (!ctx || !out)
		return;
	qc_clock *c = ctx->clock;
	char line[512];
	int depth = 0;
	qc__clock_lock(c);
	const qc_ctx *node = ctx;
	for (;;) {
		fprintf(out, "%*s%s\n", 2 * depth, "",
			qc_ctx_describe(node, line, sizeof line));
		if (node->child) {
			node = node->child;
			depth++;
			continue;
		}
		while (node != ctx && !node->next) {
			node = node->parent;
			depth--;
		}
		if (node == ctx)
			break;
		node = node->next;
	}
	qc__clock_unlock(c);
}

/* ------------------------------------------------------------ registry */

void qc__clock_foreach_live(qc_clock *c, void (*fn)(qc_ctx *, void *),
			    void *arg)
{
	qc__clock_lock(c);
	for (qc_ctx *x = c->reg_head; x; x = x->ext->reg_next)
		if (atomic_load(&x->urefs) > 0)
			fn(x, arg);
	qc__clock_unlock(c);
}

void qc__clock_set_track(qc_clock *c, bool on)
{
	qc__clock_lock(c);
	c->track = on;
	qc__clock_unlock(c);
}
