/*
 * ex_stored_ctx.c: a context stored in a long-lived struct and reused after
 * its request ended.
 *
 * The bug: a connection object keeps the context of the request that opened
 * it ("for later") and its background flusher uses it. When that request
 * ends, every later flush fails at once with ECANCELED and the data is
 * silently dropped; and the retained request context is never released, so
 * the request's whole subtree stays allocated. quiesce's leak check names
 * the context "request" and the line that created it. The fix: the
 * connection derives its own context from a long-lived parent when it is
 * made; requests pass theirs as arguments and never store them.
 */
#include <errno.h>

#include "example.h"

struct conn {
	qc_ctx *ctx; /* what the flusher runs under */
	int flushed, dropped;
};

static struct conn conn;

/* BAD: stores the request's context in the connection. */
static void conn_open_bad(struct conn *c, qc_ctx *server, qc_ctx *req)
{
	(void)server;
	c->ctx = qc_retain(req);
}

/* GOOD: the connection has its own context, a child of the server's. */
static void conn_open_good(struct conn *c, qc_ctx *server, qc_ctx *req)
{
	(void)req;
	c->ctx = qc_with_cancel(server);
	qc_ctx_set_name(c->ctx, "conn");
}

static void conn_flush(struct conn *c)
{
	if (qc_err(c->ctx))
		c->dropped++; /* the write would fail with ECANCELED */
	else
		c->flushed++;
}

/* BAD: "the request owns that context", so closing releases nothing. */
static void conn_close_bad(struct conn *c)
{
	c->ctx = NULL;
}

static void conn_close_good(struct conn *c)
{
	qc_cancel(c->ctx);
	qc_release(c->ctx);
	c->ctx = NULL;
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	conn = (struct conn){0};
	qc_ctx *server = qc_h_ctx(h);
	qc_ctx *req = qc_with_timeout(server, 30 * QC_SECOND);
	qc_ctx_set_name(req, "request");
	(bad ? conn_open_bad : conn_open_good)(&conn, server, req);
	qc_cancel(req); /* the request is answered */
	qc_release(req);
	conn_flush(&conn); /* later, from the flusher */
	snprintf(v->note, sizeof v->note,
		 "after the request ended: %d flush(es) done, %d dropped",
		 conn.flushed, conn.dropped);
	v->wrong = conn.dropped > 0;
	qc_ctx *stored = conn.ctx;
	(bad ? conn_close_bad : conn_close_good)(&conn);
	ex_quiet(h, QC_SECOND, v);
	ex_leaks(h, v);
	if (bad)
		qc_release(stored); /* what the BAD code never does */
}

const qc_example ex_stored_ctx = {
    .name = "stored-ctx",
    .bug = "request context kept in a long-lived struct",
    .run = run,
    .expect = {"\"request\"", "ex_stored_ctx.c"},
};
