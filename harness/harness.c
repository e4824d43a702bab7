/*
 * harness.c: the harness's lifecycle (qc_h_new, qc_h_free), the one-live-
 * harness rule, and the pthread_create/join/detach interposers that let a
 * live harness track every thread the code under test creates.
 *
 * The interposers live here, in the object that defines qc_h_new, so that a
 * static link that uses the harness always pulls them in. With no harness
 * live each costs one relaxed atomic load before calling the next
 * definition (libc's, or a sanitizer runtime's interceptor).
 *
 * Sanitizers: gcc puts libtsan/libasan first in the executable's lookup
 * order, so with the shared libquiesce their pthread_create interceptors
 * run first and call ours as the "real" one, passing their own start
 * function (track.c copes: its trampoline is uninstrumented, and it digs
 * the user's routine out of libtsan's parameter block). TSan's background
 * thread reaches us the same way and is never tracked. Threads that bypass
 * every interposer (C11 thrd_create, glibc's helpers) show up only in the
 * /proc census of qc_h_check_leaks. quiesce's own threads start through
 * qc__thread_create_untracked.
 *
 * Invariants: qc__h_live is the one live harness or NULL, written under the
 * harness lock; an abandoned harness is never freed (its survivors may
 * still reach its clock and contexts), and it stays reachable from a static
 * list, as do clocks kept alive by lost contexts.
 *
 * Lock order: harness lock -> clock lock. No lock is held while contexts
 * are cancelled or threads are created or joined.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

#include <quiesce/census.h>

#include "annotate.h"
#include "harness_impl.h"
#include "stack.h"
#include "timeshim.h"

#define QC_EXPORT __attribute__((visibility("default")))

void *_Atomic qc__h_live;

#ifdef QC_DEBUG
pthread_mutex_t qc__g_mu = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
#else
pthread_mutex_t qc__g_mu = PTHREAD_MUTEX_INITIALIZER;
#endif
qc__thr *qc__g_threads;

/* Harnesses abandoned with threads still running, and clocks left alive
 * by lost contexts: never freed, always reachable. */
static qc_h *abandoned;
static struct qc__kept_clock {
	qc_clock *clock;
	struct qc__kept_clock *next;
} * kept_clocks;
static bool creating; /* a qc_h_new is between its check and publish */

void qc__h_lock(void)
{
	int e = pthread_mutex_lock(&qc__g_mu);
	QC_ASSERT(e == 0);
}

void qc__h_unlock(void)
{
	int e = pthread_mutex_unlock(&qc__g_mu);
	QC_ASSERT(e == 0);
}

/* fork() while another thread holds the harness lock must not leave the
 * child with a lock nobody will release. */
static void atfork_prepare(void)
{
	qc__h_lock();
}

static void atfork_parent(void)
{
	qc__h_unlock();
}

/* The child's only thread has a new id: an error-checking mutex would
 * refuse its unlock, so the lock starts afresh. */
static void atfork_child(void)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
#ifdef QC_DEBUG
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#endif
	QC_ANN_MUTEX_RESET_HELD(&qc__g_mu); /* atfork_prepare's */
	pthread_mutex_init(&qc__g_mu, &a);
	pthread_mutexattr_destroy(&a);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ------------------------------------------------- the next definitions */

static struct {
	int (*join)(pthread_t, void **);
	int (*tryjoin)(pthread_t, void **);
	int (*timedjoin)(pthread_t, void **, const struct timespec *);
	int (*clockjoin)(pthread_t, void **, clockid_t,
			 const struct timespec *);
	int (*detach)(pthread_t);
} next;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

#define FIND(field, name)                                     \
	do {                                                  \
		void *sym = qc__next_symbol(name);            \
		memcpy(&next.field, &sym, sizeof next.field); \
	} while (0)

static void find_next(void)
{
	FIND(join, "pthread_join");
	FIND(tryjoin, "pthread_tryjoin_np");
	FIND(timedjoin, "pthread_timedjoin_np");
	FIND(clockjoin, "pthread_clockjoin_np");
	FIND(detach, "pthread_detach");
	QC_ANN_ONCE_DONE(&next_once);
}

#define NEXT(field)                             \
	do {                                    \
		QC_ONCE(&next_once, find_next); \
		if (!next.field)                \
			return ENOSYS;          \
	} while (0)

/* ----------------------------------------------------------- interposers */

