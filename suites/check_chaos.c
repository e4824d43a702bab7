/*
 * check_chaos.c: chaos mode (harness/chaos.c) and QC_REPEAT (the Check
 * integration): seeded delays at quiesce's wait, wake and cancel points
 * that replay from the seed, cost nothing when off, and never change what
 * a correct virtual-time test sees.
 *
 * The tests set the seed themselves (qc__chaos_set), so they mean the same
 * when the whole suite runs under QC_CHAOS_SEED (ci/soak.sh).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <quiesce/check.h>
#include <quiesce/quiesce.h>

#include "chaos.h"
#include "support.h"

/* n cancels of fresh contexts on a virtual clock: n cancel points. */
static void cancels(int n)
{
	qc_clock *c = qc_clock_virtual_new(0);
	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < n; i++) {
		qc_ctx *x = qc_with_cancel(qc_clock_root(c));
		ck_assert_ptr_nonnull(x);
		ck_assert_int_eq(qc_cancel(x), 0);
		qc_release(x);
	}
	ck_assert_int_eq(qc_clock_free(c), 0);
}

/* The calling thread's decision digest after n cancels under seed. */
static uint64_t digest_of(uint64_t seed, int n)
{
	qc__chaos_set(true, seed);
	cancels(n);
	uint64_t d;
	qc__chaos_counts(NULL, NULL, NULL, &d);
	return d;
}

START_TEST(test_chaos_off_costs_no_point)
{
	qc__chaos_set(false, 0);
	ck_assert(!qc__chaos_seed(NULL));
	uint64_t p0, p1;
	qc__chaos_counts(&p0, NULL, NULL, NULL);
	cancels(100);
	qc__chaos_counts(&p1, NULL, NULL, NULL);
	ck_assert_uint_eq(p1, p0);
}
END_TEST

START_TEST(test_chaos_points_fire_with_yields_and_sleeps)
{
	qc__chaos_set(true, 42);
	uint64_t seed = 0;
	ck_assert(qc__chaos_seed(&seed));
	ck_assert_uint_eq(seed, 42);
	uint64_t p0, y0, s0, p1, y1, s1;
	qc__chaos_counts(&p0, &y0, &s0, NULL);
	cancels(400);
	qc__chaos_counts(&p1, &y1, &s1, NULL);
	ck_assert_uint_ge(p1 - p0, 400);
	/* A quarter each, on average: none at all over 400 is 1 in 10^50. */
	ck_assert_uint_gt(y1 - y0, 0);
	ck_assert_uint_gt(s1 - s0, 0);
	qc__chaos_set(false, 0);
}
END_TEST

START_TEST(test_chaos_replays_from_the_seed)
{
	uint64_t a = digest_of(7, 300), b = digest_of(7, 300);
	uint64_t c = digest_of(8, 300);
	ck_assert_uint_eq(a, b);
	ck_assert_uint_ne(a, c);
	qc__chaos_set(false, 0);
}
END_TEST

/* A tracked thread's decisions: cancels, then its digest into *arg. */
static int digest_worker(qc_ctx *ctx, void *arg)
{
	for (int i = 0; i < 200; i++) {
		qc_ctx *x = qc_with_cancel(ctx);
		qc_cancel(x);
		qc_release(x);
	}
	qc__chaos_counts(NULL, NULL, NULL, (uint64_t *)arg);
	return 0;
}

/* The digests of two threads a harness starts, in that order. */
static void thread_digests(uint64_t seed, uint64_t d[2])
{
	qc__chaos_set(true, seed);
	qc_h *h = qc_h_new(NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "one", digest_worker, &d[0]), 0);
	ck_assert_int_eq(
	    qc_h_spawn(h, qc_h_ctx(h), "two", digest_worker, &d[1]), 0);
	ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
	ck_assert_int_eq(qc_h_check_leaks(h), 0);
	ck_assert_int_eq(qc_h_free(h), 0);
}

START_TEST(test_chaos_threads_seed_from_their_creation_order)
{
	uint64_t x[2], y[2], z[2];
	thread_digests(11, x);
	thread_digests(11, y);
	thread_digests(12, z);
	/* However the two were scheduled, each replays its own sequence. */
	ck_assert_uint_eq(x[0], y[0]);
	ck_assert_uint_eq(x[1], y[1]);
	ck_assert_uint_ne(x[0], x[1]);
	ck_assert_uint_ne(x[0], z[0]);
	qc__chaos_set(false, 0);
}
END_TEST

