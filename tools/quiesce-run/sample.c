/*
 * sample.c: the sampler (sample.h), built on the public /proc census.
 *
 * Cost is what matters here: at a 10 ms interval the sampler must stay
 * under 2% of a core, so a plain tick reads two small files: /proc/loadavg
 * (has any pid been allocated since the last /proc listing?) and the stat
 * of each tracked process (state, thread count). /proc itself is listed
 * only when a pid was allocated, and then at most every LIST_EVERY ticks;
 * a new process is read and classified once, and one found unrelated stays
 * unrelated (a process cannot become our descendant later) except for a
 * re-classification every FULL_REFRESH ticks in case a pid was reused.
 * /proc/<pid>/task is listed when a thread count changes and on detail
 * ticks (every DETAIL_EVERY, and whenever the caller asks), which also
 * count the program's fds. A caller that needs an exact answer (at the
 * signal, at the program's exit, before giving a verdict) asks for a
 * detail tick, which always lists /proc.
 * Invariants: `known` is sorted by pid; a tracked process stays tracked
 * until it disappears from /proc.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quiesce/census.h>

#include "sample.h"

#define LIFE_CAP     20000 /* thread lifetimes recorded, at most */
#define MAP_CAP	     65536 /* tid hash slots: a power of 2 > 2 * LIFE_CAP */
#define FULL_REFRESH 100   /* ticks between full re-classifications */
#define DETAIL_EVERY 10	   /* ticks between fd counts and forced task lists */
#define LIST_EVERY   5	   /* ticks between /proc listings, at most */

struct known {
	pid_t pid;
	bool tracked;
	bool pending; /* read this tick, not classified yet */
	char state;
	pid_t ppid, pgid;
	unsigned long long start;
	long threads;
	long listed_threads; /* num_threads when its tasks were last listed */
	bool unlisted;	     /* tasks not listed this tick: lives go on */
};

struct qr_sampler {
	pid_t main, self;
	bool valgrind;
	int vg_floor; /* lowest valgrind fd of the program; -1 unknown */
	struct known *known;
	size_t nknown, capknown;
	pid_t *list; /* scratch: /proc listing, tids, fds */
	size_t caplist;
	struct qr_sample *samples;
	size_t nsamples, capsamples;
	struct qr_life *lives;
	size_t nlives, caplives, dropped;
	size_t *open; /* indices of lives not ended */
	size_t nopen, capopen;
	unsigned *seen; /* per life: tick it was last seen at */
	size_t capseen;
	unsigned tick;
	int *map; /* tid hash -> life index + 1 */
	size_t capmap;
	pid_t *pids; /* every pid ever tracked */
	size_t npids, cappids;
	size_t live;
	long fds;
	pid_t last_pid;	      /* /proc/loadavg's at the last /proc listing */
	unsigned listed_tick; /* tick of the last /proc listing */
};

/* A zombie thread-group leader whose other threads still run (its main
 * thread called pthread_exit) shows state Z with more than one thread:
 * that process is alive. */
static bool alive(const struct known *e)
{
	return (e->state != 'Z' && e->state != 'X') || e->threads > 1;
}

/* Threads still running: a zombie leader is not one of them. */
static long live_threads(const struct known *e)
{
	return e->state == 'Z' && e->threads > 0 ? e->threads - 1 : e->threads;
}

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return false;
	*p = q;
	*cap = n;
	return true;
}

struct qr_sampler *qr_sampler_new(pid_t main_pid, bool valgrind)
{
	struct qr_sampler *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->main = main_pid;
	s->self = getpid();
	s->valgrind = valgrind;
	s->vg_floor = -1;
	s->fds = -1;
	s->capmap = MAP_CAP;
	s->map = calloc(s->capmap, sizeof *s->map);
	if (!s->map) {
		free(s);
		return NULL;
	}
	return s;
}

void qr_sampler_free(struct qr_sampler *s)
{
	if (!s)
		return;
	free(s->known);
	free(s->list);
	free(s->samples);
	free(s->lives);
	free(s->open);
	free(s->seen);
	free(s->map);
	free(s->pids);
	free(s);
}