QC_EXPORT int pthread_create(pthread_t *restrict t,
			     const pthread_attr_t *restrict attr,
			     void *(*fn)(void *), void *restrict arg)
{
	qc_h *h = atomic_load_explicit(&qc__h_live, memory_order_relaxed);
	if (QC_LIKELY(!h) || qc__pass_through)
		return qc__thread_create_untracked(t, attr, fn, arg);
	/* The creation site is the first frame outside quiesce and the
	 * sanitizers: without a sanitizer, that is our caller, and a return
	 * address costs nothing where unwinding 10 frames costs ~5 us. */
	void *frames[QC_CREATE_FRAMES];
	int nf, skip;
	if (qc__h_sanitizer_loaded()) {
		nf = backtrace(frames, QC_CREATE_FRAMES);
		skip = 1;
	} else {
		frames[0] =
		    __builtin_extract_return_addr(__builtin_return_address(0));
		nf = 1;
		skip = 0;
	}
	const void *routine = (const void *)(uintptr_t)fn;
	qc__thr *me = qc__self_thr;
	/* Threads of left-over threads are left over too; a sanitizer's
	 * own threads are never tracked. */
	if ((me && !atomic_load_explicit(&me->h, memory_order_relaxed)) ||
	    qc__h_sanitizer_thread(fn, attr, arg, &routine))
		return qc__thread_create_untracked(t, attr, fn, arg);
	track_req q = {.fn = fn,
		       .arg = arg,
		       .routine = routine,
		       .frames = frames,
		       .nframes = nf,
		       .skip = skip};
	int e = qc__h_track_create(h, t, attr, &q);
	if (e == ESRCH || e == ENOMEM) /* gone, or no memory to track it */
		return qc__thread_create_untracked(t, attr, fn, arg);
	return e;
}

QC_EXPORT int pthread_join(pthread_t t, void **ret)
{
	NEXT(join);
	if (QC_LIKELY(!atomic_load_explicit(&qc__h_live, memory_order_relaxed)))
		return next.join(t, ret);
	qc__park p;
	bool parked = qc__h_join_begin(t, &p);
	int e = next.join(t, ret);
	if (parked)
		qc__park_end(&p);
	if (e == 0)
		qc__h_note_joined(t, false);
	return e;
}

QC_EXPORT int pthread_tryjoin_np(pthread_t t, void **ret)
{
	NEXT(tryjoin);
	int e = next.tryjoin(t, ret);
	if (e == 0 && atomic_load_explicit(&qc__h_live, memory_order_relaxed))
		qc__h_note_joined(t, false);
	return e;
}

QC_EXPORT int pthread_timedjoin_np(pthread_t t, void **ret,
				   const struct timespec *abstime)
{
	NEXT(timedjoin);
	int e = next.timedjoin(t, ret, abstime);
	if (e == 0 && atomic_load_explicit(&qc__h_live, memory_order_relaxed))
		qc__h_note_joined(t, false);
	return e;
}

QC_EXPORT int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clock,
				   const struct timespec *abstime)
{
	NEXT(clockjoin);
	int e = next.clockjoin(t, ret, clock, abstime);
	if (e == 0 && atomic_load_explicit(&qc__h_live, memory_order_relaxed))
		qc__h_note_joined(t, false);
	return e;
}

QC_EXPORT int pthread_detach(pthread_t t)
{
	NEXT(detach);
	int e = next.detach(t);
	if (e == 0 && atomic_load_explicit(&qc__h_live, memory_order_relaxed))
		qc__h_note_joined(t, true);
	return e;
}

/* ------------------------------------------------------------ helpers */

int qc_h_time_multiplier(void)
{
	const char *s = getenv("QC_TIME_MULTIPLIER");
	if (s && *s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end == '\0' && v >= 1 && v <= 10000)
			return (int)v;
	}
	if (RUNNING_ON_VALGRIND)
		return 20;
#ifdef QC_SANITIZER_BUILD
	return 5;
#else
	return 1;
#endif
}

static qc_duration scale(qc_duration d, int m)
{
	return d > INT64_MAX / m ? INT64_MAX : d * m;
}

static void *noop(void *arg)
{
	return arg;
}

/* Under ThreadSanitizer the runtime starts its background thread on the
 * first pthread_create: start it now, so it belongs to the baseline. */
