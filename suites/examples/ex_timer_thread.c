/*
 * ex_timer_thread.c: a timer thread that keeps firing after its owner was
 * cancelled.
 *
 * The bug: a periodic timer helper sleeps between ticks on a context that
 * never ends (the clock's root, "so that a tick is never cut short")
 * instead of its owner's. When the owner is cancelled the timer keeps
 * firing forever. On the virtual clock quiesce lets time run to the bound
 * and reports the thread parked in qc_sleep until its next tick. The fix:
 * sleep on the owner's context, so cancelling the owner stops the ticks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

#include "example.h"

static _Atomic int ticks;
static _Atomic bool timer_bad;

static int ticker_main(qc_ctx *owner, void *arg)
{
	(void)arg;
	qc_ctx *sleep_on =
	    timer_bad ? qc_clock_root(qc_ctx_clock(owner)) : owner;
	while (qc_err(owner) == 0 || timer_bad) {
		if (qc_sleep(sleep_on, 250 * QC_MILLISECOND) != 0)
			break;
		atomic_fetch_add(&ticks, 1); /* fire */
		if (atomic_load(&ticks) > 1000)
			break; /* the test's escape hatch */
	}
	return 0;
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	timer_bad = bad;
	atomic_store(&ticks, 0);
	qc_ctx *owner = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(owner, "cache-owner");
	qc_h_spawn(h, owner, "refresh-timer", ticker_main, NULL);
	qc_release(owner);
	qc_h_advance(h, QC_SECOND); /* four ticks while the owner lives */
	int before = atomic_load(&ticks);
	qc_h_cancel(h);
	ex_quiet(h, QC_SECOND, v);
	snprintf(v->note, sizeof v->note,
		 "%d ticks before the cancel, %d after", before,
		 atomic_load(&ticks) - before);
	timer_bad = false; /* let the BAD ticker see its owner */
	qc_h_advance(h, QC_SECOND);
	qc_h_expect_quiet(h, QC_HOUR);
	ex_leaks(h, v);
}

const qc_example ex_timer_thread = {
    .name = "timer-thread",
    .bug = "timer keeps firing after its owner is cancelled",
    .run = run,
    .expect = {"\"refresh-timer\"", "parked in qc_sleep", "\"cache-owner\""},
};
