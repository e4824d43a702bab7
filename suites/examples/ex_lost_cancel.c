/*
 * ex_lost_cancel.c: the lost cancel ("cancel shadowed in the error branch").
 *
 * The war story: a search aggregator fans out three back-end queries under
 * a 5-second timeout. One back end fails fast; aggregate() returns the
 * error early and the line that would cancel and release the timeout is
 * never reached. The queries ignore their context (they block in read()),
 * so three threads and the timer outlive the request. Go's goleak shows
 * three stacks; quiesce also says which context they were given, that it
 * was never cancelled, and where it was created. The fix: QC_DEFER on the
 * timeout (cancel and release on every path) and queries that read with
 * qc_read(ctx, ...).
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "example.h"

enum { BACKENDS = 3 };
static int backend[BACKENDS][2]; /* pipes standing for back-end sockets */

static int query_backend_bad(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	char reply;
	return read(*(int *)arg, &reply, 1) == 1 ? 0 : EIO;
}

static int query_backend_good(qc_ctx *ctx, void *arg)
{
	char reply;
	return qc_read(ctx, *(int *)arg, &reply, 1) == 1 ? 0 : errno;
}

/* BAD: the early return skips the cancel and the release. */
static int aggregate_bad(qc_h *h, qc_ctx *parent)
{
	qc_ctx *search = qc_with_timeout(parent, 5 * QC_SECOND);
	qc_ctx_set_name(search, "search");
	for (int i = 0; i < BACKENDS; i++) {
		char name[16];
		snprintf(name, sizeof name, "query-%d", i);
		qc_h_spawn(h, search, name, query_backend_bad, &backend[i][0]);
	}
	int err = EIO; /* the ranking back end failed fast */
	if (err)
		return err; /* search is never cancelled nor released */
	qc_cancel(search);
	qc_release(search);
	return 0;
}

/* GOOD: QC_DEFER cancels and releases search on every path. */
static int aggregate_good(qc_h *h, qc_ctx *parent)
{
	QC_DEFER qc_ctx *search = qc_with_timeout(parent, 5 * QC_SECOND);
	qc_ctx_set_name(search, "search");
	for (int i = 0; i < BACKENDS; i++) {
		char name[16];
		snprintf(name, sizeof name, "query-%d", i);
		qc_h_spawn(h, search, name, query_backend_good, &backend[i][0]);
	}
	int err = EIO;
	if (err)
		return err;
	return 0;
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	for (int i = 0; i < BACKENDS; i++)
		if (pipe(backend[i]) != 0)
			v->wrong = true;
	int e = bad ? aggregate_bad(h, qc_h_ctx(h))
		    : aggregate_good(h, qc_h_ctx(h));
	snprintf(v->note, sizeof v->note, "aggregate() returned %d (%s)", e,
		 e == EIO ? "EIO" : "?");
	/* Nothing is cancelled: the bound runs from here. */
	ex_quiet(h, 100 * QC_MILLISECOND, v);
	for (int i = 0; i < BACKENDS; i++)
		close(backend[i][1]); /* EOF unblocks the BAD queries */
	qc_h_expect_quiet(h, QC_SECOND);
	for (int i = 0; i < BACKENDS; i++)
		close(backend[i][0]);
	ex_leaks(h, v);
}

const qc_example ex_lost_cancel = {
    .name = "lost-cancel",
    .bug = "timeout never cancelled on an error path",
    .run = run,
    .opts = {.guard = 200 * QC_MILLISECOND},
    .expect = {"\"query-0\"", "blocked in read", "\"search\"",
	       "NEVER CANCELLED", "ex_lost_cancel.c"},
};