static void warm_up_sanitizer(void)
{
	if (!dlsym(RTLD_DEFAULT, "__tsan_init"))
		return;
	static bool done;
	if (done)
		return;
	done = true;
	pthread_t t;
	qc__pass_through = true;
	int e = pthread_create(&t, NULL, noop, NULL);
	qc__pass_through = false;
	if (e == 0)
		pthread_join(t, NULL);
}

/* A /proc list that may need a bigger array: fn follows
 * qc_census_tids's contract. */
static int list_grow(int (*fn)(pid_t, pid_t *, size_t, size_t *), pid_t **out,
		     size_t *n)
{
	size_t cap = 64;
	for (;;) {
		pid_t *a = qc__malloc(cap * sizeof *a);
		if (!a)
			return ENOMEM;
		size_t got = 0;
		int e = fn(0, a, cap, &got);
		if (e == 0) {
			*out = a;
			*n = got;
			return 0;
		}
		qc__free(a);
		if (e != ERANGE)
			return e;
		cap = got + 16;
	}
}

int qc__h_list_fds(int **fds, size_t *n)
{
	return list_grow(qc_census_fds, fds, n);
}

static void base_ctx_cb(qc_ctx *ctx, void *arg)
{
	qc_h *h = arg;
	const qc_ctx **a =
	    qc__realloc(h->base_ctxs, (h->nbase_ctxs + 1) * sizeof *a);
	if (!a) {
		h->base_ctxs_oom = true;
		return;
	}
	a[h->nbase_ctxs++] = ctx;
	h->base_ctxs = a;
}

static bool valid_signal(int sig)
{
	return sig == 0 ||
	       (sig > 0 && sig <= SIGRTMAX && sig != SIGKILL && sig != SIGSTOP);
}

/* ------------------------------------------------------------ lifecycle */

static void h_destroy(qc_h *h)
{
	qc__free(h->base_tids);
	qc__free(h->base_fds);
	qc__free(h->base_children);
	qc__free(h->base_ctxs);
	qc__free(h->kept);
	qc__heap_free(h->heap);
	for (size_t i = 0; i < h->nignore; i++)
		qc__free(h->ignore[i]);
	qc__free(h->ignore);
	qc__buf_free(&h->report);
	qc__free(h->ev);
	qc__free(h);
}

/* Frees h's clock, or keeps it (reachable) when lost contexts or timers
 * live on it. */
static void clock_release(qc_h *h)
{
	if (!qc_clock_is_virtual(h->clock)) {
		qc__clock_set_track(h->clock, false);
		return;
	}
	if (qc_clock_free(h->clock) == 0)
		return;
	struct qc__kept_clock *k = h->kept;
	h->kept = NULL; /* now the list's */
	k->clock = h->clock;
	qc__h_lock();
	k->next = kept_clocks;
	kept_clocks = k;
	qc__h_unlock();
}

