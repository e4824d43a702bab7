/*
 * ex_result_send.c: a result send that blocks forever because the consumer
 * left.
 *
 * The bug: a producer hands each result to a consumer through a bounded
 * queue (mutex + condition variable). The consumer takes the first result,
 * gives up (its request timed out) and leaves; the producer blocks on a full
 * queue forever: Go's classic "goroutine leak on send". quiesce reports the
 * thread blocked in futex (a plain condition wait, which cancellation cannot
 * reach). The fix: send on a channel with qc_chan_send(ctx, ...), which
 * also returns when the context is done.
 */
#include <errno.h>
#include <pthread.h>

#include "example.h"

/* A one-slot queue, the way it is often hand-written. */
static struct slot_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool full;
	int value;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};

static qc_chan *results;

static void queue_put(int v)
{
	pthread_mutex_lock(&q.mu);
	while (q.full)
		pthread_cond_wait(&q.cv, &q.mu);
	q.full = true;
	q.value = v;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
}

static int queue_take(void)
{
	pthread_mutex_lock(&q.mu);
	while (!q.full)
		pthread_cond_wait(&q.cv, &q.mu);
	q.full = false;
	int v = q.value;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
	return v;
}

/* BAD: produces three results; blocks once nobody takes them. */
static int producer_bad(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	for (int i = 1; i <= 3; i++)
		queue_put(i);
	return 0;
}

/* GOOD: every send also watches the context. */
static int producer_good(qc_ctx *ctx, void *arg)
{
	(void)arg;
	for (int i = 1; i <= 3; i++) {
		int e = qc_chan_send(ctx, results, &i);
		if (e)
			return e;
	}
	return 0;
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	results = qc_chan_new(sizeof(int), 0);
	qc_ctx *ctx = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(ctx, "query");
	qc_h_spawn(h, ctx, "producer", bad ? producer_bad : producer_good,
		   NULL);
	int first = 0;
	if (bad)
		first = queue_take();
	else
		qc_chan_recv(qc_h_ctx(h), results, &first);
	snprintf(v->note, sizeof v->note, "consumer took result %d and left",
		 first);
	qc_release(ctx);
	qc_h_cancel(h); /* the consumer leaves */
	ex_quiet(h, 100 * QC_MILLISECOND, v);
	if (bad) { /* drain so the BAD producer can finish */
		queue_take();
		queue_take();
	}
	qc_h_expect_quiet(h, QC_SECOND);
	qc_chan_free(results);
	ex_leaks(h, v);
}

const qc_example ex_result_send = {
    .name = "result-send",
    .bug = "send to a departed consumer blocks forever",
    .run = run,
    .opts = {.guard = 200 * QC_MILLISECOND},
    .expect = {"\"producer\"", "blocked in futex", "\"query\""},
};
