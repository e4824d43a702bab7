/*
 * ex_wrong_parent.c: a helper derives its timeout from the background
 * instead of its caller's context.
 *
 * The bug: lookup() gives its back-end call a 2-second timeout, derived from
 * qc_background() "to be safe". The caller's request has 500 ms left; when
 * it expires, the lookup goes on for up to 2 s on its own clock, and a
 * cancelled request no longer stops it. A deadline-propagation test on the
 * virtual clock catches it: at the request's deadline the lookup's context
 * must be done; and quiesce flags the derivation as it happens ("wrong
 * parent"). The fix: derive from the caller's context.
 */
#include <errno.h>
#include <stdatomic.h>

#include "example.h"

static qc_ctx *_Atomic lookup_ctx; /* published for the test's check */

static int lookup(qc_ctx *ctx, bool bad)
{
	qc_ctx *call = bad ? qc_with_timeout(qc_background(), 2 * QC_SECOND)
			   : qc_with_timeout(ctx, 2 * QC_SECOND);
	qc_ctx_set_name(call, "lookup-call");
	atomic_store(&lookup_ctx, qc_retain(call));
	int e = qc_wait(call); /* stands for a call that honours its ctx */
	qc_release(call);
	return e;
}

static int lookup_bad(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return lookup(ctx, true);
}

static int lookup_good(qc_ctx *ctx, void *arg)
{
	(void)arg;
	return lookup(ctx, false);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	atomic_store(&lookup_ctx, NULL);
	qc_ctx *req = qc_with_timeout(qc_h_ctx(h), 500 * QC_MILLISECOND);
	qc_ctx_set_name(req, "request");
	qc_h_spawn(h, req, "lookup", bad ? lookup_bad : lookup_good, NULL);
	qc_h_settle(h);
	qc_h_advance(h, 500 * QC_MILLISECOND); /* the request's deadline */
	qc_ctx *call = atomic_load(&lookup_ctx);
	int e = qc_err(call);
	v->wrong = e == 0;
	snprintf(v->note, sizeof v->note,
		 "at the request's deadline (+500ms) the lookup's context "
		 "was %s",
		 e == ETIMEDOUT ? "done (ETIMEDOUT)" : "still live");
	qc_release(req);
	ex_quiet(h, 100 * QC_MILLISECOND, v);
	qc_cancel(call); /* unblock the BAD lookup */
	qc_h_expect_quiet(h, QC_SECOND);
	qc_release(call);
	ex_leaks(h, v);
}

const qc_example ex_wrong_parent = {
    .name = "wrong-parent",
    .bug = "helper derives its timeout from qc_background()",
    .run = run,
    .opts = {.guard = 200 * QC_MILLISECOND},
    .expect = {"wrong parent", "ex_wrong_parent.c", "\"lookup\""},
};