/* Lists a /proc directory into s->list, growing it as needed. */
static int list_into(struct qr_sampler *s,
		     int (*fn)(pid_t, pid_t *, size_t, size_t *), pid_t pid,
		     size_t *n)
{
	for (;;) {
		int rc = fn(pid, s->list, s->caplist, n);
		if (rc != ERANGE)
			return rc;
		if (!grow((void **)&s->list, &s->caplist, *n + 64,
			  sizeof *s->list))
			return ENOMEM;
	}
}

static int list_pids(pid_t unused, pid_t *out, size_t cap, size_t *n)
{
	(void)unused;
	return qc_census_pids(out, cap, n);
}

static int list_fds(pid_t pid, pid_t *out, size_t cap, size_t *n)
{
	return qc_census_fds(pid, out, cap, n);
}

static struct known *find_known(struct known *k, size_t n, pid_t pid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (k[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && k[lo].pid == pid ? &k[lo] : NULL;
}

static void remember_pid(struct qr_sampler *s, pid_t pid)
{
	for (size_t i = 0; i < s->npids; i++)
		if (s->pids[i] == pid)
			return;
	if (grow((void **)&s->pids, &s->cappids, s->npids + 1, sizeof *s->pids))
		s->pids[s->npids++] = pid;
}

/* No process or thread was created since the last listing: re-reads the
 * tracked processes only, dropping those that are gone. */
static void reread_tracked(struct qr_sampler *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nknown; i++) {
		struct known e = s->known[i];
		qc_proc_info p;
		if (e.tracked) {
			if (qc_census_proc(e.pid, &p) != 0 ||
			    p.start_ticks != e.start)
				continue; /* gone (a reused pid is new) */
			e.state = p.state;
			e.ppid = p.ppid;
			e.pgid = p.pgid;
			e.threads = p.threads;
		}
		s->known[k++] = e;
	}
	s->nknown = k;
}

/*
 * Rebuilds `known` from a fresh /proc listing: re-reads tracked processes,
 * reads new ones, and classifies them. Listing /proc is the costly part of
 * a tick, so unless full it is skipped while /proc/loadavg says no pid was
 * allocated since the last one, and done at most every LIST_EVERY ticks
 * (a descendant is found within 5 intervals; one that lives shorter than
 * that may be missed, and is gone anyway).
 */
static int refresh_processes(struct qr_sampler *s, bool list, bool full)
{
	size_t n;
	pid_t last;
	bool have_last = qc_census_last_pid(&last) == 0;
	if (!list && !full && s->known &&
	    ((have_last && last == s->last_pid) ||
	     s->tick - s->listed_tick < LIST_EVERY)) {
		reread_tracked(s);
		return 0;
	}
	s->listed_tick = s->tick;
	int rc = list_into(s, list_pids, 0, &n);
	if (rc != 0)
		return rc;
	struct known *next = malloc((n ? n : 1) * sizeof *next);
	if (!next)
		return ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct known *old = find_known(s->known, s->nknown, s->list[i]);
		if (old && !old->tracked && !full) {
			next[k++] = *old; /* unrelated stays unrelated */
			continue;
		}
		qc_proc_info p;
		if (qc_census_proc(s->list[i], &p) != 0)
			continue; /* gone since the listing */
		struct known e = {.pid = p.pid,
				  .state = p.state,
				  .ppid = p.ppid,
				  .pgid = p.pgid,
				  .start = p.start_ticks,
				  .threads = p.threads,
				  .listed_threads = -1};
		/* Same pid and start time: the same process. */
		if (old && old->tracked && old->start == p.start_ticks) {
			e.tracked = true;
			e.listed_threads = old->listed_threads;
		} else {
			e.pending = true;
		}
		next[k++] = e;
	}
	/* Classify: the program, its group, our adopted orphans, and the
	 * children of anything tracked; repeat for chains of new ones. */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < k; i++) {
			struct known *e = &next[i];
			if (!e->pending)
				continue;
			struct known *parent = find_known(next, k, e->ppid);
			if (e->pid == s->main || e->pgid == s->main ||
			    e->ppid == s->self || (parent && parent->tracked)) {
				e->tracked = true;
				e->pending = false;
				remember_pid(s, e->pid);
				changed = true;
			}
		}
	}
	for (size_t i = 0; i < k; i++)
		next[i].pending = false;
	free(s->known);
	s->known = next;
	s->nknown = s->capknown = k;
	if (have_last)
		s->last_pid = last;
	return 0;
}

