/*
 * track.c: thread records: which threads a harness tracks, who made them,
 * what they run with, and when they exit or are joined.
 *
 * A tracked thread starts in trampoline(), which publishes the record in a
 * thread-local and in a pthread key whose destructor (thr_exit) records the
 * exit: so both a return from the start routine and pthread_exit count, and
 * nothing in the thread runs before the sanitizer runtime's own start
 * function when one wraps ours. trampoline() itself runs before that start
 * function when a sanitizer's pthread_create interceptor calls our
 * interposer (the shared library comes after the runtime in lookup order),
 * so it is uninstrumented and only stores: no locks, no allocation.
 *
 * Invariants (harness lock): a record is in the registry from creation until
 * it is freed; r->h is the live harness or NULL (left over); a record's
 * thread touches it last in thr_exit, under the lock; a record is freed by
 * thr_exit (nobody will ask about it), by a join of a thread nobody will ask
 * about, or by qc_h_free. A thread's context holds are dropped before its
 * exit is recorded, so a harness that sees every thread exited may free the
 * clock those contexts live on.
 *
 * Lock order: harness lock, then clock lock (qc_clock_next_timer). The
 * harness lock is never held across pthread_create or pthread_join.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "annotate.h"
#include "harness_impl.h"
#include "stack.h"

_Thread_local qc__thr *qc__self_thr;
_Thread_local bool qc__pass_through;

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thr_exit(void *p);

static void make_exit_key(void)
{
	if (pthread_key_create(&exit_key, thr_exit) != 0)
		qc__die("pthread_key_create failed: cannot track threads");
	QC_ANN_ONCE_DONE(&exit_key_once);
}

/* ------------------------------------------------------ object layout */

static struct {
	pthread_once_t once;
	void *base;   /* quiesce's own object (dladdr base) */
	bool is_main; /* linked into the executable (static library) */
} self_obj = {PTHREAD_ONCE_INIT, NULL, false};

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	uintptr_t a = (uintptr_t)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (a >= lo && a < lo + ph->p_memsz) {
			self_obj.is_main = info->dlpi_name == NULL ||
					   info->dlpi_name[0] == '\0';
			return 1;
		}
	}
	return 0;
}

static void find_self_obj(void)
{
	Dl_info di;
	void *me = (void *)(uintptr_t)qc__h_frame_internal;
	if (dladdr(me, &di))
		self_obj.base = di.dli_fbase;
	dl_iterate_phdr(phdr_cb, me);
	QC_ANN_ONCE_DONE(&self_obj.once);
}

static bool is_sanitizer_path(const char *p)
{
	if (!p)
		return false;
	const char *b = strrchr(p, '/');
	b = b ? b + 1 : p;
	return strncmp(b, "libtsan", 7) == 0 || strncmp(b, "libasan", 7) == 0 ||
	       strncmp(b, "liblsan", 7) == 0 ||
	       strncmp(b, "libubsan", 8) == 0 ||
	       strncmp(b, "libhwasan", 9) == 0;
}

static bool sanitizer_loaded;
static pthread_once_t sanitizer_once = PTHREAD_ONCE_INIT;

static int sanitizer_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	return is_sanitizer_path(info->dlpi_name);
}

static void find_sanitizer(void)
{
	sanitizer_loaded = dl_iterate_phdr(sanitizer_cb, NULL) != 0;
	QC_ANN_ONCE_DONE(&sanitizer_once);
}

bool qc__h_sanitizer_loaded(void)
{
	QC_ONCE(&sanitizer_once, find_sanitizer);
	return sanitizer_loaded;
}

bool qc__h_frame_sanitizer(const void *pc)
{
	Dl_info di;
	return dladdr(pc, &di) && is_sanitizer_path(di.dli_fname);
}

bool qc__h_frame_internal(const void *pc)
{
	QC_ONCE(&self_obj.once, find_self_obj);
	Dl_info di;
	if (!dladdr(pc, &di))
		return false;
	if (!self_obj.is_main && di.dli_fbase == self_obj.base)
		return true;
	return is_sanitizer_path(di.dli_fname);
}

/* The thread id behind a joinable pthread_t, through the CPU-time clock id
 * the kernel encodes it in ((~tid << 3) | 6); 0 once the thread is gone. */
