/*
 * oom.c: the out-of-memory sweep's helpers (see oom.h).
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

#include <quiesce/census.h>

#include "alloc.h"
#include "oom.h"
#include "support.h"

/* ---------------------------------------------------------- injection */

static long oom_mark;

/* The next n allocations succeed, then every one fails. */
void oom_on(long n)
{
	oom_mark = qc__alloc_count();
	qc__alloc_fail_after(n);
}

/* Injection off; returns how many allocations were attempted meanwhile. */
long oom_off(void)
{
	qc__alloc_fail_after(-1);
	return qc__alloc_count() - oom_mark;
}

/* Ends a sweep: k failure points were swept before the call succeeded. */
void oom_swept(const char *what, long k)
{
	ck_assert_msg(k < OOM_SWEEP_MAX, "%s: never succeeded", what);
	fprintf(stderr, "check_oom: %s: %ld allocation point%s swept\n", what,
		k, k == 1 ? "" : "s");
}

oom_counts oom_counts_now(void)
{
	oom_counts c;
	ck_assert_int_eq(qc_census_count(0, &c.threads), 0);
	ck_assert_int_eq(qc_census_fd_count(0, &c.fds), 0);
	c.real_live = qc_clock_live_contexts(qc_clock_real());
	c.real_timers = qc_clock_timers(qc_clock_real());
	return c;
}

void oom_counts_same(const oom_counts *a, const char *what, long n)
{
	/* A thread just joined may stay in /proc/self/task for a moment. */
	qc_time end = qcs_now() + qcs_hang(2 * QC_SECOND);
	oom_counts b = oom_counts_now();
	while (b.threads > a->threads && qcs_now() < end) {
		qcs_nap(QC_MILLISECOND);
		b = oom_counts_now();
	}
	ck_assert_msg(a->threads == b.threads,
		      "%s, allocation %ld failing: threads %zu -> %zu", what, n,
		      a->threads, b.threads);
	ck_assert_msg(a->fds == b.fds,
		      "%s, allocation %ld failing: fds %zu -> %zu", what, n,
		      a->fds, b.fds);
	ck_assert_msg(a->real_live == b.real_live,
		      "%s, allocation %ld failing: real-clock contexts %zu -> "
		      "%zu",
		      what, n, a->real_live, b.real_live);
	ck_assert_msg(
	    a->real_timers == b.real_timers,
	    "%s, allocation %ld failing: real-clock timers %zu -> %zu", what, n,
	    a->real_timers, b.real_timers);
}

/* The real clock's timer thread starts at its first deadline: start it
 * now, so that thread counts compare like with like. */
void oom_warm_real_clock(void)
{
	qc_ctx *c = qc_with_timeout(qc_background(), QC_HOUR);
	ck_assert_ptr_nonnull(c);
	qc_cancel(c);
	qc_release(c);
}

/* A context on the real clock with no cold part yet: its first hook,
 * name, after-function or done fd allocates one. */
qc_ctx *oom_bare_ctx(void)
{
	qc_ctx *c = qc_with_cancel(qc_background());
	ck_assert_ptr_nonnull(c);
	return c;
}

void oom_drop(qc_ctx *c)
{
	qc_cancel(c);
	qc_release(c);
}

/* ------------------------------------------------------ the completer */

static bool comp_ready(oom_completer *c)
{
	switch (c->kind) {
	case COMP_SEND:
	case COMP_RECV:
		return qc_chan_waiters(c->ch) > 0;
	case COMP_SIGNAL:
		return qc_cond_waiters(c->cv) > 0;
	default:
		return qc_clock_timers(c->clock) > 0;
	}
}

static void *comp_main(void *arg)
{
	oom_completer *c = arg;
	qc_time end = qcs_now() + qcs_guard(10 * QC_SECOND);
	while (!atomic_load(&c->stop) && qcs_now() < end) {
		if (!comp_ready(c)) {
			qcs_nap(20 * QC_MICROSECOND);
			continue;
		}
		long got;
		switch (c->kind) {
		case COMP_SEND:
			(void)qc_chan_try_send(c->ch, &c->val);
			break;
		case COMP_RECV:
			(void)qc_chan_try_recv(c->ch, &got);
			break;
		case COMP_SIGNAL:
			qc_cond_signal(c->cv);
			break;
		default:
			(void)qc_clock_advance(c->clock, c->d);
			break;
		}
		atomic_store(&c->acted, 1);
		break;
	}
	return NULL;
}

void oom_comp_start(oom_completer *c)
{
	atomic_init(&c->stop, 0);
	atomic_init(&c->acted, 0);
	ck_assert_int_eq(qcs_thread_start(&c->t, comp_main, c), 0);
}

/* Stops the helper (if it has not acted) and joins it; returns whether it
 * acted. */
bool oom_comp_stop(oom_completer *c)
{
	atomic_store(&c->stop, 1);
	ck_assert_int_eq(pthread_join(c->t, NULL), 0);
	return atomic_load(&c->acted) != 0;
}

int oom_parked_worker(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	return qc_wait(arg) == ECANCELED ? 0 : 1;
}
