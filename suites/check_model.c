/*
 * check_model.c: model-based random testing of contexts (issue #9).
 *
 * Sequential: 10^5 random operations over fixed seeds, each step checked
 * against the reference model in model.c; a failing seed is shrunk to a
 * minimal sequence that still fails, and printed. QC_MODEL_OPS overrides
 * the number of operations (ci/soak.sh runs 10^7).
 *
 * Concurrent: threads apply random operations to one shared tree while
 * checking what must hold under any interleaving: once done, always done
 * with the same error; when qc_cancel returns, every descendant is done;
 * every waiter returns; nothing is left alive at the end.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>

#include "model.h"

#include "support.h"

static long ops_budget(void)
{
	const char *env = getenv("QC_MODEL_OPS");
	if (env)
		return atol(env);
	return RUNNING_ON_VALGRIND ? 20000 : 100000;
}

static void fill_random(model_op *ops, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		ops[i].code = (uint8_t)(rand_r(&seed) % 9);
		ops[i].a = (uint8_t)rand_r(&seed);
		ops[i].b = (uint8_t)rand_r(&seed);
		ops[i].c = (uint8_t)rand_r(&seed);
	}
}

/* Deletes chunks of ops while the run still fails (ddmin, simplified). */
static size_t shrink(model_op *ops, size_t n, char *why, size_t why_len)
{
	model_op *trial = malloc(n * sizeof *trial);
	for (size_t chunk = n / 2; chunk >= 1; chunk /= 2) {
		for (size_t at = 0; at + chunk <= n;) {
			memcpy(trial, ops, at * sizeof *ops);
			memcpy(trial + at, ops + at + chunk,
			       (n - at - chunk) * sizeof *ops);
			if (!model_run(trial, n - chunk, why, why_len)) {
				memcpy(ops, trial, (n - chunk) * sizeof *ops);
				n -= chunk;
			} else {
				at += chunk;
			}
		}
	}
	free(trial);
	model_run(ops, n, why, why_len);
	return n;
}

START_TEST(test_model_sequential_matches_reference)
{
	enum { SEQ = 500 };
	long total = ops_budget();
	model_op ops[SEQ];
	char why[256];
	for (unsigned seed = 1; (long)seed * SEQ <= total; seed++) {
		fill_random(ops, SEQ, seed);
		if (model_run(ops, SEQ, why, sizeof why))
			continue;
		size_t n = shrink(ops, SEQ, why, sizeof why);
		fprintf(stderr,
			"model: seed %u fails; minimal sequence (%zu):\n", seed,
			n);
		for (size_t i = 0; i < n; i++) {
			char line[64];
			model_op_format(&ops[i], line, sizeof line);
			fprintf(stderr, "  %zu: %s\n", i, line);
		}
		ck_abort_msg("seed %u: %s", seed, why);
	}
}
END_TEST

START_TEST(test_model_shrinker_finds_a_minimal_failure)
{
	/* With a planted model bug (causes are forgotten), a long random run
	 * fails and shrinks to the two operations that show it: derive a
	 * cancelable context, cancel it with a cause. */
	enum { LEN = 300 };
	model_op ops[LEN];
	char why[256] = "";
	fill_random(ops, LEN, 3);
	model_plant_bug = true;
	ck_assert(!model_run(ops, LEN, why, sizeof why));
	size_t n = shrink(ops, LEN, why, sizeof why);
	model_plant_bug = false;
	ck_assert_uint_le(n, 3);
	ck_assert_msg(strstr(why, "err/cause"), "%s", why);
	ck_assert_int_eq(ops[n - 1].code % 9, 2); /* cancel_cause */
}
END_TEST

/* ------------------------------------------------------ concurrent */

enum { THREADS = 6, SLOTS = 64 };

static struct shared {
	pthread_mutex_t mu; /* guards slot ownership, not the contexts */
	qc_ctx *slot[SLOTS];
	int seen_err[SLOTS];
	qc_ctx *root, *side;
	_Atomic long violations;
	long ops_per_thread;
} sh;

static void note(bool ok)
{
	if (!ok)
		atomic_fetch_add(&sh.violations, 1);
}

static void cancel_side(void *arg)
{
	(void)arg;
	qc_cancel(sh.side);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (long k = 0; k < sh.ops_per_thread; k++) {
		int i = rand_r(&seed) % SLOTS, j = rand_r(&seed) % SLOTS;
		pthread_mutex_lock(&sh.mu);
		qc_ctx *c = sh.slot[i] ? qc_retain(sh.slot[i]) : NULL;
		pthread_mutex_unlock(&sh.mu);
		switch (rand_r(&seed) % 5) {
		case 0: { /* derive into slot j from slot i (or the root) */
			qc_ctx *child =
			    rand_r(&seed) % 2
				? qc_with_cancel(c ? c : sh.root)
				: qc_with_timeout(c ? c : sh.root, QC_HOUR);
			note(child != NULL);
			pthread_mutex_lock(&sh.mu);
			qc_ctx *old = sh.slot[j];
			sh.slot[j] = child;
			sh.seen_err[j] = 0;
			pthread_mutex_unlock(&sh.mu);
			qc_release(old);
			break;
		}
		case 1: /* cancel; then its descendants must be done */
			if (c) {
				qc_ctx *kid = qc_with_cancel(c);
				qc_cancel(c);
				note(qc_err(kid) == ECANCELED);
				qc_release(kid);
			}
			break;
		case 2: /* once done, always done with the same error */
			if (c) {
				int e = qc_err(c);
				pthread_mutex_lock(&sh.mu);
				if (sh.slot[i] == c) {
					int *s = &sh.seen_err[i];
					note(*s == 0 || *s == e);
					if (e)
						*s = e;
				}
				pthread_mutex_unlock(&sh.mu);
			}
			break;
		case 3: /* a waiter on a context someone cancels now */
			if (c) {
				qc_ctx *w = qc_with_cancel(c);
				qc_cancel(w);
				note(qc_wait(w) == ECANCELED);
				qc_release(w);
			}
			break;
		default: /* an after-function that cancels from the hook */
			if (c)
				note(qc_after_func(c, cancel_side, NULL) !=
				     NULL);
			break;
		}
		qc_release(c);
	}
	return NULL;
}

START_TEST(test_model_concurrent_invariants_hold)
{
	pthread_mutex_init(&sh.mu, NULL);
	size_t live_before = qc_clock_live_contexts(qc_clock_real());
	sh.root = qc_with_cancel(qc_background());
	sh.side = qc_with_cancel(qc_background());
	sh.ops_per_thread = RUNNING_ON_VALGRIND ? 2000 : 20000;
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	qc_cancel(sh.root);
	for (int i = 0; i < SLOTS; i++) {
		if (sh.slot[i])
			ck_assert_int_ne(qc_err(sh.slot[i]), 0);
		qc_release(sh.slot[i]);
		sh.slot[i] = NULL;
	}
	qc_release(sh.root);
	qc_release(sh.side);
	ck_assert_int_eq(atomic_load(&sh.violations), 0);
	ck_assert_int_eq(qc_clock_live_contexts(qc_clock_real()), live_before);
	ck_assert_int_eq(qc_clock_timers(qc_clock_real()), 0);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("model");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_model_sequential_matches_reference);
	tcase_add_test(tc, test_model_shrinker_finds_a_minimal_failure);
	tcase_add_test(tc, test_model_concurrent_invariants_hold);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return qcs_run(model_suite());
}
