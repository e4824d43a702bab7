/*
 * ex_long_compute.c: a long computation that checks its context every N
 * iterations.
 *
 * Checking the context costs one atomic load, but people still check it
 * "every million iterations" to be safe. The bound on shutdown is then N
 * times the cost of one iteration. This example runs on the real clock and
 * measures the worst-case response (cancel to exit) for a large N (BAD:
 * misses a 50 ms bound) and a small N (GOOD: meets it), and prints both.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "example.h"

static _Atomic bool test_abort; /* the test's escape hatch, not the fix */
static long check_every;
static _Atomic qc_time exited_at;

static qc_time raw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

/* One unit of work: a little hashing nobody can optimise away. */
static unsigned long step(unsigned long x)
{
	for (int i = 0; i < 64; i++)
		x = x * 6364136223846793005ul + 1442695040888963407ul;
	return x;
}

static int compute(qc_ctx *ctx, void *arg)
{
	(void)arg;
	volatile unsigned long x = 1; /* keeps the loop honest */
	for (long i = 1;; i++) {
		x = step(x);
		if (i % check_every == 0 && qc_err(ctx))
			break;
		if ((i & 0xffff) == 0 && atomic_load(&test_abort))
			break;
	}
	atomic_store(&exited_at, raw_now());
	return qc_err(ctx);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	atomic_store(&test_abort, false);
	atomic_store(&exited_at, 0);
	check_every = bad ? 1L << 40 : 1L << 10;
	qc_ctx *job = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(job, "render");
	qc_h_spawn(h, job, "renderer", compute, NULL);
	qc_release(job);
	qc_time cancelled = raw_now();
	qc_h_cancel(h);
	ex_quiet(h, 50 * QC_MILLISECOND, v);
	atomic_store(&test_abort, true);
	qc_h_expect_quiet(h, 5 * QC_SECOND);
	ex_leaks(h, v);
	char resp[32];
	qc_duration_format(atomic_load(&exited_at) - cancelled, resp,
			   sizeof resp);
	snprintf(v->note, sizeof v->note,
		 "checks every %ld iterations: response to cancel %s%s",
		 check_every, resp, bad ? " (test hatch)" : "");
}

const qc_example ex_long_compute = {
    .name = "long-compute",
    .bug = "context checked too rarely to meet the bound",
    .run = run,
    .opts = {.real_clock = true},
    .expect = {"\"renderer\"", "running", "\"render\""},
};
