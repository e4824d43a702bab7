/*
 * ex_lib_thread.c: a thread leaked by a library under test.
 *
 * The bug: a metrics library starts a flusher with pthread_create in
 * metrics_start() and its metrics_stop() only clears a pointer: it neither
 * tells the flusher to stop nor joins it. No quiesce API is involved:
 * quiesce tracks the thread through its pthread_create interposer and
 * reports where it was created (metrics_start, this file), its start
 * routine, and that it is still running. The fix: stop and join in
 * metrics_stop().
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "example.h"

static struct metrics {
	pthread_t flusher;
	_Atomic bool stop;
	_Atomic long flushes;
} m;

static void *flusher_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&m.stop)) {
		struct timespec ts = {0, 1000000}; /* every millisecond */
		nanosleep(&ts, NULL);
		atomic_fetch_add(&m.flushes, 1);
	}
	return NULL;
}

static int metrics_start(void)
{
	atomic_store(&m.stop, false);
	return pthread_create(&m.flusher, NULL, flusher_main, NULL);
}

static void metrics_stop_bad(void)
{
	/* forgets the flusher */
}

static void metrics_stop_good(void)
{
	atomic_store(&m.stop, true);
	pthread_join(m.flusher, NULL);
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	if (metrics_start() != 0) {
		v->wrong = true;
		return;
	}
	(bad ? metrics_stop_bad : metrics_stop_good)();
	ex_quiet(h, 100 * QC_MILLISECOND, v);
	if (bad)
		metrics_stop_good();
	ex_leaks(h, v);
	snprintf(v->note, sizeof v->note, "flusher ran %ld flushes",
		 atomic_load(&m.flushes));
}

const qc_example ex_lib_thread = {
    .name = "lib-thread",
    .bug = "library thread never stopped nor joined",
    .run = run,
    .opts = {.guard = 200 * QC_MILLISECOND},
    .expect = {"flusher_main", "metrics_start", "ex_lib_thread.c"},
};
