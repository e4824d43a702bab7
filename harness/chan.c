/*
 * chan.c: Go-style channels and select, whose blocking a context can end.
 *
 * A channel is a ring buffer of capacity elements under one lock, with two
 * FIFO queues of waiting operations: senders and receivers. A blocked
 * thread owns one waiter word (block.h) on its stack and one queue entry per
 * case it waits on (one for send/recv, n for a select). A partner that finds
 * a queued entry claims the waiter with one compare-and-swap of its word
 * (QC_W_WAITING -> DONE or CLOSED with the case index), and only then moves
 * the element; the context hook claims it with QC_W_CANCELLED. Exactly one
 * claim wins, so an operation that fails took nothing and left nothing, even
 * when a partner arrives as the context ends.
 *
 * Invariants (under the channel lock):
 * - a queued receiver that is still waiting implies an empty buffer; a queued
 *   sender that is still waiting implies a full buffer (capacity 0: always);
 *   entries whose waiter was claimed elsewhere are skipped and dropped by
 *   whoever meets them;
 * - a partner claims, copies and wakes while holding the lock of the channel
 *   it works on, and a woken waiter takes the locks of all its channels
 *   before it leaves, so no one touches a waiter's frame after it returned;
 * - ch->inside counts threads with entries enqueued on ch; it drops after
 *   their last unlock, so qc_chan_free can wait for woken threads to leave.
 * The uncontended paths make no system call: a wake happens only when a
 * waiter was claimed.
 *
 * Lock order: clock lock (qc__hook_add) -> channel locks, several of them
 * in address order. No lock is held across qc__park_begin.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <quiesce/chan.h>

#include "block.h"
#include "chaos.h"
#include "internal.h"
#include "park.h"

/* Waiter word results beyond block.h's: 2 + 2 * index (done) and
 * 3 + 2 * index (the channel was closed). */
#define W_DONE(i)   (2u + 2u * (uint32_t)(i))
#define W_CLOSED(i) (3u + 2u * (uint32_t)(i))
#define MAX_CASES   ((size_t)1 << 30)

enum { SEL_STACK = 8 };

typedef struct entry {
	struct entry *next, *prev;
	_Atomic uint32_t *word; /* the waiter's word */
	void *elem;		/* send: source; recv: destination or NULL */
	uint32_t idx;		/* case index */
	bool queued;
} entry;

typedef struct queue {
	entry *head, *tail;
} queue;

struct qc_chan {
	qc__lock lock;
	bool closed;
	size_t esz;		 /* element size, bytes */
	size_t cap;		 /* capacity, elements */
	size_t head, len;	 /* ring: oldest slot, elements buffered */
	queue sendq, recvq;	 /* waiting operations, oldest first */
	_Atomic uint32_t inside; /* threads with entries on this channel */
	unsigned char buf[];	 /* cap * esz bytes */
};

/* -------------------------------------------------------------- queues */

static void q_push(queue *q, entry *e)
{
	e->next = NULL;
	e->prev = q->tail;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	e->queued = true;
}

static void q_unlink(queue *q, entry *e)
{
	if (!e->queued)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	e->next = e->prev = NULL;
	e->queued = false;
}

/* Pops queued entries until one is claimed with result(entry); returns it,
 * or NULL when none was still waiting. */
static entry *q_claim(queue *q, bool closed)
{
	while (q->head) {
		entry *e = q->head;
		q_unlink(q, e);
		if (qc__word_claim(e->word,
				   closed ? W_CLOSED(e->idx) : W_DONE(e->idx)))
			return e;
	}
	return NULL;
}

static void wake(entry *e)
{
	qc__futex_wake(e->word, 1);
}

static unsigned char *slot(qc_chan *ch, size_t i)
{
	return ch->buf + (i % ch->cap) * ch->esz;
}

/* ------------------------------------------------ the non-blocking core */

/* Sends elem on the locked ch. Returns 0, EPIPE (closed) or EAGAIN. */
static int send_locked(qc_chan *ch, const void *elem)
{
	if (ch->closed)
		return EPIPE;
	entry *r = q_claim(&ch->recvq, false);
	if (r) {
		if (r->elem)
			memcpy(r->elem, elem, ch->esz);
		wake(r);
		return 0;
	}
	if (ch->len < ch->cap) {
		memcpy(slot(ch, ch->head + ch->len), elem, ch->esz);
		ch->len++;
		return 0;
	}
	return EAGAIN;
}

/* Receives into elem (NULL: discard) from the locked ch. Returns 0, EPIPE
 * (closed and drained) or EAGAIN. */
static int recv_locked(qc_chan *ch, void *elem)
{
	if (ch->len > 0) {
		if (elem)
			memcpy(elem, slot(ch, ch->head), ch->esz);
		ch->head = (ch->head + 1) % ch->cap;
		ch->len--;
		/* Room now: the oldest waiting sender moves in. */
		entry *s = q_claim(&ch->sendq, false);
		if (s) {
			memcpy(slot(ch, ch->head + ch->len), s->elem, ch->esz);
			ch->len++;
			wake(s);
		}
		return 0;
	}
	entry *s = q_claim(&ch->sendq, false); /* capacity 0: hand-off */
	if (s) {
		if (elem)
			memcpy(elem, s->elem, ch->esz);
		wake(s);
		return 0;
	}
	return ch->closed ? EPIPE : EAGAIN;
}

