/*
 * bench_harness.c: quiesce-bench-harness, the harness speed figures of
 * issue #4, in quiesce-bench's output layout:
 *
 *   Benchmark<H#>_<Name>/<variant> 1 <value> <unit>
 *
 * Each figure is the median of several samples taken in this process.
 *
 *   H1 spawn 100 workers, qc_h_cancel, qc_h_expect_quiet (target <= 20 ms)
 *   H2 pthread_create + pthread_join, no harness vs. a live harness
 *      (target: <= 5 us more)
 *   H3 qc_census_tids over 1,000 blocked threads (target <= 5 ms)
 *   H4 qc_h_expect_quiet's report of 100 threads blocked in read(), guard
 *      20 ms, after a warm-up report (target <= 200 ms)
 *   H5 quiesce-bench-check1000 (1,000 tests each waiting out a 1-hour
 *      deadline) with CK_FORK=yes and CK_FORK=no (targets <= 3 s, <= 1 s)
 *
 *   quiesce-bench-harness [h1 h2 h3 h4 h5]
 *
 * H5 runs the program named by QC_BENCH_CHECK1000 (environment), else the
 * one built beside this one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/census.h>
#include <quiesce/ctx.h>
#include <quiesce/harness.h>
#include <quiesce/time.h>

extern char **environ;

#ifndef QC_BENCH_CHECK1000_PATH
#define QC_BENCH_CHECK1000_PATH "quiesce-bench-check1000"
#endif

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "quiesce-bench-harness: %s\n", what);
	exit(1);
}

#define CHECK(cond)                                  \
	do {                                         \
		if (!(cond))                         \
			die("check failed: " #cond); \
	} while (0)

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void row(const char *name, double value, const char *unit)
{
	printf("Benchmark%s 1 %.3f %s\n", name, value, unit);
	fflush(stdout);
}

/* ------------------------------------------------------------ H1 */

enum { H1_WORKERS = 100, H1_SAMPLES = 9 };

static int h1_worker(qc_ctx *ctx, void *arg)
{
	(void)arg;
	qc_wait(ctx);
	return 0;
}

static void bench_h1(void)
{
	double ms[H1_SAMPLES];
	for (int s = 0; s < H1_SAMPLES; s++) {
		qc_h *h = qc_h_new(NULL);
		CHECK(h);
		qc_ctx *ctx = qc_h_ctx(h);
		uint64_t t0 = now_ns();
		for (int i = 0; i < H1_WORKERS; i++)
			CHECK(qc_h_spawn(h, ctx, "h1-worker", h1_worker,
					 NULL) == 0);
		qc_h_cancel(h);
		CHECK(qc_h_expect_quiet(h, QC_SECOND) == 0);
		uint64_t t1 = now_ns();
		CHECK(qc_h_free(h) == 0);
		ms[s] = (double)(t1 - t0) / 1e6;
	}
	row("H1_SpawnCancelQuiet/workers=100", median(ms, H1_SAMPLES), "ms");
}

/* ------------------------------------------------------------ H2 */

enum { H2_ITERS = 500, H2_SAMPLES = 11 };

static void *h2_thread(void *arg)
{
	return arg;
}

static double h2_sample_us(void)
{
	uint64_t t0 = now_ns();
	for (int i = 0; i < H2_ITERS; i++) {
		pthread_t t;
		CHECK(pthread_create(&t, NULL, h2_thread, NULL) == 0);
		CHECK(pthread_join(t, NULL) == 0);
	}
	return (double)(now_ns() - t0) / 1e3 / H2_ITERS;
}

/* Bare and live samples alternate, so that a change in the machine's load
 * during the run hits both columns alike. */
static void bench_h2(void)
{
	double bare[H2_SAMPLES], live[H2_SAMPLES], diff[H2_SAMPLES];
	h2_sample_us(); /* warm-up */
	for (int s = 0; s < H2_SAMPLES; s++) {
		bare[s] = h2_sample_us();
		qc_h *h = qc_h_new(NULL);
		CHECK(h);
		live[s] = h2_sample_us();
		CHECK(qc_h_expect_quiet(h, QC_SECOND) == 0);
		CHECK(qc_h_free(h) == 0);
		diff[s] = live[s] - bare[s];
	}
	row("H2_CreateJoin/no-harness", median(bare, H2_SAMPLES), "us");
	row("H2_CreateJoin/harness-live", median(live, H2_SAMPLES), "us");
	row("H2_CreateJoin/overhead", median(diff, H2_SAMPLES), "us");
}

/* ------------------------------------------------------------ H3 */

enum { H3_THREADS = 1000, H3_SAMPLES = 31 };

static pthread_mutex_t h3_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t h3_cv = PTHREAD_COND_INITIALIZER;
static bool h3_go;
static int h3_waiting;

static void *h3_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&h3_mu);
	h3_waiting++;
	pthread_cond_broadcast(&h3_cv);
	while (!h3_go)
		pthread_cond_wait(&h3_cv, &h3_mu);
	pthread_mutex_unlock(&h3_mu);
	return NULL;
}

