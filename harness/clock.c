/*
 * clock.c: the real clock, virtual clocks, and their timer heaps.
 *
 * Each clock keeps its armed timers in a binary min-heap ordered by
 * (deadline, arming sequence), so ties fire in arming order. A virtual
 * clock's timers fire on the thread that moves it, one by one, each at its
 * own deadline; the real clock's fire on one library thread, started on the
 * first arm, never tracked, and joined at process exit.
 *
 * Invariants: the heap and now change only under the clock lock; now never
 * goes backwards; a timer's idx is its heap slot or SIZE_MAX.
 * Lock order: clock lock, then nothing (fire callbacks defer work that
 * would take other locks to a batch run after unlocking).
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "annotate.h"
#include "internal.h"
#include "park.h"
#include "timeshim.h"

void qc__assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "quiesce: internal error: %s at %s:%d\n", what, file,
		line);
	abort();
}

void qc__die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("quiesce: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

qc_time qc__now_raw(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

/* The process's CLOCK_MONOTONIC through libc (faked under libfaketime),
 * never through quiesce's own virtual definition. */
static qc_time now_monotonic(void)
{
	struct timespec ts;
	qc__real_clock_gettime(CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

/* ------------------------------------------------------------ the heap */

static bool earlier(const qc__timer *a, const qc__timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_place(qc_clock *c, size_t i, qc__timer *t)
{
	c->heap[i] = t;
	t->idx = i;
}

static void sift_up(qc_clock *c, size_t i)
{
	qc__timer *t = c->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!earlier(t, c->heap[p]))
			break;
		heap_place(c, i, c->heap[p]);
		i = p;
	}
	heap_place(c, i, t);
}

static void sift_down(qc_clock *c, size_t i)
{
	qc__timer *t = c->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= c->nheap)
			break;
		if (l + 1 < c->nheap && earlier(c->heap[l + 1], c->heap[l]))
			m = l + 1;
		if (!earlier(c->heap[m], t))
			break;
		heap_place(c, i, c->heap[m]);
		i = m;
	}
	heap_place(c, i, t);
}

static void real_thread_kick(qc_clock *c, qc_time when);

int qc__timer_arm_locked(qc_clock *c, qc__timer *t, qc_time when)
{
	QC_ASSERT(t->idx == SIZE_MAX);
	if (c->nheap == c->capheap) {
		size_t cap = c->capheap ? 2 * c->capheap : 16;
		qc__timer **h = qc__realloc(c->heap, cap * sizeof *h);
		if (!h)
			return ENOMEM;
		c->heap = h;
		c->capheap = cap;
	}
	t->when = when;
	t->seq = c->seq++;
	heap_place(c, c->nheap++, t);
	sift_up(c, t->idx);
	if (!c->is_virtual)
		real_thread_kick(c, when);
	return 0;
}

void qc__timer_disarm_locked(qc_clock *c, qc__timer *t)
{
	size_t i = t->idx;
	if (i == SIZE_MAX)
		return;
	QC_ASSERT(i < c->nheap && c->heap[i] == t);
	t->idx = SIZE_MAX;
	qc__timer *last = c->heap[--c->nheap];
	if (last == t)
		return;
	heap_place(c, i, last);
	if (i > 0 && earlier(last, c->heap[(i - 1) / 2]))
		sift_up(c, i);
	else
		sift_down(c, i);
}

/* Pops the earliest timer if it is due by 'by'; NULL otherwise. */
static qc__timer *pop_due(qc_clock *c, qc_time by)
{
	if (c->nheap == 0 || c->heap[0]->when > by)
		return NULL;
	qc__timer *t = c->heap[0];
	qc__timer_disarm_locked(c, t);
	return t;
}

/* ------------------------------------------------------- the real clock */

static qc_clock real_clock = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .is_virtual = false,
};
/* The real clock's root (qc_background()) is static: its first use must
 * not depend on an allocation that could fail, since it never could again
 * (pthread_once). */