static pid_t tid_of(pthread_t t)
{
	clockid_t cid;
	if (pthread_getcpuclockid(t, &cid) != 0)
		return 0;
	pid_t tid = (pid_t) ~(cid >> 3);
	return tid > 0 ? tid : 0;
}

/* ------------------------------------------------------------ records */

static void reg_link_locked(qc__thr *r)
{
	r->prev = NULL;
	r->next = qc__g_threads;
	if (qc__g_threads)
		qc__g_threads->prev = r;
	qc__g_threads = r;
}

static void reg_unlink_locked(qc__thr *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		qc__g_threads = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

/* Frees a record that is out of the registry (no lock needed). */
static void thr_free(qc__thr *r)
{
	if (!r)
		return;
	qc__free(r->name);
	qc__free(r->creator_name);
	qc__free(r);
}

/* Unlinks and frees r (harness lock). Its context holds are gone. */
static void thr_retire_locked(qc__thr *r)
{
	reg_unlink_locked(r);
	thr_free(r);
}

/* Releases every record of h (harness lock): those of exited threads and
 * the test thread's are freed (exited threads dropped their holds), those
 * of running threads become left over (they keep their holds). */
void qc__h_release_records_locked(qc_h *h)
{
	qc__thr *r = qc__g_threads, *next;
	for (; r; r = next) {
		next = r->next;
		if (atomic_load_explicit(&r->h, memory_order_relaxed) != h)
			continue;
		if (r->is_test || r->exited) {
			qc__ctx_unref(r->ctx);
			qc__ctx_unref(r->inherited);
			r->ctx = r->inherited = NULL;
			thr_retire_locked(r);
		} else {
			atomic_store(&r->h, NULL);
		}
	}
}

qc__thr *qc__h_test_record_new(qc_h *h)
{
	qc__thr *r = qc__calloc(1, sizeof *r);
	if (!r)
		return NULL;
	atomic_init(&r->h, h);
	atomic_init(&r->tid, (pid_t)syscall(SYS_gettid));
	r->pt = pthread_self();
	r->pt_set = true;
	r->is_test = true;
	r->created_real = qc__now_raw();
	qc__h_lock();
	reg_link_locked(r);
	qc__h_unlock();
	return r;
}

size_t qc__h_alive_locked(qc_h *h)
{
	size_t n = 0;
	for (qc__thr *r = qc__g_threads; r; r = r->next)
		if (atomic_load_explicit(&r->h, memory_order_relaxed) == h &&
		    !r->is_test && !r->exited && !r->ignored)
			n++;
	return n;
}

/* ------------------------------------------------- start and exit */

/*
 * The first code of a tracked thread. Uninstrumented: under a sanitizer
 * whose pthread_create interceptor called ours, the runtime has not yet
 * set this thread up (its start function is r->fn). Stores only.
 */
__attribute__((no_sanitize("address", "thread", "undefined")))
__attribute__((noinline)) static void *
trampoline(void *arg)
{
	qc__thr *r = arg;
	qc__self_thr = r;
	__atomic_store_n((pid_t *)&r->tid, (pid_t)syscall(SYS_gettid),
			 __ATOMIC_RELAXED);
	pthread_setspecific(exit_key, r);
	return r->fn(r->arg);
}

/* The start function of qc_h_spawn's threads. */
static void *spawn_main(void *arg)
{
	qc__thr *r = arg;
	r->ret = r->spawn_fn(r->ctx, r->spawn_arg);
	return NULL;
}

/* The pthread key destructor: the thread returned or called pthread_exit. */
static void thr_exit(void *p)
{
	qc__thr *r = p;
	qc__self_thr = NULL;
	qc__h_lock();
	qc_ctx *c1 = r->ctx, *c2 = r->inherited;
	r->ctx = r->inherited = NULL;
	qc__h_unlock();
	/* Before the exit is recorded: freeing a context touches its clock,
	 * which the harness frees once every thread has exited. */
	qc__ctx_unref(c1);
	qc__ctx_unref(c2);

	qc__h_lock();
	r->exited = true;
	r->park = NULL;
	r->foreign = NULL;
	r->exited_real = qc__now_raw();
	atomic_store(&r->exited_word, 1);
	qc_h *h = atomic_load_explicit(&r->h, memory_order_relaxed);
	bool retire = !h || (r->detached && !r->spawned);
	if (h) {
		qc__h_event_locked(h, QC_EV_EXIT, r, NULL, QC_TIME_NEVER);
		qc__h_bump_locked(h);
		if (qc__h_get_live() == h)
			qc__h_maybe_advance_locked(h);
	}
	if (retire)
		thr_retire_locked(r);
	qc__h_unlock();
}

/* ---------------------------------------------------------- creation */

/* Creates the thread q describes, tracked by h. Returns 0 or an errno;
 * *t is written on success. */
int qc__h_track_create(qc_h *h, pthread_t *t, const pthread_attr_t *attr,
		       const track_req *q)
{
	QC_ONCE(&exit_key_once, make_exit_key);
	qc__thr *r = qc__calloc(1, sizeof *r);
	if (!r)
		return ENOMEM;
	QC_ANN_ATOMIC(&r->tid); /* the thread stores it unlocked, first thing */
	if (q->name && !(r->name = qc__strdup(q->name))) {
		qc__free(r);
		return ENOMEM;
	}
	r->fn = q->spawn_fn ? spawn_main : q->fn;
	r->arg = q->spawn_fn ? (void *)r : q->arg;
	r->routine = q->routine;
	r->spawn_fn = q->spawn_fn;
	r->spawn_arg = q->spawn_arg;
	r->spawned = q->spawn_fn != NULL;
	r->nframes =
	    q->nframes < QC_CREATE_FRAMES ? q->nframes : QC_CREATE_FRAMES;
	if (r->nframes > 0)
		memcpy(r->frames, q->frames,
		       (size_t)r->nframes * sizeof(void *));
	r->skip = q->skip;
	int ds = PTHREAD_CREATE_JOINABLE;
	if (attr)
		pthread_attr_getdetachstate(attr, &ds);
	bool detached = ds == PTHREAD_CREATE_DETACHED;
	r->detached = detached;
	r->created_real = qc__now_raw();

	qc__thr *me = qc__self_thr;
	qc__h_lock();
	if (!h || qc__h_get_live() != h) {
		qc__h_unlock();
		thr_free(r);
		return ESRCH; /* the harness went away: create untracked */
	}
	r->creator_tid = (pid_t)syscall(SYS_gettid);
	if (me && atomic_load_explicit(&me->h, memory_order_relaxed) == h) {
		r->creator_is_test = me->is_test;
		r->creator_tracked = !me->is_test;
		if (me->name)
			r->creator_name = qc__strdup(me->name);
		r->inherited = me->ctx ? me->ctx : me->inherited;
	}
	r->ctx = q->ctx;
	qc__ctx_ref(r->ctx);
	qc__ctx_ref(r->inherited);
	r->order = ++h->ncreated;
	atomic_init(&r->h, h);
	reg_link_locked(r);
	qc__h_event_locked(h, QC_EV_SPAWN, r, NULL, QC_TIME_NEVER);
	qc__h_bump_locked(h);
	qc__h_unlock();

	int e;
	if (q->via_public) {
		qc__pass_through = true;
		e = pthread_create(t, attr, trampoline, r);
		qc__pass_through = false;
	} else {
		e = qc__thread_create_untracked(t, attr, trampoline, r);
	}

	qc__h_lock();
	if (e != 0) {
		qc_ctx *c1 = r->ctx, *c2 = r->inherited;
		r->ctx = r->inherited = NULL;
		reg_unlink_locked(r);
		qc__h_bump_locked(h);
		qc__h_unlock();
		qc__ctx_unref(c1);
		qc__ctx_unref(c2);
		thr_free(r);
		return e;
	}
	if (!detached) {
		/* A joinable thread's record lives until it is joined, so it
		 * cannot have been freed; a detached one may have been. */
		r->pt = *t;
		r->pt_set = true;
		if (atomic_load(&r->tid) == 0 && !r->exited)
			atomic_store(&r->tid, tid_of(*t));
	}
	qc__h_unlock();
	return 0;
}

/* ------------------------------------------------ sanitizer threads */

/* What a sanitizer runtime's pthread_create interceptor passes on to us:
 * its own start function around the user's. Returns true if fn is the
 * runtime's own thread (never tracked); otherwise *routine is the user's
 * start routine when it can be found. */
bool qc__h_sanitizer_thread(void *(*fn)(void *), const pthread_attr_t *attr,
			    void *arg, const void **routine)
{
	Dl_info di;
	void *p;
	memcpy(&p, &fn, sizeof p);
	if (!qc__h_sanitizer_loaded() || !dladdr(p, &di) ||
	    !is_sanitizer_path(di.dli_fname))
		return false;
	const char *base = strrchr(di.dli_fname, '/');
	base = base ? base + 1 : di.dli_fname;
	void *user = NULL;
	if (strncmp(base, "libasan", 7) == 0) {
		/* asan_thread_start(AsanThread *): after its context_ come
		 * the user's start_routine_ and arg_ (gcc 12). */
		if (arg)
			memcpy(&user, (char *)arg + sizeof(void *),
			       sizeof user);
	} else if (strncmp(base, "libtsan", 7) == 0) {
		/* gcc 12's libtsan passes its own attributes for every user
		 * thread, none for its background thread. */
		if (!attr)
			return true;
		/* Its ThreadParam starts with the user's callback. */
		if (arg)
			memcpy(&user, arg, sizeof user);
	}
	if (user && dladdr(user, &di) && !is_sanitizer_path(di.dli_fname))
		*routine = user;
	return false;
}

/* ------------------------------------------------------- joins */

/* The record of joinable thread t of any harness not yet joined; prefers
 * an exited one (t may have been reused only after a join). */
static qc__thr *find_joinable_locked(pthread_t t)
{
	qc__thr *found = NULL;
	for (qc__thr *r = qc__g_threads; r; r = r->next) {
		if (!r->pt_set || r->is_test || r->joined || r->detached ||
		    !pthread_equal(r->pt, t))
			continue;
		if (r->exited)
			return r;
		found = r;
	}
	return found;
}

/* Before a join: if the caller is in the bubble and t is a running
 * thread of the live harness, parks the caller on t's exit word. Returns
 * true if p was registered. */
bool qc__h_join_begin(pthread_t t, qc__park *p)
{
	p->priv_next = QC_PARK_NOT_PUSHED;
	qc_h *h = qc__h_get_live();
	if (!h || !qc__self_thr)
		return false;
	qc__h_lock();
	qc__thr *r = find_joinable_locked(t);
	bool park = r && !r->exited &&
		    atomic_load_explicit(&r->h, memory_order_relaxed) == h;
	if (park) {
		p->what = "pthread_join";
		p->clock = h->clock;
		p->ctx = NULL;
		p->until = QC_TIME_NEVER;
		p->word = &r->exited_word;
		p->expect = 0;
	}
	qc__h_unlock();
	if (park)
		qc__park_begin(p);
	return park;
}

/* After a successful join (or detach): marks t's record, freeing it when
 * nobody will ask about it again. */
void qc__h_note_joined(pthread_t t, bool detach)
{
	qc__h_lock();
	qc__thr *r = NULL;
	if (detach && qc__self_thr && pthread_equal(t, pthread_self()))
		r = qc__self_thr; /* its pt may not be recorded yet */
	else
		r = find_joinable_locked(t);
	if (r && !r->is_test) {
		if (detach)
			r->detached = true;
		else
			r->joined = true;
		r->joining = false;
		qc_h *h = atomic_load_explicit(&r->h, memory_order_relaxed);
		if (r->exited && (!h || !r->spawned))
			thr_retire_locked(r);
	}
	qc__h_unlock();
}

void qc__h_reap_spawned(qc_h *h)
{
	for (;;) {
		pthread_t batch[32];
		size_t n = 0;
		qc__h_lock();
		for (qc__thr *r = qc__g_threads; r && n < 32; r = r->next) {
			if (atomic_load_explicit(&r->h, memory_order_relaxed) !=
				h ||
			    !r->spawned || !r->exited || r->joined ||
			    r->joining || !r->pt_set)
				continue;
			r->joining = true;
			batch[n++] = r->pt;
		}
		qc__h_unlock();
		if (n == 0)
			return;
		/* Through the public name, so that a sanitizer runtime sees
		 * the join; our interposer marks the records joined. */
		for (size_t i = 0; i < n; i++)
			pthread_join(batch[i], NULL);
	}
}

/* ------------------------------------------------------ ignore list */

void qc__h_resolve_ignores(qc_h *h)
{
	if (h->nignore == 0)
		return;
	for (;;) {
		qc__h_lock();
		qc__thr *r = qc__g_threads;
		while (r && (atomic_load_explicit(&r->h,
						  memory_order_relaxed) != h ||
			     r->is_test || r->ignore_done))
			r = r->next;
		if (!r) {
			qc__h_unlock();
			return;
		}
		r->ignore_done = true;
		const void *routine = r->routine;
		qc__h_unlock();
		char name[256];
		bool ign = false;
		if (routine && qc__symbol_name(routine, name, sizeof name))
			for (size_t i = 0; i < h->nignore && !ign; i++)
				ign = strcmp(name, h->ignore[i]) == 0;
		if (ign) {
			qc__h_lock();
			/* Still registered: records of h are freed only by
			 * qc_h_free, on this thread. */
			r->ignored = true;
			qc__h_bump_locked(h);
			qc__h_unlock();
		}
	}
}

/* ---------------------------------------------------- spawn, result */

/* Default stack for the threads quiesce starts: QC_THREAD_STACK bytes if
 * set (valgrind runs use small stacks), else the system's. */
static size_t thread_stack(void)
{
	const char *s = getenv("QC_THREAD_STACK");
	if (!s || !*s)
		return 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v < 16384)
		return 0;
	return (size_t)v;
}