static void bench_h3(void)
{
	static pthread_t th[H3_THREADS];
	static pid_t tids[H3_THREADS + 64];
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 0; i < H3_THREADS; i++)
		CHECK(pthread_create(&th[i], &attr, h3_thread, NULL) == 0);
	pthread_attr_destroy(&attr);
	pthread_mutex_lock(&h3_mu);
	while (h3_waiting < H3_THREADS)
		pthread_cond_wait(&h3_cv, &h3_mu);
	pthread_mutex_unlock(&h3_mu);

	double ms[H3_SAMPLES];
	size_t n = 0;
	for (int s = 0; s < H3_SAMPLES; s++) {
		uint64_t t0 = now_ns();
		CHECK(qc_census_tids(0, tids, H3_THREADS + 64, &n) == 0);
		ms[s] = (double)(now_ns() - t0) / 1e6;
		CHECK(n >= H3_THREADS + 1);
	}

	pthread_mutex_lock(&h3_mu);
	h3_go = true;
	pthread_cond_broadcast(&h3_cv);
	pthread_mutex_unlock(&h3_mu);
	for (int i = 0; i < H3_THREADS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	row("H3_CensusTids/threads=1000", median(ms, H3_SAMPLES), "ms");
}

/* ------------------------------------------------------------ H4 */

enum { H4_THREADS = 100, H4_SAMPLES = 5 };

static int h4_pipes[H4_THREADS][2];

static int h4_reader(qc_ctx *ctx, void *arg)
{
	(void)ctx;
	int *p = arg;
	char c;
	ssize_t r;
	do
		r = read(p[0], &c, 1);
	while (r < 0 && errno == EINTR);
	return 0;
}

static void bench_h4(void)
{
	qc_h_opts opts = {.guard = 20 * QC_MILLISECOND};
	qc_h *h = qc_h_new(&opts);
	CHECK(h);
	for (int i = 0; i < H4_THREADS; i++) {
		CHECK(pipe2(h4_pipes[i], O_CLOEXEC) == 0);
		CHECK(qc_h_spawn(h, qc_h_ctx(h), "h4-reader", h4_reader,
				 h4_pipes[i]) == 0);
	}
	qc_h_cancel(h);
	/* Warm-up: the first report loads the debug info. */
	CHECK(qc_h_expect_quiet(h, QC_SECOND) == ETIMEDOUT);
	size_t len = strlen(qc_h_report(h));
	double ms[H4_SAMPLES];
	for (int s = 0; s < H4_SAMPLES; s++) {
		uint64_t t0 = now_ns();
		CHECK(qc_h_expect_quiet(h, QC_SECOND) == ETIMEDOUT);
		ms[s] = (double)(now_ns() - t0) / 1e6;
		CHECK(qc_h_report(h)[0] != '\0');
	}
	for (int i = 0; i < H4_THREADS; i++) {
		CHECK(write(h4_pipes[i][1], "x", 1) == 1);
	}
	CHECK(qc_h_expect_quiet(h, QC_SECOND) == 0);
	CHECK(qc_h_free(h) == 0);
	for (int i = 0; i < H4_THREADS; i++) {
		close(h4_pipes[i][0]);
		close(h4_pipes[i][1]);
	}
	fprintf(stderr, "quiesce-bench-harness: H4 report: %zu bytes\n", len);
	row("H4_Report/survivors=100,guard=20ms", median(ms, H4_SAMPLES), "ms");
}

/* ------------------------------------------------------------ H5 */

enum { H5_SAMPLES = 3 };

static double h5_run_s(const char *prog, const char *fork_env)
{
	char *argv[] = {(char *)prog, NULL};
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **envp = calloc(ne + 3, sizeof *envp);
	CHECK(envp);
	size_t k = 0;
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "CK_FORK=", 8) != 0 &&
		    strncmp(environ[i], "CK_VERBOSITY=", 13) != 0)
			envp[k++] = environ[i];
	envp[k++] = (char *)fork_env;
	envp[k++] = "CK_VERBOSITY=silent";
	envp[k] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	uint64_t t0 = now_ns();
	int err = posix_spawn(&pid, prog, &fa, NULL, argv, envp);
	if (err) {
		fprintf(stderr, "quiesce-bench-harness: %s: %s\n", prog,
			strerror(err));
		exit(1);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		CHECK(errno == EINTR);
	double s = (double)(now_ns() - t0) / 1e9;
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return s;
}

static void bench_h5(void)
{
	const char *prog = getenv("QC_BENCH_CHECK1000");
	if (!prog || !*prog)
		prog = QC_BENCH_CHECK1000_PATH;
	static const struct {
		const char *env, *name;
	} modes[] = {
	    {"CK_FORK=yes", "H5_Check1000/fork"},
	    {"CK_FORK=no", "H5_Check1000/nofork"},
	};
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		double s[H5_SAMPLES];
		for (int i = 0; i < H5_SAMPLES; i++)
			s[i] = h5_run_s(prog, modes[m].env);
		row(modes[m].name, median(s, H5_SAMPLES), "s");
	}
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} rows[] = {
	    {"h1", bench_h1}, {"h2", bench_h2}, {"h3", bench_h3},
	    {"h4", bench_h4}, {"h5", bench_h5},
	};
	enum { NROWS = sizeof rows / sizeof rows[0] };
	bool want[NROWS];
	bool any = argc > 1;
	for (int r = 0; r < NROWS; r++)
		want[r] = !any;
	for (int i = 1; i < argc; i++) {
		int r = 0;
		while (r < NROWS && strcmp(argv[i], rows[r].name) != 0)
			r++;
		if (r == NROWS) {
			fprintf(stderr,
				"usage: quiesce-bench-harness [h1 h2 h3 h4 "
				"h5]\n");
			return 2;
		}
		want[r] = true;
	}
	for (int r = 0; r < NROWS; r++)
		if (want[r])
			rows[r].fn();
	return 0;
}