static size_t hash_tid(const struct qr_sampler *s, pid_t tid)
{
	return ((size_t)tid * 2654435761u) & (s->capmap - 1);
}

/* The open life of tid, or a new one; NULL past the cap. */
static struct qr_life *life_for(struct qr_sampler *s, pid_t pid, pid_t tid,
				qc_duration t)
{
	size_t h = hash_tid(s, tid);
	while (s->map[h]) {
		struct qr_life *l = &s->lives[s->map[h] - 1];
		if (l->tid == tid && !l->ended) {
			s->seen[s->map[h] - 1] = s->tick;
			l->last = t;
			return l;
		}
		if (l->tid == tid)
			break; /* a reused tid: start a new life here */
		h = (h + 1) & (s->capmap - 1);
	}
	if (s->nlives >= LIFE_CAP) {
		s->dropped++;
		return NULL;
	}
	if (!grow((void **)&s->lives, &s->caplives, s->nlives + 1,
		  sizeof *s->lives) ||
	    !grow((void **)&s->seen, &s->capseen, s->nlives + 1,
		  sizeof *s->seen) ||
	    !grow((void **)&s->open, &s->capopen, s->nopen + 1,
		  sizeof *s->open))
		return NULL;
	size_t idx = s->nlives++;
	struct qr_life *l = &s->lives[idx];
	memset(l, 0, sizeof *l);
	l->pid = pid;
	l->tid = tid;
	l->first = l->last = t;
	if (qc_census_thread_name(pid, tid, l->name) != 0)
		strcpy(l->name, "?");
	s->seen[idx] = s->tick;
	s->map[h] = (int)idx + 1;
	s->open[s->nopen++] = idx;
	return l;
}

/* Ends the lives not seen this tick, except in processes whose tasks were
 * not listed (their thread count did not change): those go on. */
static void close_lives(struct qr_sampler *s, qc_duration t)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nopen; i++) {
		size_t idx = s->open[i];
		struct qr_life *l = &s->lives[idx];
		const struct known *e;
		if (s->seen[idx] != s->tick &&
		    (e = find_known(s->known, s->nknown, l->pid)) != NULL &&
		    e->tracked && e->unlisted && alive(e)) {
			s->seen[idx] = s->tick;
			l->last = t;
		}
		if (s->seen[idx] == s->tick)
			s->open[k++] = idx;
		else
			l->ended = true;
	}
	s->nopen = k;
}

/* Records e's threads' lives. Listing /proc/<pid>/task costs two
 * getdents calls, so it is skipped while the thread count stays the same,
 * except on detail ticks (a thread may have replaced another). */
static void sample_threads(struct qr_sampler *s, struct known *e, qc_duration t,
			   bool detail)
{
	size_t n;
	e->unlisted = false;
	if (e->threads == 1 && e->state != 'Z') {
		life_for(s, e->pid, e->pid,
			 t); /* the only thread: the leader */
		e->listed_threads = 1;
		return;
	}
	if (!detail && e->threads == e->listed_threads) {
		e->unlisted = true;
		return;
	}
	if (list_into(s, qc_census_tids, e->pid, &n) != 0)
		return;
	for (size_t j = 0; j < n; j++)
		life_for(s, e->pid, s->list[j], t);
	e->listed_threads = e->threads;
}

/* Counts the program's fds, leaving out valgrind's at the top. */
static void count_fds(struct qr_sampler *s)
{
	size_t n;
	if (list_into(s, list_fds, s->main, &n) != 0)
		return;
	if (s->valgrind && s->vg_floor < 0 && n > 0 &&
	    qc_census_is_valgrind_fd_of(s->main, s->list[n - 1])) {
		size_t i = n - 1;
		while (i > 0 &&
		       qc_census_is_valgrind_fd_of(s->main, s->list[i - 1]))
			i--;
		s->vg_floor = s->list[i];
	}
	while (s->vg_floor >= 0 && n > 0 && s->list[n - 1] >= s->vg_floor)
		n--;
	s->fds = (long)n;
}