static void os_name(pthread_t t, const char *name)
{
	char os[16];
	strncpy(os, name, 15);
	os[15] = '\0';
	(void)pthread_setname_np(t, os);
}

static int start_named(qc_h *h, pthread_t *t, track_req *q)
{
	pthread_attr_t a, *ap = NULL;
	size_t st = thread_stack();
	if (st && pthread_attr_init(&a) == 0) {
		if (pthread_attr_setstacksize(&a, st) == 0)
			ap = &a;
		else
			pthread_attr_destroy(&a);
	}
	int e;
	if (h) {
		e = qc__h_track_create(h, t, ap, q);
		if (e == ESRCH)
			h = NULL;
	}
	if (!h) {
		qc__pass_through = true;
		e = pthread_create(t, ap, q->fn, q->arg);
		qc__pass_through = false;
	}
	if (ap)
		pthread_attr_destroy(ap);
	if (e == 0 && q->name)
		os_name(*t, q->name);
	return e;
}

int qc__thread_start(pthread_t *t, const char *name, qc_ctx *ctx,
		     void *(*fn)(void *), void *arg)
{
	void *frames[QC_CREATE_FRAMES];
	int nf = backtrace(frames, QC_CREATE_FRAMES);
	if (!t || !fn)
		return EINVAL;
	track_req q = {.fn = fn,
		       .arg = arg,
		       .routine = (const void *)(uintptr_t)fn,
		       .name = name,
		       .ctx = ctx,
		       .frames = frames,
		       .nframes = nf,
		       .skip = 2,
		       .via_public = true};
	return start_named(qc__h_get_live(), t, &q);
}

