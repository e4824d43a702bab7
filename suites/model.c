/*
 * model.c: the reference model and interpreter behind check_model.c and
 * fuzz_model.c (see model.h).
 *
 * The model keeps every node ever made (released ones too, since their live
 * descendants still link them to the tree) with its kind, parent, own
 * deadline, error and cause, and the after-functions registered on it. The
 * expected behaviour it encodes is DESIGN.md's: cancelling reaches every
 * descendant below the nearest without_cancel; a child's deadline is the
 * earlier of its own and its parent's; deriving from a done parent gives a
 * done child; timers fire in deadline order; an after-function runs exactly
 * once when its context is done unless stopped first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>

#include "model.h"

enum { MAX_NODES = 96, MAX_AFTERS = 64 };
enum { K_ROOT, K_CANCEL, K_DEADLINE, K_VALUE, K_WITHOUT };

struct node {
	qc_ctx *ctx;
	int parent, kind;
	bool released;
	bool has_timer;	  /* an own deadline, earlier than the parent's */
	bool armed;	  /* its timer is armed (not fired, cancelled, freed) */
	qc_time deadline; /* own deadline (K_DEADLINE with has_timer) */
	int err, cause;
	const void *key;
};

struct after {
	qc_after *h;
	int node;
	bool stopped;
	int runs;
};

struct model {
	qc_clock *clock;
	struct node n[MAX_NODES];
	int count;
	struct after a[MAX_AFTERS];
	int nafter;
	char *why;
	size_t why_len;
	size_t step;
	bool failed;
};

static const char keys[4];
bool model_plant_bug; /* value keys: compared by address */

static void fail(struct model *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct model *m, const char *fmt, ...)
{
	if (m->failed)
		return;
	m->failed = true;
	int k = snprintf(m->why, m->why_len, "step %zu: ", m->step);
	va_list ap;
	va_start(ap, fmt);
	if (k >= 0 && (size_t)k < m->why_len)
		vsnprintf(m->why + k, m->why_len - (size_t)k, fmt, ap);
	va_end(ap);
}

/* Expected deadline of node i: own or parent's, whichever is earlier. */
static bool model_deadline(const struct model *m, int i, qc_time *d)
{
	for (; i >= 0; i = m->n[i].parent) {
		const struct node *x = &m->n[i];
		if (x->kind == K_DEADLINE && x->has_timer) {
			*d = x->deadline;
			return true;
		}
		if (x->kind == K_ROOT || x->kind == K_WITHOUT)
			return false;
	}
	return false;
}

/* Marks i and its descendants done (those not done yet). Children are
 * always made after their parents, so index order is a topological order. */
static void model_cancel(struct model *m, int i, int err, int cause)
{
	if (m->n[i].err)
		return;
	bool hit[MAX_NODES] = {false};
	hit[i] = true;
	m->n[i].err = err;
	m->n[i].cause = cause;
	for (int j = i + 1; j < m->count; j++) {
		struct node *x = &m->n[j];
		if (x->parent >= 0 && hit[x->parent] && x->kind != K_WITHOUT &&
		    !x->err) {
			x->err = err;
			x->cause = cause;
			hit[j] = true;
		}
	}
}

/* A node is freed when released and every child is freed. */
static bool model_freed(const struct model *m, int i)
{
	if (m->n[i].kind == K_ROOT || !m->n[i].released)
		return false;
	for (int j = i + 1; j < m->count; j++)
		if (m->n[j].parent == i && !model_freed(m, j))
			return false;
	return true;
}

/* Fires every expected timer due by t, in (deadline, creation) order. */
static void model_advance(struct model *m, qc_time t)
{
	for (;;) {
		int best = -1;
		for (int i = 0; i < m->count; i++) {
			struct node *x = &m->n[i];
			if (!x->armed || x->err || x->deadline > t ||
			    model_freed(m, i))
				continue;
			if (best < 0 || x->deadline < m->n[best].deadline)
				best = i;
		}
		if (best < 0)
			return;
		model_cancel(m, best, ETIMEDOUT, ETIMEDOUT);
	}
}

static int pick_usable(const struct model *m, uint8_t b)
{
	int usable[MAX_NODES], k = 0;
	for (int i = 0; i < m->count; i++)
		if (!m->n[i].released)
			usable[k++] = i;
	return k ? usable[b % k] : 0;
}