qc_h *qc_h_new_at(const qc_h_opts *opts, const qc_site *site)
{
	qc_h_opts o = opts ? *opts : (qc_h_opts){0};
	if (o.guard < 0 || o.quiet_bound < 0 || o.start < 0 ||
	    (o.real_clock && (o.start != 0 || o.intercept_time)) ||
	    !valid_signal(o.stack_signal)) {
		errno = EINVAL;
		return NULL;
	}
	if (o.intercept_time && !qc__time_intercept_available()) {
		fprintf(stderr, "quiesce: intercept_time: time interposition "
				"is not built into this library (or another "
				"library's time functions come first, such as "
				"a preloaded libfaketime)\n");
		errno = ENOTSUP;
		return NULL;
	}
	pthread_once(&atfork_once, atfork_register);

	qc__h_lock();
	qc_h *cur = qc__h_get_live();
	if (cur || creating) {
		const qc_site *s = cur ? cur->site : NULL;
		qc__h_unlock();
		fprintf(stderr,
			"quiesce: qc_h_new: another harness is live (created "
			"at %s:%d in %s()); qc_h_free it first\n",
			s ? s->file : "?", s ? s->line : 0, s ? s->func : "?");
		errno = EBUSY;
		return NULL;
	}
	creating = true;
	qc__h_unlock();

	qc_h *h = qc__calloc(1, sizeof *h);
	if (!h)
		goto fail;
	h->site = site;
	h->opts = o;
	h->multiplier = qc_h_time_multiplier();
	h->guard = scale(o.guard ? o.guard : QC_SECOND, h->multiplier);
	h->quiet_limit = QC_TIME_NEVER;
	h->ev = qc__calloc(QC_EVENTS, sizeof *h->ev);
	h->kept = qc__malloc(sizeof *h->kept);
	if (!h->ev || !h->kept)
		goto fail_h;
	h->clock =
	    o.real_clock
		? qc_clock_real()
		: qc_clock_virtual_new(o.start ? o.start : QC_VIRTUAL_EPOCH);
	if (!h->clock)
		goto fail_h;
	if (o.real_clock) {
		qc__clock_set_track(h->clock, true);
		qc__clock_foreach_live(h->clock, base_ctx_cb, h);
		if (h->base_ctxs_oom)
			goto fail_clock;
	}
	h->ctx = qc_with_cancel_at(qc_clock_root(h->clock), site);
	if (!h->ctx)
		goto fail_clock;
	/* Reports name the root: a harness without the name is not made. */
	qc_ctx_set_name(h->ctx, "qc_h_ctx");
	if (!qc_ctx_name(h->ctx))
		goto fail_ctx;
	h->start = qc_now(h->clock);
	h->start_real = qc__now_raw();

	h->stacks_ok =
	    qc__stack_init(o.stack_signal ? o.stack_signal : SIGRTMIN + 3) == 0;
	warm_up_sanitizer();
	/* Baselines last, after everything quiesce itself opens. */
	if (qc_census_tids_alloc(0, &h->base_tids, &h->nbase_tids) != 0 ||
	    qc__h_list_fds(&h->base_fds, &h->nbase_fds) != 0 ||
	    list_grow(qc_census_children, &h->base_children,
		      &h->nbase_children) != 0)
		goto fail_ctx;
	/* No heap delta without valgrind or LeakSanitizer (ENOTSUP); but
	 * one that is possible and was lost to ENOMEM would be a silent
	 * gap in every leak check. */
	int he = qc__heap_baseline(&h->heap);
	if (he == ENOMEM)
		goto fail_ctx;
	if (he != 0)
		h->heap = NULL;
	if (h->heap && RUNNING_ON_VALGRIND) {
		/* The counters of the search the baseline just ran. */
		unsigned long lk = 0, dub = 0, rch = 0, sup = 0;
		VALGRIND_COUNT_LEAKS(lk, dub, rch, sup);
		(void)dub;
		(void)rch;
		(void)sup;
		h->vg_sure = lk;
	}
	h->test = qc__h_test_record_new(h);
	if (!h->test)
		goto fail_ctx;

	qc__h_lock();
	atomic_store(&h->clock->owner, h);
	/* Read without the lock on fast paths (relaxed): annotate.h. */
	QC_ANN_ATOMIC(&qc__h_live);
	atomic_store_explicit(&qc__h_live, h, memory_order_release);
	creating = false;
	qc__h_event_locked(h, QC_EV_NEW, h->test, NULL, QC_TIME_NEVER);
	qc__h_unlock();
	h->prev_self = qc__self_thr;
	qc__self_thr = h->test;
	return h;

fail_ctx:
	qc_cancel(h->ctx);
	qc_release(h->ctx);
fail_clock:
	if (o.real_clock)
		qc__clock_set_track(h->clock, false);
	else
		qc_clock_free(h->clock);
fail_h:
	h_destroy(h);
fail:
	qc__h_lock();
	creating = false;
	qc__h_unlock();
	errno = ENOMEM;
	return NULL;
}

int qc_h_free(qc_h *h)
{
	if (!h)
		return 0;
	qc__h_lock();
	if (h->abandoned) {
		qc__h_unlock();
		return EBUSY;
	}
	if (qc__h_get_live() != h) {
		qc__h_unlock();
		return EINVAL;
	}
	/* A thread moving the clock runs timers' callbacks on it. */
	while (h->advancing)
		qc__h_wait_epoch_locked(h, 10 * QC_MILLISECOND);
	size_t running = 0, ignored = 0;
	for (qc__thr *r = qc__g_threads; r; r = r->next)
		if (atomic_load_explicit(&r->h, memory_order_relaxed) == h &&
		    !r->is_test && !r->exited)
			r->ignored ? ignored++ : running++;
	atomic_store(&h->clock->owner, NULL);
	atomic_store_explicit(&qc__h_live, NULL, memory_order_release);
	if (running || ignored) {
		/* Abandon: the survivors keep the clock, the contexts and
		 * their records; the harness stays reachable. */
		h->abandoned = true;
		h->abandoned_next = abandoned;
		abandoned = h;
		qc__h_release_records_locked(h);
		qc__h_unlock();
		qc__self_thr = h->prev_self;
		qc_cancel(h->ctx);
		return running ? EBUSY : 0;
	}
	qc__h_unlock();

	qc__h_reap_spawned(h);
	qc__h_lock();
	qc__h_release_records_locked(h);
	qc__h_unlock();
	qc__self_thr = h->prev_self;
	qc_cancel(h->ctx);
	qc_release(h->ctx);
	clock_release(h);
	h_destroy(h);
	return 0;
}

