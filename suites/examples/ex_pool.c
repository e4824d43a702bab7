/*
 * ex_pool.c: a worker pool whose workers block on the results queue after
 * cancel.
 *
 * The bug: workers take jobs from a channel and send results back with a
 * send that waits on nothing but the channel (the clock's root context, so
 * it never gives up). The dispatcher is cancelled after reading two
 * results; the workers holding the next results block in the send forever.
 * quiesce reports them parked in qc_chan_send with no timer that could wake
 * them. The fix: send with the worker's own context.
 */
#include <errno.h>
#include <stdio.h>

#include "example.h"

enum { WORKERS = 3, JOBS = 8 };
static qc_chan *jobs, *results;
static bool pool_bad;

static int worker(qc_ctx *ctx, void *arg)
{
	(void)arg;
	int job;
	while (qc_chan_recv(ctx, jobs, &job) == 0) {
		int result = job * job;
		/* BAD: the clock's root never ends the send. */
		qc_ctx *send_ctx =
		    pool_bad ? qc_clock_root(qc_ctx_clock(ctx)) : ctx;
		if (qc_chan_send(send_ctx, results, &result) != 0)
			break;
	}
	return qc_err(ctx);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	pool_bad = bad;
	jobs = qc_chan_new(sizeof(int), JOBS);
	results = qc_chan_new(sizeof(int), 0);
	qc_ctx *pool = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(pool, "pool");
	for (int i = 0; i < WORKERS; i++) {
		char name[16];
		snprintf(name, sizeof name, "worker-%d", i);
		qc_h_spawn(h, pool, name, worker, NULL);
	}
	for (int j = 1; j <= JOBS; j++)
		qc_chan_send(pool, jobs, &j);
	int r, got = 0;
	for (int i = 0; i < 2; i++)
		got += qc_chan_recv(pool, results, &r) == 0;
	/* Every worker busy with a job before the cancel, however the
	 * threads were scheduled: without this a loaded machine may run
	 * none of them until after it, and the BAD send is never reached. */
	qc_h_settle(h);
	snprintf(v->note, sizeof v->note,
		 "dispatcher read %d results and was cancelled", got);
	qc_release(pool);
	qc_h_cancel(h);
	ex_quiet(h, QC_SECOND, v);
	if (!ex_drain(h, results)) /* lets the BAD senders finish */
		v->wrong = true;
	qc_chan_free(jobs);
	qc_chan_free(results);
	ex_leaks(h, v);
}

const qc_example ex_pool = {
    .name = "pool",
    .bug = "workers block on the results queue after cancel",
    .run = run,
    .expect = {"\"worker-", "parked in qc_chan_send", "\"pool\""},
};