int qc_h_spawn(qc_h *h, qc_ctx *ctx, const char *name,
	       int (*fn)(qc_ctx *ctx, void *arg), void *arg)
{
	void *frames[QC_CREATE_FRAMES];
	int nf = backtrace(frames, QC_CREATE_FRAMES);
	if (!h || !ctx || !name || !fn || qc_ctx_clock(ctx) != h->clock ||
	    qc__h_get_live() != h)
		return EINVAL;
	track_req q = {.routine = (const void *)(uintptr_t)fn,
		       .name = name,
		       .ctx = ctx,
		       .spawn_fn = fn,
		       .spawn_arg = arg,
		       .frames = frames,
		       .nframes = nf,
		       .skip = 1,
		       .via_public = true};
	pthread_t t;
	int e = start_named(h, &t, &q);
	return e == ESRCH ? EINVAL : e;
}

int qc_h_result(qc_h *h, const char *name, int *ret)
{
	if (!h || !name || !ret)
		return EINVAL;
	qc__h_reap_spawned(h);
	qc__h_lock();
	int found = 0, e = ENOENT, value = 0;
	for (qc__thr *r = qc__g_threads; r; r = r->next) {
		if (atomic_load_explicit(&r->h, memory_order_relaxed) != h ||
		    !r->spawned || !r->name || strcmp(r->name, name) != 0)
			continue;
		found++;
		e = r->exited ? 0 : EBUSY;
		value = r->ret;
	}
	qc__h_unlock();
	if (found > 1)
		return EEXIST;
	if (e == 0)
		*ret = value;
	return e;
}
