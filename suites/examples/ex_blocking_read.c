/*
 * ex_blocking_read.c: a blocking call that ignores the context.
 *
 * The bug: a reader waits for the next message with read() on a socket or
 * pipe. Cancelling its context does nothing: the thread sits in the kernel
 * until a peer writes or closes, which at shutdown may be never. quiesce
 * reports "blocked in read" with the fd and what it is (a pipe here). The
 * fix: qc_read(ctx, fd, ...), which polls the fd together with the
 * context's done fd and deadline. Also the variant that checks its context
 * only after the blocking read returns: just as stuck.
 */
#include <errno.h>
#include <unistd.h>

#include "example.h"

static int pipefd[2];

/* BAD: checks its context, but only after each blocking read. */
static int reader_bad(qc_ctx *ctx, void *arg)
{
	(void)arg;
	char buf[64];
	for (;;) {
		ssize_t n = read(pipefd[0], buf, sizeof buf);
		if (n <= 0 || qc_err(ctx))
			return qc_err(ctx);
	}
}

/* GOOD: the read itself ends when the context does. */
static int reader_good(qc_ctx *ctx, void *arg)
{
	(void)arg;
	char buf[64];
	for (;;) {
		ssize_t n = qc_read(ctx, pipefd[0], buf, sizeof buf);
		if (n <= 0)
			return n < 0 ? errno : 0;
	}
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	if (pipe(pipefd) != 0) {
		v->wrong = true;
		return;
	}
	qc_ctx *ctx = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(ctx, "session");
	qc_h_spawn(h, ctx, "msg-reader", bad ? reader_bad : reader_good, NULL);
	qc_release(ctx);
	qc_h_cancel(h);
	ex_quiet(h, 100 * QC_MILLISECOND, v);
	close(pipefd[1]); /* EOF unblocks the BAD reader */
	qc_h_expect_quiet(h, QC_SECOND);
	close(pipefd[0]);
	ex_leaks(h, v);
}

const qc_example ex_blocking_read = {
    .name = "blocking-read",
    .bug = "read() on a pipe ignores the context",
    .run = run,
    .opts = {.guard = 200 * QC_MILLISECOND},
    .expect = {"\"msg-reader\"", "blocked in read", "pipe", "\"session\""},
};