/* Sleeps 30 s at a time until its context ends; counts the wake-ups. */
static int retry_loop(qc_ctx *ctx, void *arg)
{
	_Atomic int *runs = arg;
	while (qc_sleep(ctx, 30 * QC_SECOND) == 0)
		atomic_fetch_add(runs, 1);
	return 0;
}

struct pingpong {
	qc_chan *ch;
	qc_cond cv;
	pthread_mutex_t mu;
	int turn;
};

/* Sends 1..50 on a rendezvous channel, then waits on a condition. */
static int pinger(qc_ctx *ctx, void *arg)
{
	struct pingpong *pp = arg;
	for (long i = 1; i <= 50; i++)
		if (qc_chan_send(ctx, pp->ch, &i) != 0)
			return 1;
	pthread_mutex_lock(&pp->mu);
	while (pp->turn == 0)
		if (qc_cond_wait(ctx, &pp->cv, &pp->mu) != 0)
			break;
	int ok = pp->turn == 1;
	pthread_mutex_unlock(&pp->mu);
	return ok ? 0 : 2;
}

/* Virtual time is untouched by chaos: the same test, the same result,
 * under every seed. */
START_TEST(test_chaos_virtual_time_tests_pass_under_every_seed)
{
	for (uint64_t seed = 1; seed <= (uint64_t)(qcs_slow() ? 5 : 20);
	     seed++) {
		qc__chaos_set(true, seed);
		qc_h *h = qc_h_new(NULL);
		ck_assert_ptr_nonnull(h);
		_Atomic int runs = 0;
		ck_assert_int_eq(
		    qc_h_spawn(h, qc_h_ctx(h), "retry", retry_loop, &runs), 0);
		struct pingpong pp = {.ch = qc_chan_new(sizeof(long), 0)};
		ck_assert_int_eq(qc_cond_init(&pp.cv), 0);
		pthread_mutex_init(&pp.mu, NULL);
		ck_assert_int_eq(
		    qc_h_spawn(h, qc_h_ctx(h), "pinger", pinger, &pp), 0);
		long sum = 0, v;
		for (int i = 0; i < 50; i++) {
			ck_assert_int_eq(qc_chan_recv(qc_h_ctx(h), pp.ch, &v),
					 0);
			sum += v;
		}
		ck_assert_int_eq(sum, 50 * 51 / 2);
		ck_assert_int_eq(qc_h_advance(h, 5 * QC_MINUTE), 0);
		ck_assert_int_eq(atomic_load(&runs), 10);
		pthread_mutex_lock(&pp.mu);
		pp.turn = 1;
		qc_cond_broadcast(&pp.cv);
		pthread_mutex_unlock(&pp.mu);
		qc_h_cancel(h);
		ck_assert_int_eq(qc_h_expect_quiet(h, QC_SECOND), 0);
		int ret = -1;
		ck_assert_int_eq(qc_h_result(h, "pinger", &ret), 0);
		ck_assert_int_eq(ret, 0);
		ck_assert_int_eq(qc_h_check_leaks(h), 0);
		ck_assert_int_eq(qc_h_free(h), 0);
		ck_assert_int_eq(qc_chan_free(pp.ch), 0);
		ck_assert_int_eq(qc_cond_destroy(&pp.cv), 0);
		pthread_mutex_destroy(&pp.mu);
	}
	qc__chaos_set(false, 0);
}
END_TEST

/* ------------------------------------------------------------ QC_REPEAT */

START_TEST(test_child_passes)
{
	cancels(10);
	ck_assert(qc__chaos_seed(NULL));
}
END_TEST

START_TEST(test_child_fails)
{
	ck_abort_msg("failing on purpose");
}
END_TEST

/* The suites this executable runs as a child (QCS_CHAOS_CHILD). */
static Suite *child_suite(void)
{
	const char *mode = getenv("QCS_CHAOS_CHILD");
	Suite *s = suite_create("chaos-child");
	TCase *tc = tcase_create("child");
	tcase_add_test(tc, test_child_passes);
	if (mode && strcmp(mode, "fail") == 0)
		tcase_add_test(tc, test_child_fails);
	suite_add_tcase(s, tc);
	return s;
}

