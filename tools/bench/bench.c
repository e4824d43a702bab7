/*
 * bench.c: quiesce-bench, the context benchmark (issues #2 and #3), in the
 * same output layout as the peers in shared/bench-peers (Go context, C++20
 * stop_token, naive C), so that run.sh merges the rows side by side:
 *
 *   Benchmark<B#>_<Name>/<variant> 1 <value> <unit>
 *
 * Variant names are the peers' wherever the figure is the same one (Go's
 * "WithCancel(liveRoot)", "Err[live]", "fanout=1000", "waiters=16", ...).
 * Each figure is the median of several samples taken in this process.
 *
 *   quiesce-bench [--runs N] [--callgrind] [b1 b2 b3 b4 b5 b6 b7]
 *   quiesce-bench cg <variant> <iters>     (one noinline loop, for callgrind)
 *
 * --runs N runs the selection in N fresh processes one after the other (a
 * line per run and figure, as run.sh expects; 0: none); --callgrind also prints
 * callgrind instruction counts (Ir/op) for B1/B2, computed as run.sh does
 * for the peers: (Ir(2n) - Ir(n)) / n with --toggle-collect=<loop>.
 *
 * Rows that need wait.c / chan.c (qc_sleep, qc_cond_wait, qc_chan_*) are
 * built only when the build says those exist (QC_BENCH_HAVE_WAIT,
 * QC_BENCH_HAVE_CHAN).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>
#include <quiesce/time.h>
#ifdef QC_BENCH_HAVE_WAIT
#include <quiesce/wait.h>
#endif
#ifdef QC_BENCH_HAVE_CHAN
#include <quiesce/chan.h>
#endif

extern char **environ;

/* ------------------------------------------------------------ helpers */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define CLOBBER() __asm__ volatile("" ::: "memory")

