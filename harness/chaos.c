/*
 * chaos.c: chaos mode (see chaos.h): seeded delays and yields at quiesce's
 * wait, wake and cancel points.
 *
 * Each thread keeps a xorshift64* state in thread-local storage, seeded
 * lazily at its first point from the global seed and its creation order:
 * the order its harness created it in (qc__thr.order; the test thread is
 * 0), or, for a thread no harness tracks, 2^20 plus the order in which such
 * threads first reached a point. A generation number, bumped by every
 * qc__chaos_set, makes every thread reseed at its next point.
 *
 * Each point draws one number, which decides whether it acts and how: by
 * yielding the CPU (sched_yield; one action in four) or by sleeping 0-50 us
 * of real time on a raw futex (so neither libfaketime nor quiesce's own
 * time interposition can stretch it). A thread's first 256 points act half
 * the time; its k-th point after that with probability 32/k, never below
 * 1/4096. So the start of every thread's life (a test's threads rarely
 * reach 256 points) is dense with delays, while a loop of ten thousand
 * waits meets about 250 and one of a million cancels about 550, not half a
 * million: on a loaded machine a yield can cost a whole time slice, and
 * tests with real-time bounds must still pass.
 *
 * Invariants: qc__chaos_on is written only here; seed and generation are
 * published before the flag (release), read after it (acquire) on the slow
 * path. No locks; nothing here allocates.
 */
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "chaos.h"
#include "futex.h"
#include "harness_impl.h"

_Atomic int qc__chaos_on;

static _Atomic uint64_t chaos_seed;
static _Atomic uint32_t chaos_gen = 1; /* 0: a thread never seeded */
static _Atomic uint32_t untracked_order;
static _Atomic uint64_t n_points, n_yields, n_sleeps;

static _Thread_local uint64_t tl_state;
static _Thread_local uint64_t tl_digest;
static _Thread_local uint64_t tl_points; /* since the thread was seeded */
static _Thread_local uint32_t tl_gen;

/* SplitMix64's finaliser: spreads a seed over all 64 bits. */
static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The calling thread's creation order (see the top comment). */
static uint64_t creation_order(void)
{
	const qc__thr *me = qc__self_thr;
	if (me)
		return me->order;
	return ((uint64_t)1 << 20) +
	       atomic_fetch_add_explicit(&untracked_order, 1,
					 memory_order_relaxed);
}

static uint64_t next_draw(void)
{
	uint32_t gen = atomic_load_explicit(&chaos_gen, memory_order_acquire);
	if (tl_gen != gen) {
		uint64_t seed =
		    atomic_load_explicit(&chaos_seed, memory_order_relaxed);
		tl_state = mix(seed ^ mix(creation_order() + 1));
		if (tl_state == 0)
			tl_state = 1; /* xorshift's one forbidden state */
		tl_digest = 0;
		tl_points = 0;
		tl_gen = gen;
	}
	uint64_t x = tl_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tl_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Whether the k-th point of a thread acts, given 20 random bits: with
 * probability 1/2 up to k = 256, then 32/k, at least 1/4096. */
static bool acts(uint64_t k, uint64_t bits20)
{
	uint64_t threshold =
	    k <= 256 ? (uint64_t)1 << 19 : ((uint64_t)1 << 25) / k;
	if (threshold < ((uint64_t)1 << 8))
		threshold = (uint64_t)1 << 8;
	return bits20 < threshold;
}

void qc__chaos_inject(int site)
{
	(void)site; /* every site acts alike; the enum documents them */
	uint64_t r = next_draw();
	atomic_fetch_add_explicit(&n_points, 1, memory_order_relaxed);
	/* 0: nothing; 2: yield (one action in four); 3: sleep. */
	unsigned action = 0;
	if (acts(++tl_points, r & 0xfffff))
		action = (r >> 62) == 0 ? 2 : 3;
	tl_digest = tl_digest * 1099511628211ull + action + 1;
	if (action == 2) {
		atomic_fetch_add_explicit(&n_yields, 1, memory_order_relaxed);
		sched_yield();
	} else if (action == 3) {
		qc_duration ns = (qc_duration)((r >> 16) % 50001);
		tl_digest = tl_digest * 1099511628211ull + (uint64_t)ns;
		atomic_fetch_add_explicit(&n_sleeps, 1, memory_order_relaxed);
		uint32_t word = 0;
		(void)qc__futex_wait(&word, 0, ns);
	}
}

void qc__chaos_set(bool on, uint64_t seed)
{
	if (on) {
		atomic_store_explicit(&chaos_seed, seed, memory_order_relaxed);
		atomic_store_explicit(&untracked_order, 0,
				      memory_order_relaxed);
		atomic_fetch_add_explicit(&chaos_gen, 1, memory_order_release);
	}
	atomic_store_explicit(&qc__chaos_on, on ? 1 : 0, memory_order_release);
}

bool qc__chaos_seed(uint64_t *seed)
{
	if (!atomic_load_explicit(&qc__chaos_on, memory_order_acquire))
		return false;
	if (seed)
		*seed = atomic_load_explicit(&chaos_seed, memory_order_relaxed);
	return true;
}

void qc__chaos_counts(uint64_t *points, uint64_t *yields, uint64_t *sleeps,
		      uint64_t *digest)
{
	if (points)
		*points = atomic_load(&n_points);
	if (yields)
		*yields = atomic_load(&n_yields);
	if (sleeps)
		*sleeps = atomic_load(&n_sleeps);
	if (digest)
		*digest = tl_digest;
}

/* QC_CHAOS_SEED=N (decimal, or 0x hex) turns chaos mode on as the library
 * loads; an unparsable value is reported and ignored. */
__attribute__((constructor)) static void chaos_from_env(void)
{
	const char *s = getenv("QC_CHAOS_SEED");
	if (!s || !*s)
		return;
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (*end != '\0' || *s == '-') {
		static const char msg[] = "quiesce: QC_CHAOS_SEED is not a "
					  "number: chaos mode stays off\n";
		/* stdio may not be ready this early in every program. */
		ssize_t w = write(2, msg, sizeof msg - 1);
		(void)w;
		return;
	}
	qc__chaos_set(true, (uint64_t)v);
}