static int case_locked(const qc_chan_case *k)
{
	return k->op == QC_SEND ? send_locked(k->ch, k->elem)
				: recv_locked(k->ch, k->elem);
}

/* ------------------------------------------------------------ channels */

qc_chan *qc_chan_new(size_t elem_size, size_t capacity)
{
	if (elem_size == 0 || (capacity && elem_size > SIZE_MAX / capacity) ||
	    elem_size * capacity > SIZE_MAX - sizeof(qc_chan)) {
		errno = EINVAL;
		return NULL;
	}
	qc_chan *ch = qc__malloc(sizeof *ch + elem_size * capacity);
	if (!ch)
		return NULL;
	memset(ch, 0, sizeof *ch);
	qc__lock_init(&ch->lock);
	atomic_init(&ch->inside, 0);
	ch->esz = elem_size;
	ch->cap = capacity;
	return ch;
}

/* True if the locked ch has an entry whose thread still waits. */
static bool has_waiters_locked(qc_chan *ch)
{
	for (int i = 0; i < 2; i++)
		for (entry *e = (i ? ch->sendq : ch->recvq).head; e;
		     e = e->next)
			if (atomic_load(e->word) == QC_W_WAITING)
				return true;
	return false;
}

int qc_chan_free(qc_chan *ch)
{
	if (!ch)
		return 0;
	for (;;) {
		qc__lock_acquire(&ch->lock);
		bool busy = has_waiters_locked(ch);
		qc__lock_release(&ch->lock);
		if (busy)
			return EBUSY;
		if (atomic_load(&ch->inside) == 0)
			break;
		sched_yield(); /* woken threads still leaving */
	}
	qc__lock_destroy(&ch->lock);
	qc__free(ch);
	return 0;
}

void qc_chan_close(qc_chan *ch)
{
	if (!ch)
		return;
	qc__lock_acquire(&ch->lock);
	if (!ch->closed) {
		ch->closed = true;
		entry *e;
		while ((e = q_claim(&ch->recvq, true)))
			wake(e);
		while ((e = q_claim(&ch->sendq, true)))
			wake(e);
	}
	qc__lock_release(&ch->lock);
}

size_t qc_chan_len(qc_chan *ch)
{
	if (!ch)
		return 0;
	qc__lock_acquire(&ch->lock);
	size_t n = ch->len;
	qc__lock_release(&ch->lock);
	return n;
}

size_t qc_chan_waiters(qc_chan *ch)
{
	if (!ch)
		return 0;
	size_t n = 0;
	qc__lock_acquire(&ch->lock);
	for (int i = 0; i < 2; i++)
		for (entry *e = (i ? ch->sendq : ch->recvq).head; e;
		     e = e->next)
			n += atomic_load(e->word) == QC_W_WAITING;
	qc__lock_release(&ch->lock);
	return n;
}

int qc_chan_try_send(qc_chan *ch, const void *elem)
{
	if (!ch || !elem)
		return EINVAL;
	qc__lock_acquire(&ch->lock);
	int e = send_locked(ch, elem);
	qc__lock_release(&ch->lock);
	return e;
}

int qc_chan_try_recv(qc_chan *ch, void *elem)
{
	if (!ch)
		return EINVAL;
	qc__lock_acquire(&ch->lock);
	int e = recv_locked(ch, elem);
	qc__lock_release(&ch->lock);
	return e;
}

/* ----------------------------------------------------------- blocking */

/* The distinct channels of a select, in address order (lock order). */
typedef struct chan_set {
	qc_chan **v;
	size_t n;
} chan_set;

static int chan_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (qc_chan *const *)a;
	uintptr_t y = (uintptr_t) * (qc_chan *const *)b;
	return x < y ? -1 : x > y;
}

static void set_build(chan_set *s, const qc_chan_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s->v[i] = cases[i].ch;
	if (n > 1)
		qsort(s->v, n, sizeof *s->v, chan_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || s->v[k - 1] != s->v[i])
			s->v[k++] = s->v[i];
	s->n = k;
}

static void set_lock(const chan_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		qc__lock_acquire(&s->v[i]->lock);
}

static void set_unlock(const chan_set *s)
{
	for (size_t i = s->n; i-- > 0;)
		qc__lock_release(&s->v[i]->lock);
}

/* The first ready case, lowest index first, on the locked set: performs it
 * and returns 0 or EPIPE with *chosen; EAGAIN when none is ready. */
static int first_ready_locked(qc_chan_case *cases, size_t n, size_t *chosen)
{
	for (size_t i = 0; i < n; i++) {
		int e = case_locked(&cases[i]);
		if (e != EAGAIN) {
			*chosen = i;
			return e;
		}
	}
	return EAGAIN;
}

static queue *queue_of(const qc_chan_case *k)
{
	return k->op == QC_SEND ? &k->ch->sendq : &k->ch->recvq;
}