/* Runs this executable as a child with QCS_CHAOS_CHILD=mode and the given
 * QC_REPEAT and QC_CHAOS_SEED (NULL: unset); its stderr into out. Returns
 * its exit status. */
static int run_self(const char *mode, const char *repeat, const char *seed,
		    char *out, size_t n)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(p[1], 2);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		setenv("QCS_CHAOS_CHILD", mode, 1);
		setenv("CK_VERBOSITY", "minimal", 1);
		unsetenv("CK_RUN_CASE");
		unsetenv("CK_RUN_SUITE");
		if (repeat)
			setenv("QC_REPEAT", repeat, 1);
		else
			unsetenv("QC_REPEAT");
		if (seed)
			setenv("QC_CHAOS_SEED", seed, 1);
		else
			unsetenv("QC_CHAOS_SEED");
		/* The path, not /proc/self/exe itself: under valgrind that
		 * is valgrind (which reports the program's path here). */
		char self[4096];
		ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
		if (len <= 0)
			_exit(126);
		self[len] = '\0';
		execl(self, "check_chaos", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t r;
	while ((r = read(p[0], out + got, n - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(p[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

#define ck_out_has(out, word) \
	ck_assert_msg(strstr((out), (word)), "no \"%s\" in:\n%s", (word), (out))

START_TEST(test_chaos_repeat_runs_with_successive_seeds)
{
	static char out[65536];
	ck_assert_int_eq(run_self("pass", "3", "7", out, sizeof out), 0);
	ck_out_has(out, "quiesce: chaos seed 7 (QC_REPEAT run 1/3)\n");
	ck_out_has(out, "quiesce: chaos seed 8 (QC_REPEAT run 2/3)\n");
	ck_out_has(out, "quiesce: chaos seed 9 (QC_REPEAT run 3/3)\n");
	ck_out_has(out, "quiesce: QC_REPEAT: 3 runs passed\n");
	ck_assert_ptr_null(strstr(out, "seed 10"));

	/* A failing run names the seed that replays it. */
	ck_assert_int_eq(run_self("fail", "2", "100", out, sizeof out), 1);
	ck_out_has(out, "quiesce: run 1/2 failed: replay with "
			"QC_CHAOS_SEED=100\n");
	ck_out_has(out, "quiesce: run 2/2 failed: replay with "
			"QC_CHAOS_SEED=101\n");
	ck_out_has(out, "quiesce: QC_REPEAT: 2 of 2 runs failed (first: "
			"QC_CHAOS_SEED=100)\n");

	/* QC_CHAOS_SEED alone: one run, its seed printed. */
	ck_assert_int_eq(run_self("pass", NULL, "0x10", out, sizeof out), 0);
	ck_out_has(out, "quiesce: chaos seed 16\n");

	/* QC_REPEAT alone picks a first seed and prints it. */
	ck_assert_int_eq(run_self("pass", "2", NULL, out, sizeof out), 0);
	ck_out_has(out, "(QC_REPEAT run 2/2)");

	/* Nonsense is refused, not ignored. */
	ck_assert_int_eq(run_self("pass", "many", NULL, out, sizeof out), 1);
	ck_out_has(out, "quiesce: QC_REPEAT=many: expected a run count");
	ck_assert_int_eq(run_self("pass", NULL, "x1", out, sizeof out), 1);
	ck_out_has(out, "quiesce: QC_CHAOS_SEED is not a number");
}
END_TEST

static Suite *chaos_suite(void)
{
	Suite *s = suite_create("chaos");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30 * qcs_multiplier());
	tcase_add_test(tc, test_chaos_off_costs_no_point);
	tcase_add_test(tc, test_chaos_points_fire_with_yields_and_sleeps);
	tcase_add_test(tc, test_chaos_replays_from_the_seed);
	tcase_add_test(tc, test_chaos_threads_seed_from_their_creation_order);
	tcase_add_test(tc, test_chaos_virtual_time_tests_pass_under_every_seed);
	tcase_add_test(tc, test_chaos_repeat_runs_with_successive_seeds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *(*const child[])(void) = {child_suite};
	Suite *(*const own[])(void) = {chaos_suite};
	if (getenv("QCS_CHAOS_CHILD"))
		return qc_check_main(child, 1);
	return qc_check_main(own, 1);
}
