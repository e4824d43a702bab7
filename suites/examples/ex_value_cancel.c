/*
 * ex_value_cancel.c: a value context assumed to be cancelable.
 *
 * The bug: shutdown holds the context it handed to a worker, which is a
 * qc_with_value child (it carries the user), and calls qc_cancel on it.
 * A value context has no cancellation of its own: qc_cancel returns EINVAL
 * (in Go it has no cancel function at all), the return value is ignored,
 * and the worker keeps ticking. quiesce shows the thread still parked in
 * its periodic qc_sleep; the scenario shows the EINVAL. The fix: cancel
 * the cancelable context the value was derived from.
 */
#include <errno.h>
#include <string.h>

#include "example.h"

static const char user_key; /* value keys compare by address */

static int ticker(qc_ctx *ctx, void *arg)
{
	(void)arg;
	while (qc_sleep(ctx, QC_SECOND) == 0)
		; /* refresh the user's session every second */
	return qc_err(ctx);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	qc_ctx *session = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(session, "session");
	qc_ctx *with_user = qc_with_value(session, &user_key, "alice");
	qc_ctx_set_name(with_user, "user");
	qc_h_spawn(h, with_user, "refresher", ticker, NULL);
	int e = qc_cancel(bad ? with_user : session);
	snprintf(v->note, sizeof v->note, "qc_cancel(\"%s\") returned %s",
		 bad ? "user" : "session", e == EINVAL ? "EINVAL" : "0");
	qc_release(with_user);
	ex_quiet(h, 3 * QC_SECOND, v);
	qc_cancel(session);
	qc_h_expect_quiet(h, QC_SECOND);
	qc_release(session);
	ex_leaks(h, v);
}

const qc_example ex_value_cancel = {
    .name = "value-cancel",
    .bug = "qc_cancel on a value context does nothing",
    .run = run,
    .expect = {"\"refresher\"", "parked in qc_sleep", "\"user\""},
};
