/*
 * ex_busy.c: a worker loop that never checks its context.
 *
 * The bug: a worker spins over its queue (or a computation) until a flag
 * that shutdown forgot to set, never looking at the context it was given.
 * In production: shutdown hangs, one core stays at 100% after the request
 * was cancelled. quiesce reports the thread "indexer" as running, created
 * by the test, with context "job" (ECANCELED) that it ignored. The fix:
 * check qc_err(ctx) on every iteration (one atomic load).
 */
#include <stdatomic.h>

#include "example.h"

struct index_job {
	_Atomic bool stop; /* set by nobody in the BAD shutdown path */
	_Atomic long docs;
};

/* BAD: loops until stop, which cancellation never sets. */
static int indexer_bad(qc_ctx *ctx, void *arg)
{
	struct index_job *j = arg;
	(void)ctx;
	while (!atomic_load(&j->stop))
		atomic_fetch_add(&j->docs, 1);
	return 0;
}

/* GOOD: the same loop, also ending when the context is done. */
static int indexer_good(qc_ctx *ctx, void *arg)
{
	struct index_job *j = arg;
	while (!atomic_load(&j->stop) && qc_err(ctx) == 0)
		atomic_fetch_add(&j->docs, 1);
	return qc_err(ctx);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	static struct index_job job;
	atomic_store(&job.stop, false);
	qc_ctx *ctx = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(ctx, "job");
	qc_h_spawn(h, ctx, "indexer", bad ? indexer_bad : indexer_good, &job);
	qc_release(ctx); /* the thread holds its own reference */
	qc_h_cancel(h);	 /* the request is over */
	ex_quiet(h, 100 * QC_MILLISECOND, v);
	atomic_store(&job.stop, true); /* unblock the BAD version */
	qc_h_expect_quiet(h, QC_SECOND);
	ex_leaks(h, v);
}

const qc_example ex_busy = {
    .name = "busy-worker",
    .bug = "worker loop never checks its context",
    .run = run,
    .opts = {.guard = 200 * QC_MILLISECOND},
    .expect = {"\"indexer\"", "running", "\"job\"", "ex_busy.c"},
};
