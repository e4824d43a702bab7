/*
 * ex_pipeline.c: a pipeline stage that forgets to stop.
 *
 * The bug: a middle stage (parse) reads lines from its input channel with
 * the stage's context but forwards with a send that ignores it; the last
 * stage stops early on cancel, the input is closed, and parse blocks in
 * its send, never draining or stopping. quiesce reports "parse" parked in
 * qc_chan_send. The fix: every send and receive of every stage watches the
 * pipeline's context, and a stage that returns closes its output.
 */
#include <errno.h>

#include "example.h"

static qc_chan *lines, *records;
static bool pipe_bad;

/* BAD: waits on the clock's root, so only closing its input stops it, and
 * shutdown relies on the context. GOOD: every wait watches the context. */
static int parse_stage(qc_ctx *ctx, void *arg)
{
	(void)arg;
	qc_ctx *wait_ctx = pipe_bad ? qc_clock_root(qc_ctx_clock(ctx)) : ctx;
	int line;
	while (qc_chan_recv(wait_ctx, lines, &line) == 0) {
		int rec = line + 1000;
		if (qc_chan_send(wait_ctx, records, &rec) != 0)
			break;
	}
	qc_chan_close(records);
	return 0;
}

static int sink_stage(qc_ctx *ctx, void *arg)
{
	(void)arg;
	int rec;
	while (qc_chan_recv(ctx, records, &rec) == 0)
		;
	return qc_err(ctx);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	pipe_bad = bad;
	lines = qc_chan_new(sizeof(int), 4);
	records = qc_chan_new(sizeof(int), 0);
	qc_ctx *p = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(p, "pipeline");
	qc_h_spawn(h, p, "parse", parse_stage, NULL);
	qc_h_spawn(h, p, "sink", sink_stage, NULL);
	for (int i = 0; i < 4; i++)
		qc_chan_send(p, lines, &i);
	qc_release(p);
	qc_h_settle(h);
	qc_h_cancel(h); /* the consumer of the pipeline gives up */
	ex_quiet(h, QC_SECOND, v);
	qc_chan_close(lines); /* what finally stops the BAD stage */
	if (!ex_drain(h, records))
		v->wrong = true;
	qc_chan_free(lines);
	qc_chan_free(records);
	ex_leaks(h, v);
}

const qc_example ex_pipeline = {
    .name = "pipeline",
    .bug = "a stage blocks forwarding after cancel",
    .run = run,
    .expect = {"\"parse\"", "parked in qc_chan_recv", "\"pipeline\""},
};
