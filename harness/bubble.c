/*
 * bubble.c: parked threads and virtual time: qc__park_begin/qc__park_end
 * (park.h), auto-advance, qc_h_settle, qc_h_advance and qc_h_expect_quiet.
 *
 * A bubble thread is parked while its innermost park record's wait is
 * undecided: its context is not done, its time has not come, its word
 * still holds the expected value. The harness evaluates that predicate
 * itself, under the harness lock, whenever it needs to know; so a waker
 * never has to tell the harness anything, and a thread whose wake-up has
 * been decided never counts as parked, even before it runs.
 *
 * Every change that can make "every bubble thread is parked" true (a park,
 * an exit) bumps the harness's epoch word under the lock; threads that wait
 * for that condition (settle, expect_quiet, free) futex-wait on the epoch,
 * in slices, since a wait's word may also return to its expected value
 * without a new park (a counter going down and up again).
 *
 * Invariants (harness lock): at most one thread moves the clock at a time
 * (h->advancing); while it does, nobody is parked (its callbacks run user
 * code) and nobody concludes anything. Auto-advance never passes
 * h->quiet_limit. The test thread is never parked inside
 * qc_h_expect_quiet: it drives virtual time there itself, deterministically.
 *
 * Lock order: harness lock -> clock lock (qc_clock_next_timer). The harness
 * lock is dropped while the clock moves (timers run callbacks).
 */
#include <errno.h>
#include <limits.h>

#include "census_impl.h"
#include "chaos.h"
#include "futex.h"
#include "harness_impl.h"

/* How long one epoch wait lasts before the condition is evaluated again. */
#define QC_SLICE (20 * QC_MILLISECOND)
/* The most a guard is stretched for threads starved of a CPU: this many
 * guards, and at least QC_GUARD_STRETCH_MIN. */
#define QC_GUARD_STRETCH     10
#define QC_GUARD_STRETCH_MIN (5 * QC_SECOND)

bool qc__thr_parked_locked(const qc__thr *r)
{
	if (r->advancing)
		return false;
	const qc__park *p = r->park;
	if (!p)
		return false;
	if (p->ctx && qc_err(p->ctx))
		return false;
	if (p->until != QC_TIME_NEVER && p->until <= qc_now(p->clock))
		return false;
	if (p->word &&
	    atomic_load((_Atomic uint32_t *)(uintptr_t)p->word) != p->expect)
		return false;
	return true;
}

bool qc__h_all_parked_locked(qc_h *h, const qc__thr *except)
{
	if (h->advancing)
		return false;
	for (const qc__thr *r = qc__g_threads; r; r = r->next) {
		if (r == except || r->exited || r->ignored ||
		    atomic_load_explicit(&r->h, memory_order_relaxed) != h)
			continue;
		if (!qc__thr_parked_locked(r))
			return false;
	}
	return true;
}

void qc__h_bump_locked(qc_h *h)
{
	atomic_fetch_add(&h->epoch, 1);
	if (atomic_load(&h->epoch_waiters))
		qc__futex_wake(&h->epoch, INT_MAX);
}

void qc__h_wait_epoch_locked(qc_h *h, qc_duration rel)
{
	uint32_t e = atomic_load(&h->epoch);
	atomic_fetch_add(&h->epoch_waiters, 1);
	qc__h_unlock();
	if (rel > 0)
		(void)qc__futex_wait(&h->epoch, e, rel);
	qc__h_lock();
	atomic_fetch_sub(&h->epoch_waiters, 1);
}

void qc__h_move_clock_locked(qc_h *h, qc_time t)
{
	qc__thr *me = qc__self_thr;
	bool mine =
	    me && atomic_load_explicit(&me->h, memory_order_relaxed) == h;
	h->advancing = true;
	if (mine)
		me->advancing = true;
	qc__h_unlock();
	qc_time now = qc_now(h->clock);
	(void)qc_clock_set(h->clock, t > now ? t : now);
	qc__h_lock();
	h->advancing = false;
	if (mine)
		me->advancing = false;
	qc__h_event_locked(h, QC_EV_TIMER, NULL, NULL, t);
	qc__h_bump_locked(h);
}

void qc__h_maybe_advance_locked(qc_h *h)
{
	if (h->opts.manual_time || !qc_clock_is_virtual(h->clock))
		return;
	while (qc__h_get_live() == h && qc__h_all_parked_locked(h, NULL)) {
		qc_time next;
		if (qc_clock_next_timer(h->clock, &next) != 0 ||
		    next > h->quiet_limit)
			return;
		qc__h_move_clock_locked(h, next);
	}
}

/* ------------------------------------------------------------ parking */