const struct qr_sample *qr_sampler_tick(struct qr_sampler *s, qc_duration t,
					bool detail)
{
	struct qr_sample smp = {.t = t};
	s->tick++;
	bool forced = detail; /* the caller needs an exact answer now */
	detail |= s->tick % DETAIL_EVERY == 1;
	if (refresh_processes(s, forced, s->tick % FULL_REFRESH == 0) != 0)
		return NULL;
	bool main_alive = false;
	for (size_t i = 0; i < s->nknown; i++) {
		struct known *e = &s->known[i];
		if (!e->tracked || !alive(e))
			continue;
		smp.procs++;
		smp.threads += (uint32_t)live_threads(e);
		main_alive |= e->pid == s->main;
		sample_threads(s, e, t, detail);
	}
	close_lives(s, t);
	if (main_alive && detail)
		count_fds(s);
	s->live = smp.procs;
	if (!grow((void **)&s->samples, &s->capsamples, s->nsamples + 1,
		  sizeof *s->samples))
		return NULL;
	s->samples[s->nsamples] = smp;
	return &s->samples[s->nsamples++];
}

size_t qr_sampler_live(const struct qr_sampler *s)
{
	return s->live;
}

long qr_sampler_fds(const struct qr_sampler *s)
{
	return s->fds;
}

static int snap_proc(struct qr_sampler *s, const struct known *e,
		     struct qr_snap_proc *sp)
{
	pid_t *tids;
	size_t n;
	memset(sp, 0, sizeof *sp);
	if (qc_census_proc(e->pid, &sp->info) != 0)
		return ESRCH;
	sp->is_main = e->pid == s->main;
	sp->in_group = sp->info.pgid == s->main;
	if (qc_census_tids_alloc(e->pid, &tids, &n) != 0)
		return 0; /* the process is listed with no threads */
	sp->threads = calloc(n ? n : 1, sizeof *sp->threads);
	if (!sp->threads) {
		qc_census_free(tids);
		return ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct qr_snap_thread *t = &sp->threads[sp->nthreads];
		if (qc_census_thread(e->pid, tids[i], &t->info) != 0)
			continue;
		qc_census_thread_describe(e->pid, &t->info, t->what,
					  sizeof t->what);
		sp->nthreads++;
	}
	qc_census_free(tids);
	return 0;
}

int qr_sampler_snapshot(struct qr_sampler *s, qc_duration t,
			struct qr_snapshot *out)
{
	memset(out, 0, sizeof *out);
	out->t = t;
	if (refresh_processes(s, true, false) != 0)
		return ENOMEM;
	out->procs = calloc(s->nknown ? s->nknown : 1, sizeof *out->procs);
	if (!out->procs)
		return ENOMEM;
	for (size_t i = 0; i < s->nknown; i++) {
		const struct known *e = &s->known[i];
		if (!e->tracked || !alive(e))
			continue;
		int rc = snap_proc(s, e, &out->procs[out->nprocs]);
		if (rc == ENOMEM) {
			qr_snapshot_free(out);
			return ENOMEM;
		}
		if (rc == 0)
			out->nprocs++;
	}
	return 0;
}

void qr_snapshot_free(struct qr_snapshot *snap)
{
	for (size_t i = 0; snap->procs && i < snap->nprocs; i++)
		free(snap->procs[i].threads);
	free(snap->procs);
	snap->procs = NULL;
	snap->nprocs = 0;
}

size_t qr_sampler_kill(struct qr_sampler *s, int sig)
{
	size_t sent = kill(-s->main, sig) == 0;
	refresh_processes(s, true, false);
	for (size_t i = 0; i < s->nknown; i++) {
		const struct known *e = &s->known[i];
		if (e->tracked && alive(e) && kill(e->pid, sig) == 0)
			sent++;
	}
	return sent;
}

const struct qr_sample *qr_sampler_samples(const struct qr_sampler *s,
					   size_t *n)
{
	*n = s->nsamples;
	return s->samples;
}

const struct qr_life *qr_sampler_lives(const struct qr_sampler *s, size_t *n,
				       size_t *dropped)
{
	*n = s->nlives;
	*dropped = s->dropped;
	return s->lives;
}

const pid_t *qr_sampler_pids(const struct qr_sampler *s, size_t *n)
{
	*n = s->npids;
	return s->pids;
}