static void check_all(struct model *m)
{
	size_t live = 0, timers = 0;
	qc_time now = qc_now(m->clock);
	for (int i = 0; i < m->count && !m->failed; i++) {
		struct node *x = &m->n[i];
		if (x->kind != K_ROOT && !model_freed(m, i))
			live++;
		if (x->armed && !x->err && !model_freed(m, i))
			timers++;
		if (x->released)
			continue;
		int e = qc_err(x->ctx), c = qc_cause(x->ctx);
		if (e != x->err || c != x->cause)
			fail(m, "node %d: err/cause %d/%d, model %d/%d", i, e,
			     c, x->err, x->cause);
		qc_time d = 0, md = 0;
		bool has = qc_deadline(x->ctx, &d);
		bool mhas = model_deadline(m, i, &md);
		if (has != mhas || (has && d != md))
			fail(m, "node %d: deadline %d/%lld, model %d/%lld", i,
			     has, (long long)d, mhas, (long long)md);
		if (has && !x->err && d <= now)
			fail(m, "node %d: deadline passed but not done", i);
		for (int k = 0; k < 4; k++) {
			const void *want = NULL;
			for (int j = i; j >= 0; j = m->n[j].parent)
				if (m->n[j].kind == K_VALUE &&
				    m->n[j].key == &keys[k]) {
					want = &m->n[j];
					break;
				}
			if (qc_value(x->ctx, &keys[k]) != want)
				fail(m, "node %d: value of key %d", i, k);
		}
	}
	if (qc_clock_live_contexts(m->clock) != live)
		fail(m, "live contexts %zu, model %zu",
		     qc_clock_live_contexts(m->clock), live);
	if (qc_clock_timers(m->clock) != timers)
		fail(m, "armed timers %zu, model %zu",
		     qc_clock_timers(m->clock), timers);
	for (int i = 0; i < m->nafter; i++) {
		struct after *a = &m->a[i];
		int want = !a->stopped && m->n[a->node].err ? 1 : 0;
		if (a->runs != want)
			fail(m,
			     "after-function %d on node %d ran %d times, "
			     "model %d",
			     i, a->node, a->runs, want);
	}
}

static void count_run(void *arg)
{
	((struct after *)arg)->runs++;
}

static void op_derive(struct model *m, const model_op *op)
{
	if (m->count == MAX_NODES)
		return;
	int p = pick_usable(m, op->a);
	int kind = 1 + op->b % 4;
	struct node *x = &m->n[m->count], *px = &m->n[p];
	memset(x, 0, sizeof *x);
	x->parent = p;
	x->kind = kind;
	qc_time now = qc_now(m->clock);
	qc_duration dur = (qc_duration)(op->c % 16) * QC_SECOND - QC_SECOND;
	switch (kind) {
	case K_CANCEL:
		x->ctx = qc_with_cancel(px->ctx);
		break;
	case K_DEADLINE: {
		x->ctx = qc_with_timeout(px->ctx, dur);
		qc_time pd, d = now + dur;
		x->deadline = d;
		x->has_timer = !(model_deadline(m, p, &pd) && pd <= d);
		if (!x->has_timer)
			x->kind = K_CANCEL; /* the parent's deadline rules */
		break;
	}
	case K_VALUE:
		x->key = &keys[op->c % 4];
		x->ctx = qc_with_value(px->ctx, x->key, x);
		break;
	default:
		x->ctx = qc_without_cancel(px->ctx);
	}
	if (!x->ctx) {
		fail(m, "derive failed: errno %d", errno);
		return;
	}
	m->count++;
	if (kind != K_WITHOUT && px->err) {
		x->err = px->err;
		x->cause = px->cause;
	} else if (x->kind == K_DEADLINE && x->deadline <= now) {
		x->err = x->cause = ETIMEDOUT;
	}
	x->armed = x->kind == K_DEADLINE && !x->err;
}