void qc__park_begin(qc__park *p)
{
	qc__chaos_point(QC_CHAOS_PARK);
	p->priv_next = QC_PARK_NOT_PUSHED;
	qc_h *h = atomic_load_explicit(&qc__h_live, memory_order_relaxed);
	qc__thr *me = qc__self_thr;
	if (QC_LIKELY(!h) || !me || !p->clock)
		return;
	qc__h_lock();
	h = qc__h_get_live();
	if (!h || atomic_load_explicit(&me->h, memory_order_relaxed) != h ||
	    me->exited) {
		qc__h_unlock();
		return;
	}
	if (atomic_load(&p->clock->owner) != h) {
		/* A bubble thread waiting on another clock: never parked,
		 * but remembered for the report. */
		if (!me->foreign)
			me->foreign = p;
		qc__h_unlock();
		return;
	}
	p->priv_next = me->park;
	me->park = p;
	qc__h_event_locked(h, QC_EV_PARK, me, p->what, p->until);
	qc__h_bump_locked(h);
	qc__h_maybe_advance_locked(h);
	qc__h_unlock();
}

void qc__park_end(qc__park *p)
{
	qc__thr *me = qc__self_thr;
	if (p->priv_next == QC_PARK_NOT_PUSHED) {
		if (me && me->foreign == p) {
			qc__h_lock();
			me->foreign = NULL;
			qc__h_unlock();
		}
		return;
	}
	qc__h_lock();
	if (me) {
		qc__park **pp = &me->park;
		while (*pp && *pp != p)
			pp = &(*pp)->priv_next;
		if (*pp)
			*pp = p->priv_next;
		qc_h *h = atomic_load_explicit(&me->h, memory_order_relaxed);
		if (h && h == qc__h_get_live())
			qc__h_event_locked(h, QC_EV_WAKE, me, p->what,
					   QC_TIME_NEVER);
	}
	qc__h_unlock();
	p->priv_next = QC_PARK_NOT_PUSHED;
}

/* ------------------------------------------------------------- the guard */

/*
 * The real-time guard catches hangs, not a loaded machine: a thread that
 * was woken but waits for a CPU behind other processes must not fail a
 * test. When the guard runs out while bubble threads are runnable, it
 * watches them for one more probe interval: if one stayed runnable yet got
 * less than an eighth of a CPU, the machine is the reason, and the guard
 * is extended by another probe, up to QC_GUARD_STRETCH guards (at least
 * QC_GUARD_STRETCH_MIN) in all.
 * A spinning thread gets its CPU (on a machine loaded eight times over it
 * may stretch the guard, never past the cap), and a thread blocked in a
 * system call is not runnable: both fail at the guard plus one probe.
 * (Run-queue wait in schedstat cannot tell: it grows only once the thread
 * finally runs.)
 */
typedef struct guard {
	qc_time end, cap; /* qc__now_raw: expires at end, never past cap */
	qc_duration probe;
	bool probing; /* the threads' CPU times were noted at the last end */
} guard;

static guard guard_start(const qc_h *h)
{
	qc_time now = qc__now_raw();
	qc_duration probe = h->guard / 4;
	if (probe < 10 * QC_MILLISECOND)
		probe = 10 * QC_MILLISECOND; /* a few scheduler ticks */
	if (probe > 250 * QC_MILLISECOND)
		probe = 250 * QC_MILLISECOND;
	qc_duration cap = h->guard > INT64_MAX / QC_GUARD_STRETCH
			      ? INT64_MAX
			      : h->guard * QC_GUARD_STRETCH;
	if (cap < QC_GUARD_STRETCH_MIN)
		cap = QC_GUARD_STRETCH_MIN;
	return (guard){.end = qc_time_add(now, h->guard),
		       .cap = qc_time_add(now, cap),
		       .probe = probe};
}

/* Notes r's CPU time; true if, since the last note, it stayed runnable
 * but got less than an eighth of a CPU. */
static bool note_starved(qc__thr *r, qc_duration probe, bool compare)
{
	pid_t tid = atomic_load(&r->tid);
	uint64_t run;
	char state;
	if (tid <= 0 || qc__census_sched(tid, &run, &state) != 0)
		return false;
	bool starved =
	    compare && state == 'R' && run - r->sched_run < (uint64_t)probe / 8;
	r->sched_run = run;
	return starved;
}

/* Whether g has expired at raw time now; may extend it (see above). */
static bool guard_expired_locked(qc_h *h, guard *g, qc_time now)
{
	if (now < g->end)
		return false;
	if (now >= g->cap)
		return true;
	const qc__thr *me = qc__self_thr;
	bool starved = false, any = false;
	for (qc__thr *r = qc__g_threads; r; r = r->next) {
		if (r == me || r->exited || r->ignored ||
		    atomic_load_explicit(&r->h, memory_order_relaxed) != h ||
		    qc__thr_parked_locked(r))
			continue;
		any = true;
		starved |= note_starved(r, g->probe, g->probing);
	}
	if (!any || (g->probing && !starved))
		return true;
	g->probing = true;
	g->end = qc_time_add(now, g->probe);
	if (g->end > g->cap)
		g->end = g->cap;
	return false;
}

