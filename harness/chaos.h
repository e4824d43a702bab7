/*
 * chaos.h: chaos mode: seeded, reproducible delays and yields at quiesce's
 * wait, wake and cancel points, so that races in the code under test show
 * up, and replay from the seed (QC_CHAOS_SEED, QC_REPEAT: see
 * include/quiesce/harness.h).
 *
 * A chaos point costs one relaxed load of a flag when chaos mode is off.
 * When it is on, each thread draws from its own xorshift generator, seeded
 * from the global seed and the thread's creation order (the order in which
 * its harness created it; the test thread is 0), so a thread's sequence of
 * decisions does not depend on how the others were scheduled.
 */
#ifndef QC_CHAOS_H
#define QC_CHAOS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <quiesce/api.h>

/* Where a chaos point sits (only counted; every site acts the same). */
enum qc__chaos_site {
	QC_CHAOS_CANCEL, /* qc_cancel_cause, before it locks the clock */
	QC_CHAOS_WAIT,	 /* a blocking wait, just before it blocks */
	QC_CHAOS_WAKE,	 /* a blocking wait, just after it woke */
	QC_CHAOS_PARK,	 /* qc__park_begin, before it looks at the bubble */
	QC_CHAOS_NSITES
};

/* Non-zero while chaos mode is on (written by chaos.c only). */
extern _Atomic int qc__chaos_on;

/* The out-of-line part of qc__chaos_point. */
void qc__chaos_inject(int site);

/* qc__chaos_point: maybe yields or sleeps 0-50 us of real time (chaos
 * mode), else nothing. Never call it with a quiesce lock held. */
static inline void qc__chaos_point(int site)
{
	if (__builtin_expect(
		atomic_load_explicit(&qc__chaos_on, memory_order_relaxed), 0))
		qc__chaos_inject(site);
}

/*
 * qc__chaos_set: turns chaos mode on with seed, or off (on false; seed is
 * then ignored). Every thread's generator restarts from the new seed at its
 * next point. QC_CHAOS_SEED does the same when the library loads.
 * Exported for the Check integration (QC_REPEAT) and the library's suites.
 * Thread safety: any thread, but meant for between test runs.
 */
QC_API void qc__chaos_set(bool on, uint64_t seed);

/* qc__chaos_seed: true if chaos mode is on, with its seed in *seed. */
QC_API bool qc__chaos_seed(uint64_t *seed);

/*
 * qc__chaos_counts: for tests: the points reached, and the yields and
 * sleeps injected, since the process started (any of the pointers may be
 * NULL); *digest: a hash of the calling thread's decisions since its
 * generator was last seeded (equal seeds and creation order, and equal
 * calls, give equal digests).
 */
QC_API void qc__chaos_counts(uint64_t *points, uint64_t *yields,
			     uint64_t *sleeps, uint64_t *digest);

#endif /* QC_CHAOS_H */