static void die(const char *what)
{
	fprintf(stderr, "quiesce-bench: %s\n", what);
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
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void emit(const char *name, double v, const char *unit)
{
	printf("Benchmark%s 1 %.3f %s\n", name, v, unit);
	fflush(stdout);
}

static void sleep_ns(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

typedef void (*loop_fn)(size_t);

/* Warm-up and calibration to ~20 ms batches, then the median per-op time of
 * 11 batches (the peers' bench_fast). */
static double bench_fast(loop_fn body)
{
	size_t it = 1000;
	for (;;) {
		uint64_t t0 = now_ns();
		body(it);
		double ms = (double)(now_ns() - t0) / 1e6;
		if (ms >= 5) {
			it = (size_t)((double)it * 20 / ms);
			if (it < 1000)
				it = 1000;
			break;
		}
		it *= 4;
	}
	double v[11];
	for (int s = 0; s < 11; s++) {
		uint64_t t0 = now_ns();
		body(it);
		v[s] = (double)(now_ns() - t0) / (double)it;
	}
	return median(v, 11);
}

/* ------------------------------------------------------------- B1, B2 */

/* Each loop is a noinline external function so that callgrind can count
 * exactly it (--toggle-collect=loop_b1_child). */
void loop_b1_child(size_t n);
void loop_b1_timeout(size_t n);
void loop_b1_background(size_t n);
void loop_b2_err(size_t n);
void loop_b2_err_call(size_t n);
void loop_b7_chan(size_t n);

static qc_ctx *g_root; /* a live cancelable root */
static qc_ctx *g_ctx;  /* the context B2 checks */
static size_t g_hits;

__attribute__((noinline)) void loop_b1_child(size_t n)
{
	qc_ctx *root = g_root;
	for (size_t i = 0; i < n; i++) {
		qc_ctx *c = qc_with_cancel(root);
		qc_cancel(c);
		qc_release(c);
	}
}

__attribute__((noinline)) void loop_b1_timeout(size_t n)
{
	qc_ctx *root = g_root;
	for (size_t i = 0; i < n; i++) {
		qc_ctx *c = qc_with_timeout(root, QC_HOUR);
		qc_cancel(c);
		qc_release(c);
	}
}

__attribute__((noinline)) void loop_b1_background(size_t n)
{
	qc_ctx *bg = qc_background();
	for (size_t i = 0; i < n; i++) {
		qc_ctx *c = qc_with_cancel(bg);
		qc_cancel(c);
		qc_release(c);
	}
}

/* qc_err as user code gets it from the header (inline: one load). */
__attribute__((noinline)) void loop_b2_err(size_t n)
{
	size_t h = 0;
	for (size_t i = 0; i < n; i++) {
		h += (size_t)qc_err(g_ctx); /* as the C++ peer's hits += */
		CLOBBER();		    /* a fresh load every iteration */
	}
	g_hits += h;
}

/* The exported function, bypassing the inline macro. */
__attribute__((noinline)) void loop_b2_err_call(size_t n)
{
	size_t h = 0;
	for (size_t i = 0; i < n; i++) {
		h += (size_t)(qc_err)(g_ctx);
		CLOBBER();
	}
	g_hits += h;
}

static void check_b1_clean(void)
{
	/* Every child was released: only the live root (and, after B1's
	 * WithTimeout, no timer) is left. */
	CHECK(qc_clock_live_contexts(qc_clock_real()) == 1);
	CHECK(qc_clock_timers(qc_clock_real()) == 0);
}

static void run_b1(void)
{
	g_root = qc_with_cancel(qc_background());
	CHECK(g_root);
	emit("B1_CreateCancel/WithCancel(liveRoot)", bench_fast(loop_b1_child),
	     "ns/op");
	emit("B1_CreateCancel/WithTimeout(liveRoot,1h)",
	     bench_fast(loop_b1_timeout), "ns/op");
	emit("B1_CreateCancel/WithCancel(Background)",
	     bench_fast(loop_b1_background), "ns/op");
	check_b1_clean();
	qc_cancel(g_root);
	qc_release(g_root);
	g_root = NULL;
}

static void run_b2(void)
{
	qc_ctx *root = qc_with_cancel(qc_background());
	g_ctx = qc_with_cancel(root);
	CHECK(g_ctx);
	emit("B2_DoneCheck/Err[live]", bench_fast(loop_b2_err), "ns/op");
	emit("B2_DoneCheck/Err,out-of-line[live]", bench_fast(loop_b2_err_call),
	     "ns/op");
	qc_cancel(g_ctx);
	emit("B2_DoneCheck/Err[cancelled]", bench_fast(loop_b2_err), "ns/op");
	qc_release(g_ctx);
	qc_cancel(root);
	qc_release(root);
	g_ctx = NULL;
}

/* ----------------------------------------------------------------- B3 */

static int samples_for(size_t n)
{
	return n <= 1000 ? 51 : n <= 10000 ? 21 : 11;
}

/* Cancel a live root with n direct children; ns until every child reports
 * done, per child. */
static void run_b3(void)
{
	static const size_t ns[] = {1000, 10000, 100000};
	char name[96];
	for (int w = 0; w < 3; w++) {
		size_t n = ns[w];
		int samples = samples_for(n);
		qc_ctx **kids = malloc(n * sizeof *kids);
		double *v = malloc((size_t)samples * sizeof *v);
		CHECK(kids && v);
		for (int s = 0; s <= samples; s++) { /* s == 0 is warm-up */
			qc_ctx *root = qc_with_cancel(qc_background());
			CHECK(root);
			for (size_t i = 0; i < n; i++) {
				kids[i] = qc_with_cancel(root);
				CHECK(kids[i]);
			}
			uint64_t t0 = now_ns();
			qc_cancel(root);
			size_t ok = 0;
			for (size_t i = 0; i < n; i++)
				ok += (size_t)(qc_err(kids[i]) != 0);
			uint64_t t1 = now_ns();
			CHECK(ok == n);
			if (s)
				v[s - 1] = (double)(t1 - t0) / (double)n;
			for (size_t i = 0; i < n; i++)
				qc_release(kids[i]);
			qc_release(root);
		}
		snprintf(name, sizeof name, "B3_Propagate/fanout=%zu", n);
		emit(name, median(v, samples), "ns/child");
		free(kids);
		free(v);
	}
	enum { DEPTH = 1000, SAMPLES = 51 };
	static qc_ctx *chain[DEPTH];
	double v[SAMPLES];
	for (int s = 0; s <= SAMPLES; s++) {
		qc_ctx *root = qc_with_cancel(qc_background()), *p = root;
		CHECK(root);
		for (size_t i = 0; i < DEPTH; i++) {
			p = chain[i] = qc_with_cancel(p);
			CHECK(p);
		}
		uint64_t t0 = now_ns();
		qc_cancel(root);
		size_t ok = 0;
		for (size_t i = 0; i < DEPTH; i++)
			ok += (size_t)(qc_err(chain[i]) != 0);
		uint64_t t1 = now_ns();
		CHECK(ok == DEPTH);
		if (s)
			v[s - 1] = (double)(t1 - t0) / DEPTH;
		for (size_t i = DEPTH; i-- > 0;)
			qc_release(chain[i]);
		qc_release(root);
	}
	emit("B3_Propagate/chain=1000", median(v, SAMPLES), "ns/child");
}

/* ----------------------------------------------------------------- B4 */

/* T threads block on one context (in qc_wait, qc_sleep, qc_chan_recv or
 * qc_cond_wait); the main thread cancels it; the figure is the time from
 * just before qc_cancel until the last waiter runs again. */
enum wait_kind {
	W_WAIT,
	W_SLEEP,
	W_CHAN,
	W_COND,
};

typedef struct {
	_Alignas(64) uint64_t t;
} slot;

struct round {
	enum wait_kind how;
	qc_ctx *ctx;
	slot *wake;
	_Atomic int ready;
#ifdef QC_BENCH_HAVE_CHAN
	qc_chan *ch;
#endif
#ifdef QC_BENCH_HAVE_WAIT
	qc_cond cv;
	pthread_mutex_t mu;
#endif
};

struct waiter_arg {
	struct round *r;
	int idx;
};

static void *waiter(void *p)
{
	struct waiter_arg *a = p;
	struct round *r = a->r;
	int e = 0;
	switch (r->how) {
	case W_WAIT:
		atomic_fetch_add(&r->ready, 1);
		e = qc_wait(r->ctx);
		break;
#ifdef QC_BENCH_HAVE_WAIT
	case W_SLEEP:
		atomic_fetch_add(&r->ready, 1);
		e = qc_sleep(r->ctx, QC_HOUR);
		break;
	case W_COND:
		pthread_mutex_lock(&r->mu);
		atomic_fetch_add(&r->ready, 1);
		while ((e = qc_cond_wait(r->ctx, &r->cv, &r->mu)) == 0) {
		}
		pthread_mutex_unlock(&r->mu);
		break;
#endif
#ifdef QC_BENCH_HAVE_CHAN
	case W_CHAN: {
		int x;
		atomic_fetch_add(&r->ready, 1);
		e = qc_chan_recv(r->ctx, r->ch, &x);
		break;
	}
#endif
	default:
		break;
	}
	r->wake[a->idx].t = now_ns();
	if (e != ECANCELED)
		die("a B4 waiter did not end with ECANCELED");
	return NULL;
}

static double wake_round(enum wait_kind how, int T)
{
	struct round r = {.how = how};
	atomic_init(&r.ready, 0);
	qc_ctx *parent = qc_with_cancel(qc_background());
	r.ctx = qc_with_cancel(parent);
	CHECK(parent && r.ctx);
	r.wake = aligned_alloc(64, (size_t)T * sizeof *r.wake);
	struct waiter_arg *args = malloc((size_t)T * sizeof *args);
	pthread_t *th = malloc((size_t)T * sizeof *th);
	CHECK(r.wake && args && th);
#ifdef QC_BENCH_HAVE_CHAN
	if (how == W_CHAN)
		CHECK((r.ch = qc_chan_new(sizeof(int), 1)) != NULL);
#endif
#ifdef QC_BENCH_HAVE_WAIT
	if (how == W_COND) {
		CHECK(qc_cond_init(&r.cv) == 0);
		pthread_mutex_init(&r.mu, NULL);
	}
#endif
	for (int i = 0; i < T; i++) {
		args[i] = (struct waiter_arg){&r, i};
		if (pthread_create(&th[i], NULL, waiter, &args[i]))
			die("pthread_create");
	}
	while (atomic_load(&r.ready) < T)
		sched_yield();
	sleep_ns(2000000); /* let every waiter park */
	uint64_t t0 = now_ns();
	qc_cancel(r.ctx);
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	uint64_t last = 0;
	for (int i = 0; i < T; i++)
		if (r.wake[i].t > last)
			last = r.wake[i].t;
#ifdef QC_BENCH_HAVE_CHAN
	if (how == W_CHAN)
		CHECK(qc_chan_free(r.ch) == 0);
#endif
#ifdef QC_BENCH_HAVE_WAIT
	if (how == W_COND) {
		CHECK(qc_cond_destroy(&r.cv) == 0);
		pthread_mutex_destroy(&r.mu);
	}
#endif
	qc_release(r.ctx);
	qc_cancel(parent);
	qc_release(parent);
	free(r.wake);
	free(args);
	free(th);
	return (double)(last - t0);
}

#ifdef QC_BENCH_HAVE_WAIT
/* One thread in qc_sleep(ctx, 1h) on a virtual clock; the main thread
 * advances the clock by 1h; the figure is the time from the
 * qc_clock_advance call until the sleeper runs. */
struct vsleep {
	qc_ctx *ctx;
	_Atomic int ready;
	uint64_t woke;
	int err;
};

static void *vsleeper(void *p)
{
	struct vsleep *s = p;
	atomic_store(&s->ready, 1);
	s->err = qc_sleep(s->ctx, QC_HOUR);
	s->woke = now_ns();
	return NULL;
}

static double vsleep_round(void)
{
	qc_clock *vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
	CHECK(vc);
	struct vsleep s = {.ctx = qc_with_cancel(qc_clock_root(vc))};
	CHECK(s.ctx);
	atomic_init(&s.ready, 0);
	pthread_t t;
	if (pthread_create(&t, NULL, vsleeper, &s))
		die("pthread_create");
	while (!atomic_load(&s.ready) || qc_clock_timers(vc) == 0)
		sched_yield();
	sleep_ns(2000000); /* let the sleeper park */
	uint64_t t0 = now_ns();
	CHECK(qc_clock_advance(vc, QC_HOUR) == 0);
	pthread_join(t, NULL);
	if (s.err != 0)
		die("a virtual-clock qc_sleep did not return 0");
	qc_cancel(s.ctx);
	qc_release(s.ctx);
	CHECK(qc_clock_free(vc) == 0);
	return (double)(s.woke - t0);
}
#endif

static void run_b4(void)
{
	static const struct {
		enum wait_kind how;
		const char *name; /* "" is Go's plain waiters=T (qc_wait) */
	} ws[] = {
	    {W_WAIT, ""},
#ifdef QC_BENCH_HAVE_WAIT
	    {W_SLEEP, "qc_sleep(1h),"},
	    {W_COND, "qc_cond_wait,"},
#endif
#ifdef QC_BENCH_HAVE_CHAN
	    {W_CHAN, "qc_chan_recv,"},
#endif
	};
	static const int ts[] = {1, 16, 256};
	char name[128];
	for (size_t w = 0; w < sizeof ws / sizeof ws[0]; w++) {
		for (int k = 0; k < 3; k++) {
			int T = ts[k], rounds = T == 1	  ? 101
						: T == 16 ? 51
							  : 21;
			double v[101];
			wake_round(ws[w].how, T); /* warm-up */
			for (int i = 0; i < rounds; i++)
				v[i] = wake_round(ws[w].how, T);
			snprintf(name, sizeof name,
				 "B4_WakeLatency/%swaiters=%d", ws[w].name, T);
			emit(name, median(v, rounds), "ns/last-wake");
		}
	}
#ifdef QC_BENCH_HAVE_WAIT
	{
		double v[101];
		vsleep_round(); /* warm-up */
		for (int i = 0; i < 101; i++)
			v[i] = vsleep_round();
		emit("B4_WakeLatency/qc_sleep(1h,virtual):advance->run,"
		     "waiters=1",
		     median(v, 101), "ns/last-wake");
	}
#endif
}

/* ----------------------------------------------------------------- B5 */

static void run_b5(void)
{
	enum { N = 100000 };
	static qc_ctx *kids[N];
	static const struct {
		const char *name;
		bool timeout;
	} vs[] = {{"B5_MemPerChild/WithCancel", false},
		  {"B5_MemPerChild/WithTimeout(1h)", true}};
	for (int w = 0; w < 2; w++) {
		qc_ctx *root = qc_with_cancel(qc_background());
		CHECK(root);
		size_t m0 = mallinfo2().uordblks;
		for (size_t i = 0; i < N; i++) {
			kids[i] = vs[w].timeout ? qc_with_timeout(root, QC_HOUR)
						: qc_with_cancel(root);
			CHECK(kids[i]);
		}
		size_t m1 = mallinfo2().uordblks;
		emit(vs[w].name, (double)(m1 - m0) / N, "B-malloc/child");
		qc_cancel(root);
		for (size_t i = 0; i < N; i++)
			qc_release(kids[i]);
		qc_release(root);
	}
}

/* ----------------------------------------------------------------- B6 */

/* 10,000 children of a live cancelable root on a virtual clock, each with a
 * 1-hour timeout; one qc_clock_advance(1h) expires them all. The figure is
 * the real time from the advance call until every child reports done. */
static void run_b6(void)
{
	enum { N = 10000, SAMPLES = 21 };
	static qc_ctx *kids[N];
	double total[SAMPLES], create[SAMPLES];
	for (int s = 0; s <= SAMPLES; s++) {
		qc_clock *vc = qc_clock_virtual_new(QC_VIRTUAL_EPOCH);
		CHECK(vc);
		qc_ctx *root = qc_with_cancel(qc_clock_root(vc));
		CHECK(root);
		uint64_t t0 = now_ns();
		for (size_t i = 0; i < N; i++) {
			kids[i] = qc_with_timeout(root, QC_HOUR);
			CHECK(kids[i]);
		}
		uint64_t t1 = now_ns();
		CHECK(qc_clock_timers(vc) == N);
		uint64_t t2 = now_ns();
		CHECK(qc_clock_advance(vc, QC_HOUR) == 0);
		size_t ok = 0;
		for (size_t i = 0; i < N; i++)
			ok += (size_t)(qc_err(kids[i]) == ETIMEDOUT);
		uint64_t t3 = now_ns();
		CHECK(ok == N);
		if (s) {
			total[s - 1] = (double)(t3 - t2);
			create[s - 1] = (double)(t1 - t0) / N;
		}
		for (size_t i = 0; i < N; i++)
			qc_release(kids[i]);
		qc_cancel(root);
		qc_release(root);
		CHECK(qc_clock_free(vc) == 0);
	}
	emit("B6_TimeoutExpire/n=10000,timeout=1h,virtual",
	     median(total, SAMPLES), "ns/all-done");
	emit("B6_TimeoutExpire/n=10000,timeout=1h,virtual",
	     median(create, SAMPLES), "ns/create");
}

/* ------------------------------------------------------- B7 (channels) */

#ifdef QC_BENCH_HAVE_CHAN
static qc_chan *g_chan;

/* Uncontended: one thread sends one element into a buffered channel and
 * receives it back. */
__attribute__((noinline)) void loop_b7_chan(size_t n)
{
	int x = 1;
	for (size_t i = 0; i < n; i++) {
		if (qc_chan_send(g_ctx, g_chan, &x) != 0 ||
		    qc_chan_recv(g_ctx, g_chan, &x) != 0)
			die("uncontended channel send/recv failed");
	}
}

static void chan_setup(void)
{
	g_root = qc_with_cancel(qc_background());
	g_ctx = qc_with_cancel(g_root);
	g_chan = qc_chan_new(sizeof(int), 1);
	CHECK(g_root && g_ctx && g_chan);
}

static void chan_teardown(void)
{
	CHECK(qc_chan_free(g_chan) == 0);
	qc_release(g_ctx);
	qc_cancel(g_root);
	qc_release(g_root);
	g_chan = NULL;
	g_ctx = g_root = NULL;
}

static void run_b7(void)
{
	chan_setup();
	emit("B7_Chan/send+recv[uncontended,cap=1]", bench_fast(loop_b7_chan),
	     "ns/op");
	chan_teardown();
}
#else
void loop_b7_chan(size_t n)
{
	(void)n;
}
#endif

/* ---------------------------------------------------------- callgrind */

/* The cg variants: name in the table, loop function, cg variant. */
static const struct cg_variant {
	const char *table;
	const char *fn;
	const char *variant;
	loop_fn loop;
} cg_variants[] = {
    {"B1_CreateCancel/WithCancel(liveRoot)", "loop_b1_child", "b1_child",
     loop_b1_child},
    {"B1_CreateCancel/WithTimeout(liveRoot,1h)", "loop_b1_timeout",
     "b1_timeout", loop_b1_timeout},
    {"B1_CreateCancel/WithCancel(Background)", "loop_b1_background",
     "b1_background", loop_b1_background},
    {"B2_DoneCheck/Err[live]", "loop_b2_err", "b2_err", loop_b2_err},
    {"B2_DoneCheck/Err,out-of-line[live]", "loop_b2_err_call", "b2_err_call",
     loop_b2_err_call},
#ifdef QC_BENCH_HAVE_CHAN
    {"B7_Chan/send+recv[uncontended,cap=1]", "loop_b7_chan", "b7_chan",
     loop_b7_chan},
#endif
};
#define N_CG (sizeof cg_variants / sizeof cg_variants[0])

static int run_cg(const char *variant, size_t n)
{
	const struct cg_variant *v = NULL;
	for (size_t i = 0; i < N_CG; i++)
		if (!strcmp(cg_variants[i].variant, variant))
			v = &cg_variants[i];
	if (!v) {
		fprintf(stderr, "quiesce-bench: unknown cg variant %s\n",
			variant);
		return 2;
	}
#ifdef QC_BENCH_HAVE_CHAN
	if (v->loop == loop_b7_chan) {
		chan_setup();
		v->loop(n);
		chan_teardown();
		return 0;
	}
#endif
	g_root = qc_with_cancel(qc_background());
	g_ctx = qc_with_cancel(g_root);
	CHECK(g_root && g_ctx);
	v->loop(n);
	return 0;
}

/* Ir of one callgrind run of "self cg <variant> <n>", or -1. */
static double callgrind_ir(const char *self, const char *dir,
			   const struct cg_variant *v, size_t n)
{
	char out[PATH_MAX], opt_out[PATH_MAX + 32], opt_fn[128], ns[32];
	snprintf(out, sizeof out, "%s/%s.%zu.cg", dir, v->variant, n);
	snprintf(opt_out, sizeof opt_out, "--callgrind-out-file=%s", out);
	snprintf(opt_fn, sizeof opt_fn, "--toggle-collect=%s", v->fn);
	snprintf(ns, sizeof ns, "%zu", n);
	char *argv[] = {
	    "valgrind", "--tool=callgrind", opt_out, opt_fn, (char *)self,
	    "cg",	(char *)v->variant, ns,	     NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int e = posix_spawnp(&pid, "valgrind", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0)
		return -1;
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	FILE *f = fopen(out, "r");
	if (!f)
		return -1;
	char line[256];
	double ir = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "summary:", 8))
			ir = strtod(line + 8, NULL);
	fclose(f);
	unlink(out);
	return ir;
}

static void run_callgrind(void)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len < 0)
		die("readlink /proc/self/exe");
	self[len] = '\0';
	char dir[] = "/tmp/quiesce-bench-cg.XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp");
	const size_t n = 20000;
	for (size_t i = 0; i < N_CG; i++) {
		const struct cg_variant *v = &cg_variants[i];
		double a = callgrind_ir(self, dir, v, n);
		double b = a < 0 ? -1 : callgrind_ir(self, dir, v, 2 * n);
		if (a < 0 || b < 0) {
			fprintf(stderr,
				"quiesce-bench: callgrind unavailable or "
				"failed (%s); skipping Ir/op\n",
				v->variant);
			break;
		}
		printf("Benchmark%s 1 %.1f Ir/op\n", v->table, (b - a) / n);
		fflush(stdout);
	}
	rmdir(dir);
}