/* How long to wait for the epoch before looking at g again. */
static qc_duration guard_slice(const guard *g, qc_time now)
{
	qc_duration rel = g->end > now ? g->end - now : 0;
	return rel < QC_SLICE ? rel : QC_SLICE;
}

/* ------------------------------------------------------ settle, advance */

/* Waits until every bubble thread but the caller is parked or gone, at
 * most until the guard expires. Returns 0 or ETIMEDOUT. */
static int settle_locked(qc_h *h)
{
	const qc__thr *me = qc__self_thr;
	guard g = guard_start(h);
	for (;;) {
		if (qc__h_all_parked_locked(h, me))
			return 0;
		qc_time now = qc__now_raw();
		if (guard_expired_locked(h, &g, now))
			return ETIMEDOUT;
		qc__h_wait_epoch_locked(h, guard_slice(&g, now));
	}
}

int qc_h_settle(qc_h *h)
{
	if (!h || qc__h_get_live() != h)
		return EINVAL;
	qc__h_resolve_ignores(h);
	qc__h_lock();
	int e = settle_locked(h);
	qc__h_unlock();
	return e;
}

int qc_h_advance(qc_h *h, qc_duration d)
{
	if (!h || d < 0 || qc__h_get_live() != h ||
	    !qc_clock_is_virtual(h->clock))
		return EINVAL;
	qc__h_resolve_ignores(h);
	qc__h_lock();
	qc_time target = qc_time_add(qc_now(h->clock), d);
	int e = settle_locked(h);
	while (e == 0) {
		qc_time next;
		if (qc_clock_next_timer(h->clock, &next) != 0 || next > target)
			break;
		qc__h_move_clock_locked(h, next);
		e = settle_locked(h);
	}
	if (e == 0 && qc_now(h->clock) < target) {
		qc__h_move_clock_locked(h, target);
		e = settle_locked(h);
	}
	qc__h_unlock();
	return e;
}

/* --------------------------------------------------------- expect_quiet */

int qc_h_expect_quiet(qc_h *h, qc_duration bound)
{
	if (!h || bound < 0 || qc__h_get_live() != h)
		return EINVAL;
	qc__h_resolve_ignores(h);
	qc__h_lock();
	bool virt = qc_clock_is_virtual(h->clock);
	bool from_cancel = h->cancelled;
	qc_time from = from_cancel ? h->cancel_time : qc_now(h->clock);
	qc_time limit = qc_time_add(from, bound);
	guard g = guard_start(h);
	const qc__thr *me = qc__self_thr;
	h->quiet_limit = limit;
	qc__h_event_locked(h, QC_EV_PARK, NULL, "qc_h_expect_quiet", limit);

	int verdict = 0;
	enum qc__why why = QC_WHY_NONE;
	for (;;) {
		if (!h->advancing && qc__h_alive_locked(h) == 0)
			break;
		qc_time now = qc_now(h->clock);
		if (virt && qc__h_all_parked_locked(h, me)) {
			qc_time next;
			bool timer = qc_clock_next_timer(h->clock, &next) == 0;
			if (!timer) {
				verdict = EDEADLK;
				why = QC_WHY_DEADLOCK;
				break;
			}
			if (h->opts.manual_time) {
				verdict = ETIMEDOUT;
				why = QC_WHY_MANUAL;
				break;
			}
			if (next <= limit) {
				qc__h_move_clock_locked(h, next);
				continue;
			}
			if (now < limit) {
				/* Nothing is due before the bound: go there
				 * and look again (a timer may be armed). */
				qc__h_move_clock_locked(h, limit);
				continue;
			}
			verdict = ETIMEDOUT;
			why = QC_WHY_BOUND;
			break;
		}
		qc_duration rel = QC_SLICE;
		if (virt) {
			qc_time raw = qc__now_raw();
			if (guard_expired_locked(h, &g, raw)) {
				verdict = ETIMEDOUT;
				why = QC_WHY_GUARD;
				break;
			}
			rel = guard_slice(&g, raw);
		} else {
			if (now >= limit) {
				verdict = ETIMEDOUT;
				why = QC_WHY_REAL;
				break;
			}
			if (limit - now < rel)
				rel = limit - now;
		}
		qc__h_wait_epoch_locked(h, rel);
	}
	h->quiet_limit = QC_TIME_NEVER;
	h->last_verdict = verdict;
	h->last_why = why;
	qc__h_event_locked(h, QC_EV_VERDICT, NULL, "qc_h_expect_quiet",
			   QC_TIME_NEVER);
	qc__h_unlock();
	if (verdict == 0)
		qc__h_reap_spawned(h);
	else
		qc__h_build_quiet_report(h, verdict, why, bound, from,
					 from_cancel, limit);
	return verdict;
}