qc_ctx *qc_h_ctx(qc_h *h)
{
	return h ? h->ctx : NULL;
}

qc_clock *qc_h_clock(qc_h *h)
{
	return h ? h->clock : NULL;
}

void qc_h_cancel(qc_h *h)
{
	if (!h)
		return;
	qc__h_lock();
	if (!h->cancelled) {
		h->cancelled = true;
		h->cancel_time = qc_now(h->clock);
		h->cancel_real = qc__now_raw();
		qc__h_event_locked(h, QC_EV_CANCEL, NULL, NULL, QC_TIME_NEVER);
	}
	qc__h_unlock();
	qc_cancel(h->ctx);
}

int qc_h_ignore(qc_h *h, const char *start_routine)
{
	if (!h || !start_routine || !*start_routine)
		return EINVAL;
	char *copy = qc__strdup(start_routine);
	if (!copy)
		return ENOMEM;
	char **a = qc__realloc(h->ignore, (h->nignore + 1) * sizeof *a);
	if (!a) {
		qc__free(copy);
		return ENOMEM;
	}
	h->ignore = a;
	qc__h_lock();
	a[h->nignore++] = copy;
	for (qc__thr *r = qc__g_threads; r; r = r->next)
		if (atomic_load_explicit(&r->h, memory_order_relaxed) == h)
			r->ignore_done = false;
	qc__h_unlock();
	return 0;
}

const char *qc_h_report(const qc_h *h)
{
	return h ? qc__buf_str(&h->report) : "";
}

/* ------------------------------------------------- hooks for the core */

void qc__h_note_derive(const qc_ctx *parent, const qc_ctx *child)
{
	qc_h *h = qc__h_get_live();
	qc__thr *me = qc__self_thr;
	if (!h || !me || !parent ||
	    atomic_load_explicit(&me->h, memory_order_relaxed) != h)
		return;
	qc_ctx *bg = qc_background();
	bool wrong = parent == bg;
	if (!wrong) {
		void *owner = atomic_load(&parent->clock->owner);
		wrong = owner == NULL;
	}
	if (!wrong)
		return;
	char what[200];
	if (parent == bg) {
		snprintf(what, sizeof what, "qc_background()");
	} else {
		const qc_site *ps = qc_ctx_site(parent);
		const char *pn = qc_ctx_name(parent);
		snprintf(what, sizeof what,
			 "%s%s%sa context of a clock no harness owns%s%s:%d",
			 pn ? "\"" : "", pn ? pn : "", pn ? "\", " : "",
			 ps ? ", created at " : "",
			 ps ? qc__h_base(ps->file) : "", ps ? ps->line : 0);
		if (!ps)
			what[strlen(what) - 2] = '\0'; /* drop ":0" */
	}
	qc__h_lock();
	if (qc__h_get_live() == h) {
		if (h->nwrong < QC_MAX_WRONG) {
			qc__wrong *w = &h->wrong[h->nwrong++];
			w->site = qc_ctx_site(child);
			snprintf(w->parent, sizeof w->parent, "%s", what);
			if (me->is_test)
				snprintf(w->thread, sizeof w->thread,
					 "the test thread");
			else
				snprintf(w->thread, sizeof w->thread,
					 "thread %d \"%.16s\"",
					 (int)atomic_load(&me->tid),
					 me->name ? me->name : "");
		}
		h->nwrong_total++;
	}
	qc__h_unlock();
}

qc_clock *qc__h_time_clock(void)
{
	qc__thr *me = qc__self_thr;
	if (!me)
		return NULL;
	qc_h *h = atomic_load_explicit(&me->h, memory_order_acquire);
	if (!h || h != qc__h_get_live() || !h->opts.intercept_time)
		return NULL;
	return h->clock;
}
