/*
 * ex_fanout.c: fan-out without cancellation.
 *
 * The bug: four fetchers each get their own cancelable child of the request
 * and retry every second for a minute. The first one fails for good, the
 * caller reports the error, and the other three keep retrying: nothing
 * tells them the result is no longer wanted. quiesce reports them parked in
 * qc_sleep past the bound. The fix: a group (qc_group, Go's errgroup)
 * whose first error cancels the group's context, which every sibling
 * sleeps on.
 */
#include <errno.h>
#include <stdio.h>

#include "example.h"

static int fetch(qc_ctx *ctx, void *arg)
{
	if ((intptr_t)arg == 0)
		return ECONNREFUSED; /* this shard is down */
	for (int attempt = 0; attempt < 60; attempt++) {
		int e = qc_sleep(ctx, QC_SECOND); /* back off, retry */
		if (e)
			return e;
	}
	return 0;
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	qc_ctx *req = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(req, "request");
	qc_ctx *kids[4] = {NULL};
	qc_group *g = NULL;
	if (bad) {
		for (intptr_t i = 0; i < 4; i++) {
			char name[16];
			snprintf(name, sizeof name, "fetch-%d", (int)i);
			kids[i] = qc_with_cancel(req);
			qc_h_spawn(h, kids[i], name, fetch, (void *)i);
		}
	} else {
		g = qc_group_new(req);
		for (intptr_t i = 0; i < 4; i++) {
			char name[16];
			snprintf(name, sizeof name, "fetch-%d", (int)i);
			qc_group_go(g, name, fetch, (void *)i);
		}
	}
	if (g) { /* the first error cancels the rest; wait joins them */
		int e = qc_group_wait(g);
		snprintf(v->note, sizeof v->note, "qc_group_wait returned %s",
			 e == ECONNREFUSED ? "ECONNREFUSED" : "?");
		qc_group_free(g);
	}
	for (int i = 0; i < 4; i++)
		qc_release(kids[i]);
	/* The caller has its answer (the first error) and moves on. */
	ex_quiet(h, 2 * QC_SECOND, v);
	qc_cancel(req); /* clean up the BAD fetchers */
	qc_h_expect_quiet(h, QC_HOUR);
	qc_release(req);
	ex_leaks(h, v);
}

const qc_example ex_fanout = {
    .name = "fanout",
    .bug = "siblings keep working after the first error",
    .run = run,
    .expect = {"\"fetch-1\"", "parked in qc_sleep", "\"request\""},
};