/*
 * The slow path of send, recv and select: with a hook on ctx, locks every
 * channel, takes a ready case if there is one, else queues an entry per case
 * and waits until a partner, close, or ctx claims the waiter word.
 */
static int chan_block(qc_ctx *ctx, qc_chan_case *cases, size_t n,
		      const chan_set *set, entry *ents, size_t *chosen,
		      const char *what)
{
	_Atomic uint32_t word;
	atomic_init(&word, QC_W_WAITING);
	qc__hook hook;
	bool hooked = qc__can_be_done(ctx);
	if (hooked) {
		int e = qc__hook_add(ctx, &hook, qc__word_cancel_hook, &word);
		if (e)
			return e;
	}
	set_lock(set);
	int e;
	if (atomic_load(&word) != QC_W_WAITING) {
		e = qc_err(
		    ctx); /* the context first, even if a case is ready */
		set_unlock(set);
		goto out;
	}
	if ((e = first_ready_locked(cases, n, chosen)) != EAGAIN) {
		set_unlock(set);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ents[i] = (entry){
		    .word = &word, .elem = cases[i].elem, .idx = (uint32_t)i};
		q_push(queue_of(&cases[i]), &ents[i]);
	}
	for (size_t i = 0; i < set->n; i++)
		atomic_fetch_add(&set->v[i]->inside, 1);
	set_unlock(set);

	qc__park p = {.what = what,
		      .clock = ctx->clock,
		      .ctx = ctx,
		      .until = QC_TIME_NEVER,
		      .word = &word,
		      .expect = QC_W_WAITING};
	qc__chaos_point(QC_CHAOS_WAIT);
	qc__park_begin(&p);
	uint32_t w = qc__word_wait(&word);
	qc__park_end(&p);
	qc__chaos_point(QC_CHAOS_WAKE);

	/* The winner finished under the lock of its channel: taking them all
	 * waits for it, and drops the entries nobody claimed. */
	set_lock(set);
	for (size_t i = 0; i < n; i++)
		q_unlink(queue_of(&cases[i]), &ents[i]);
	set_unlock(set);
	for (size_t i = 0; i < set->n; i++)
		atomic_fetch_sub(&set->v[i]->inside, 1); /* last touch */
	if (w == QC_W_CANCELLED) {
		e = qc_err(ctx);
	} else {
		*chosen = (w - 2) / 2;
		e = (w & 1) ? EPIPE : 0;
	}
out:
	if (hooked)
		qc__hook_remove(ctx, &hook);
	return e;
}

/* send and recv: the fast path under one lock, then chan_block. */
static int chan_op(qc_ctx *ctx, qc_chan_case *k, const char *what)
{
	int e = qc_err(ctx);
	if (e)
		return e;
	qc__lock_acquire(&k->ch->lock);
	e = case_locked(k);
	qc__lock_release(&k->ch->lock);
	if (e != EAGAIN)
		return e;
	qc_chan *one = k->ch;
	chan_set set = {&one, 1};
	entry ent;
	size_t chosen;
	return chan_block(ctx, k, 1, &set, &ent, &chosen, what);
}

int qc_chan_send(qc_ctx *ctx, qc_chan *ch, const void *elem)
{
	if (!ctx || !ch || !elem)
		return EINVAL;
	/* The element is only read: the case's pointer is not const. */
	qc_chan_case k = {ch, QC_SEND, (void *)(uintptr_t)elem};
	return chan_op(ctx, &k, "qc_chan_send");
}

int qc_chan_recv(qc_ctx *ctx, qc_chan *ch, void *elem)
{
	if (!ctx || !ch)
		return EINVAL;
	qc_chan_case k = {ch, QC_RECV, elem};
	return chan_op(ctx, &k, "qc_chan_recv");
}

int qc_chan_select(qc_ctx *ctx, qc_chan_case *cases, size_t n, size_t *chosen)
{
	if (!ctx || !cases || n == 0 || n > MAX_CASES || !chosen)
		return EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!cases[i].ch ||
		    (cases[i].op != QC_SEND && cases[i].op != QC_RECV) ||
		    (cases[i].op == QC_SEND && !cases[i].elem))
			return EINVAL;
	int e = qc_err(ctx);
	if (e)
		return e;

	qc_chan *chs_stack[SEL_STACK];
	entry ents_stack[SEL_STACK];
	qc_chan **chs = chs_stack;
	entry *ents = ents_stack;
	void *heap = NULL;
	if (n > SEL_STACK) {
		heap = qc__malloc(n * (sizeof *chs + sizeof *ents));
		if (!heap)
			return ENOMEM;
		ents = heap;
		chs = (qc_chan **)(void *)(ents + n);
	}
	chan_set set = {chs, 0};
	set_build(&set, cases, n);

	size_t which = 0;
	set_lock(&set);
	e = first_ready_locked(cases, n, &which);
	set_unlock(&set);
	if (e == EAGAIN)
		e = chan_block(ctx, cases, n, &set, ents, &which,
			       "qc_chan_select");
	qc__free(heap);
	if (e == 0 || e == EPIPE)
		*chosen = which;
	return e;
}