static void op_cancel(struct model *m, const model_op *op, int cause)
{
	int i = pick_usable(m, op->a);
	struct node *x = &m->n[i];
	int e = qc_cancel_cause(x->ctx, cause);
	bool cancelable = x->kind == K_CANCEL || x->kind == K_DEADLINE;
	if (e != (cancelable ? 0 : EINVAL))
		fail(m, "cancel node %d returned %d", i, e);
	if (cancelable)
		model_cancel(m, i, ECANCELED,
			     cause && !model_plant_bug ? cause : ECANCELED);
}

static void op_release(struct model *m, const model_op *op)
{
	int i = pick_usable(m, op->a);
	if (i == 0)
		return;
	for (int k = 0; k < m->nafter; k++)
		if (m->a[k].node == i && !m->a[k].stopped &&
		    m->a[k].runs == 0) {
			if (!qc_after_stop(m->a[k].h))
				fail(m, "stop before release failed");
			m->a[k].stopped = true;
		}
	m->n[i].released = true;
	qc_release(m->n[i].ctx);
}

static void op_after(struct model *m, const model_op *op)
{
	if (m->nafter == MAX_AFTERS)
		return;
	int i = pick_usable(m, op->a);
	struct after *a = &m->a[m->nafter++];
	a->node = i;
	a->h = qc_after_func(m->n[i].ctx, count_run, a);
	if (!a->h)
		fail(m, "after_func failed");
}

static void op_stop(struct model *m, const model_op *op)
{
	if (m->nafter == 0)
		return;
	struct after *a = &m->a[op->a % m->nafter];
	if (m->n[a->node].released)
		return;
	bool want = !a->stopped && a->runs == 0;
	if (qc_after_stop(a->h) != want)
		fail(m, "after_stop returned %d, model %d", !want, want);
	a->stopped = a->stopped || want;
}

static void op_wait(struct model *m, const model_op *op)
{
	int i = pick_usable(m, op->a);
	if (!m->n[i].err)
		return; /* would block: no other thread moves time here */
	int e = qc_wait(m->n[i].ctx);
	if (e != m->n[i].err)
		fail(m, "wait on node %d returned %d", i, e);
}

void model_op_format(const model_op *op, char *buf, size_t n)
{
	static const char *names[] = {
	    "derive", "cancel",	    "cancel_cause", "release", "advance",
	    "set",    "after_func", "after_stop",   "wait"};
	snprintf(buf, n, "%s(%u, %u, %u)", names[op->code % 9], op->a, op->b,
		 op->c);
}

bool model_run(const model_op *ops, size_t n, char *why, size_t why_len)
{
	static struct model m; /* large: keep it off the stack */
	memset(&m, 0, sizeof m);
	m.why = why;
	m.why_len = why_len;
	m.clock = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
	m.n[0] = (struct node){
	    .ctx = qc_clock_root(m.clock), .parent = -1, .kind = K_ROOT};
	m.count = 1;
	for (m.step = 0; m.step < n && !m.failed; m.step++) {
		const model_op *op = &ops[m.step];
		qc_duration d = (qc_duration)op->b * QC_SECOND / 4;
		switch (op->code % 9) {
		case 0:
			op_derive(&m, op);
			break;
		case 1:
			op_cancel(&m, op, 0);
			break;
		case 2:
			op_cancel(&m, op, 1000 + op->b);
			break;
		case 3:
			op_release(&m, op);
			break;
		case 4:
			qc_clock_advance(m.clock, d);
			model_advance(&m, qc_now(m.clock));
			break;
		case 5:
			qc_clock_set(m.clock, qc_now(m.clock) + d);
			model_advance(&m, qc_now(m.clock));
			break;
		case 6:
			op_after(&m, op);
			break;
		case 7:
			op_stop(&m, op);
			break;
		default:
			op_wait(&m, op);
		}
		check_all(&m);
	}
	/* Tear down: cancel and release everything still held. */
	for (int i = m.count - 1; i > 0; i--)
		if (!m.n[i].released) {
			qc_cancel(m.n[i].ctx);
			qc_release(m.n[i].ctx);
		}
	if (!m.failed && qc_clock_live_contexts(m.clock) != 0)
		fail(&m, "%zu contexts outlive their releases",
		     qc_clock_live_contexts(m.clock));
	if (qc_clock_free(m.clock) != 0 && !m.failed)
		fail(&m, "clock still busy at the end");
	return !m.failed;
}
