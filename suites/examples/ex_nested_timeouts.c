/*
 * ex_nested_timeouts.c: nested timeouts and a cache fallback.
 *
 * A request has 10 s; it calls auth (budget 2 s, takes 1 s), the database
 * (budget 5 s, hangs) and an external service (budget 3 s, takes 1 s). Each
 * step's effective deadline is the earliest of its own and the request's;
 * when the database times out, the handler serves from the cache instead.
 * The bug: the database step uses the request's deadline alone (no 5 s
 * budget), so the hang eats the whole request and the cache fallback comes
 * too late for the external call. The test checks, on the virtual clock,
 * the effective deadline at each step and when the answer arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

static struct outcome {
	qc_time start, auth_deadline, db_deadline, ext_deadline, done_at;
	const char *source;
	int err;
} out;
static bool nested_bad;

/* A call that takes d unless its context ends first. */
static int call(qc_ctx *ctx, qc_duration d)
{
	return qc_sleep(ctx, d);
}

static int handle(qc_ctx *req, void *arg)
{
	(void)arg;
	qc_clock *c = qc_ctx_clock(req);
	out.start = qc_now(c);
	QC_DEFER qc_ctx *auth = qc_with_timeout(req, 2 * QC_SECOND);
	qc_deadline(auth, &out.auth_deadline);
	if ((out.err = call(auth, QC_SECOND)) != 0)
		return out.err;
	QC_DEFER qc_ctx *db = nested_bad ? qc_with_cancel(req)
					 : qc_with_timeout(req, 5 * QC_SECOND);
	qc_deadline(db, &out.db_deadline);
	out.source = "database";
	if (call(db, QC_HOUR) == ETIMEDOUT)
		out.source = "cache"; /* fall back */
	QC_DEFER qc_ctx *ext = qc_with_timeout(req, 3 * QC_SECOND);
	qc_deadline(ext, &out.ext_deadline);
	out.err = call(ext, QC_SECOND);
	out.done_at = qc_now(c);
	return out.err;
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	memset(&out, 0, sizeof out);
	nested_bad = bad;
	qc_ctx *req = qc_with_timeout(qc_h_ctx(h), 10 * QC_SECOND);
	qc_ctx_set_name(req, "request");
	qc_h_spawn(h, req, "handler", handle, NULL);
	qc_release(req);
	ex_quiet(h, 15 * QC_SECOND, v); /* waits out the whole request */
	ex_leaks(h, v);
	qc_time s = out.start;
	bool ok = out.auth_deadline == s + 2 * QC_SECOND &&
		  out.db_deadline == s + 6 * QC_SECOND &&
		  out.ext_deadline == s + 9 * QC_SECOND && out.err == 0 &&
		  out.source && strcmp(out.source, "cache") == 0 &&
		  out.done_at == s + 7 * QC_SECOND;
	v->wrong = !ok;
	char db[32];
	qc_duration_format(out.db_deadline - s, db, sizeof db);
	snprintf(v->note, sizeof v->note,
		 "db deadline +%s (want +6s), answer from %s, error %d", db,
		 out.source ? out.source : "nowhere", out.err);
}

const qc_example ex_nested_timeouts = {
    .name = "nested-timeouts",
    .bug = "a step without its own budget eats the request",
    .run = run,
    .expect = {NULL},
};