static qc_ctx real_root = {
    .refs = 1,
    .kind = QC_KIND_ROOT,
    .clock = &real_clock,
};
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
/* When the timer thread looks at the heap again on its own (clock lock):
 * QC_TIME_NEVER while it waits with no timer armed, the earliest deadline
 * while it waits for that one, INT64_MIN while it runs (it re-reads the
 * heap before waiting again). A timer armed at or after this time needs no
 * signal, so arming and cancelling long timeouts costs no futex wake-up and
 * no lock hand-off with the timer thread. */
static qc_time real_wake_at = INT64_MIN;

static void real_cond_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&real_clock.cv, &a);
	pthread_condattr_destroy(&a);
}

static void real_atfork_prepare(void)
{
	qc__clock_lock(&real_clock);
	pthread_mutex_lock(&real_clock.mu);
}

static void real_atfork_parent(void)
{
	pthread_mutex_unlock(&real_clock.mu);
	qc__clock_unlock(&real_clock);
}

/* In a forked child (Check's fork mode) the timer thread does not exist:
 * the next arm starts a new one (creating a thread inside a fork handler is
 * not safe). */
static void real_atfork_child(void)
{
	real_clock.thread_started = false;
	real_clock.thread_stop = false;
	real_wake_at = INT64_MIN;
	real_clock.kicked = false;
	pthread_mutex_unlock(&real_clock.mu);
	real_cond_init(); /* the parent's timer thread may be on it */
	qc__clock_unlock(&real_clock);
}

static void real_init(void)
{
	real_cond_init();
	real_clock.root = &real_root;
	pthread_atfork(real_atfork_prepare, real_atfork_parent,
		       real_atfork_child);
	QC_ANN_ONCE_DONE(&real_once);
}

qc_clock *qc_clock_real(void)
{
	QC_ONCE(&real_once, real_init);
	return &real_clock;
}

/* Called with the clock lock held; returns with it held. Sleeps until
 * 'until' (QC_TIME_NEVER: no limit) or a kick. mu is taken before the clock
 * lock is dropped, so a kick (clock lock, then mu) cannot fall between. */
static void real_thread_sleep(qc_clock *c, qc_time until)
{
	real_wake_at = until;
	pthread_mutex_lock(&c->mu);
	qc__clock_unlock(c);
	struct timespec ts = {(time_t)(until / QC_SECOND),
			      (long)(until % QC_SECOND)};
	while (!c->kicked) {
		if (until == QC_TIME_NEVER)
			pthread_cond_wait(&c->cv, &c->mu);
		else if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) ==
			 ETIMEDOUT)
			break;
	}
	c->kicked = false;
	pthread_mutex_unlock(&c->mu);
	qc__clock_lock(c);
	real_wake_at = INT64_MIN;
}

/* Under the clock lock: wakes the timer thread. */
static void real_thread_signal(qc_clock *c)
{
	real_wake_at = INT64_MIN; /* it re-reads the heap when it runs */
	pthread_mutex_lock(&c->mu);
	c->kicked = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void *real_thread_main(void *arg)
{
	qc_clock *c = arg;
	qc__clock_lock(c);
	while (!c->thread_stop) {
		if (c->nheap == 0) {
			real_thread_sleep(c, QC_TIME_NEVER);
			continue;
		}
		qc_time now = now_monotonic();
		qc__timer *t = pop_due(c, now);
		if (!t) {
			real_thread_sleep(c, c->heap[0]->when);
			continue;
		}
		qc__batch b = QC_BATCH_INIT;
		t->fire(t, &b);
		qc__clock_unlock(c);
		qc__batch_run(&b);
		qc__clock_lock(c);
	}
	qc__clock_unlock(c);
	return NULL;
}

/* Joins the timer thread at exit, so that no library thread outlives the
 * process's last user code (valgrind and sanitizers see a clean exit). */
static void real_thread_join(void)
{
	qc_clock *c = &real_clock;
	qc__clock_lock(c);
	bool started = c->thread_started;
	c->thread_stop = true;
	real_thread_signal(c);
	qc__clock_unlock(c);
	if (started)
		pthread_join(c->thread, NULL);
}

/* Under the clock lock: makes sure the timer thread runs and looks at the
 * heap again by 'when'. */
static void real_thread_kick(qc_clock *c, qc_time when)
{
	if (!c->thread_started && !c->thread_stop) {
		static bool registered;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 64 * 1024);
		if (qc__thread_create_internal(&c->thread, &a, real_thread_main,
					       c) == 0) {
			c->thread_started = true;
			if (!registered) {
				registered = true;
				atexit(real_thread_join);
			}
		}
		pthread_attr_destroy(&a);
	} else if (when < real_wake_at) {
		real_thread_signal(c);
	}
}