/* --------------------------------------------------------------- main */

static void *noop(void *p)
{
	return p;
}

static int want(int argc, char **argv, int first, const char *b)
{
	if (first >= argc)
		return 1; /* no selection: everything */
	for (int i = first; i < argc; i++)
		if (!strcmp(argv[i], b))
			return 1;
	return 0;
}

static void run_all(int argc, char **argv, int a)
{
	if (want(argc, argv, a, "b1"))
		run_b1();
	if (want(argc, argv, a, "b2"))
		run_b2();
	if (want(argc, argv, a, "b3"))
		run_b3();
	if (want(argc, argv, a, "b4"))
		run_b4();
	if (want(argc, argv, a, "b5"))
		run_b5();
	if (want(argc, argv, a, "b6"))
		run_b6();
#ifdef QC_BENCH_HAVE_CHAN
	if (want(argc, argv, a, "b7"))
		run_b7();
#endif
}

static void usage(void)
{
	fprintf(stderr,
		"usage: quiesce-bench [--runs N] [--callgrind] [b1 .. b7]\n"
		"       quiesce-bench cg <variant> <iters>\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int a = 1, runs = 1;
	bool cg_section = false;
	for (; a < argc && argv[a][0] == '-'; a++) {
		if (!strcmp(argv[a], "--callgrind")) {
			cg_section = true;
		} else if (!strcmp(argv[a], "--runs") && a + 1 < argc) {
			runs = atoi(argv[++a]); /* 0: only --callgrind */
			if (runs < 0)
				usage();
		} else {
			usage();
		}
	}
	if (a < argc && !strcmp(argv[a], "cg")) {
		if (argc - a < 3)
			usage();
		return run_cg(argv[a + 1], strtoull(argv[a + 2], NULL, 10));
	}
	for (int i = a; i < argc; i++)
		if (strlen(argv[i]) != 2 || argv[i][0] != 'b' ||
		    argv[i][1] < '1' || argv[i][1] > '7')
			usage();

	for (int r = 0; r < runs; r++) {
		fflush(stdout);
		pid_t pid = runs > 1 ? fork() : 0;
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			/* Start and join one thread so glibc leaves its
			 * single-threaded fast paths, as the peers do. */
			pthread_t t;
			if (pthread_create(&t, NULL, noop, NULL) ||
			    pthread_join(t, NULL))
				die("pthread_create");
			run_all(argc, argv, a);
			if (runs > 1) {
				fflush(stdout);
				_exit(0);
			}
		} else {
			int st;
			if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != 0)
				die("a run failed");
		}
	}
	if (cg_section)
		run_callgrind();
	return 0;
}