/* ---------------------------------------------------- virtual clocks */

qc_clock *qc_clock_virtual_new(qc_time start)
{
	qc_clock *c = qc__calloc(1, sizeof *c);
	if (!c)
		return NULL;
	atomic_init(&c->now, start);
	qc__lock_init(&c->lock);
	c->is_virtual = true;
	c->track = true;
	c->root = qc__root_new(c);
	if (!c->root) {
		qc__lock_destroy(&c->lock);
		qc__free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

int qc_clock_free(qc_clock *c)
{
	if (!c)
		return 0;
	if (!c->is_virtual)
		return EINVAL;
	qc__clock_lock(c);
	bool busy = qc__clock_live(c) > 0 || c->nheap > 0;
	qc__clock_unlock(c);
	if (busy)
		return EBUSY;
	qc__root_free(c->root);
	qc__free(c->heap);
	qc__lock_destroy(&c->lock);
	qc__free(c);
	return 0;
}

qc_time qc_now(const qc_clock *c)
{
	if (!c)
		return 0;
	if (!c->is_virtual)
		return now_monotonic();
	return atomic_load_explicit(&c->now, memory_order_acquire);
}

bool qc_clock_is_virtual(const qc_clock *c)
{
	return c && c->is_virtual;
}

/* Fires, one by one and each at its own deadline, every timer due by
 * target (including ones armed meanwhile), then sets now to target. */
static void clock_move(qc_clock *c, qc_time target)
{
	for (;;) {
		qc__batch b = QC_BATCH_INIT;
		qc__clock_lock(c);
		qc__timer *t = pop_due(c, target);
		if (!t) {
			if (target > atomic_load(&c->now))
				atomic_store(&c->now, target);
			qc__clock_unlock(c);
			return;
		}
		if (t->when > atomic_load(&c->now))
			atomic_store(&c->now, t->when);
		t->fire(t, &b);
		qc__clock_unlock(c);
		qc__batch_run(&b);
	}
}

int qc_clock_advance(qc_clock *c, qc_duration d)
{
	if (!c || !c->is_virtual || d < 0)
		return EINVAL;
	clock_move(c, qc_time_add(qc_now(c), d));
	return 0;
}

int qc_clock_set(qc_clock *c, qc_time t)
{
	if (!c || !c->is_virtual || t < qc_now(c))
		return EINVAL;
	clock_move(c, t);
	return 0;
}

int qc_clock_next_timer(const qc_clock *c, qc_time *when)
{
	if (!c || !when)
		return EINVAL;
	qc_clock *m = (qc_clock *)c;
	qc__clock_lock(m);
	int e = ENOENT;
	if (m->nheap > 0) {
		*when = m->heap[0]->when;
		e = 0;
	}
	qc__clock_unlock(m);
	return e;
}

size_t qc_clock_timers(const qc_clock *c)
{
	if (!c)
		return 0;
	qc_clock *m = (qc_clock *)c;
	qc__clock_lock(m);
	size_t n = m->nheap;
	qc__clock_unlock(m);
	return n;
}

size_t qc_clock_live_contexts(const qc_clock *c)
{
	return c ? qc__clock_live(c) : 0;
}
