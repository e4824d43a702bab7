/*
 * leaks.c: qc_h_check_leaks: what a test left behind since qc_h_new.
 *
 * Findings, each named so a reader can find its cause: contexts with user
 * references never released (name and creation site: the lost cancel),
 * threads still running, threads exited but never joined or detached, new
 * threads the census sees that no pthread_create made, armed timers, new
 * file descriptors (what they are), child processes and zombies, heap bytes
 * lost (valgrind or LeakSanitizer), and contexts a bubble thread derived
 * from qc_background() or from a context of no harness (the wrong parent).
 *
 * Baselines (threads, fds, children, heap) are taken at qc_h_new; quiesce's
 * own threads and the fds its reports opened are left out. Everything slow
 * runs without the harness lock; the snapshot and the registry walk are
 * copies.
 *
 * Lock order: harness lock -> clock lock (only for copying).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

#include <quiesce/census.h>

#include "futex.h"
#include "harness_impl.h"

/* One live context, copied under its clock lock. */
typedef struct live_ctx {
	const qc_ctx *ctx;
	char name[64];
	const qc_site *site;
	unsigned urefs;
	int err;
	bool timer; /* its deadline timer is armed */
	qc_time deadline;
	int done_fd;
} live_ctx;

typedef struct ctx_walk {
	qc_h *h;
	live_ctx *v;
	size_t n, cap;
	bool oom;
} ctx_walk;

static bool in_list(const void *const *a, size_t n, const void *p)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == p)
			return true;
	return false;
}

static bool in_ints(const int *a, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == v)
			return true;
	return false;
}

/* Runs under the clock lock: plain copies only. */
static void ctx_cb(qc_ctx *ctx, void *arg)
{
	ctx_walk *w = arg;
	if (ctx == w->h->ctx || in_list((const void *const *)w->h->base_ctxs,
					w->h->nbase_ctxs, ctx))
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		live_ctx *v = qc__realloc(w->v, cap * sizeof *v);
		if (!v) {
			w->oom = true;
			return;
		}
		w->v = v;
		w->cap = cap;
	}
	live_ctx *l = &w->v[w->n++];
	memset(l, 0, sizeof *l);
	l->ctx = ctx;
	l->done_fd = -1;
	l->site = ctx->site;
	l->urefs = atomic_load(&ctx->urefs);
	l->err = atomic_load(&ctx->err);
	if (ctx->ext) {
		if (ctx->ext->name)
			snprintf(l->name, sizeof l->name, "%s", ctx->ext->name);
		l->timer = (atomic_load(&ctx->flags) & QC_F_TIMER) &&
			   ctx->ext->timer.idx != SIZE_MAX;
		l->deadline = ctx->ext->deadline;
		l->done_fd = ctx->ext->done_fd;
	}
}

static void site_str(const qc_site *s, char *buf, size_t n)
{
	if (s)
		snprintf(buf, n, "%s:%d in %s()", qc__h_base(s->file), s->line,
			 s->func);
	else
		snprintf(buf, n, "an unknown site");
}

/* ------------------------------------------------------------ threads */

/* Threads no pthread_create made that appeared since the baseline, and
 * are not quiesce's own. Lists them; returns how many. */
static size_t unexplained_threads(qc_h *h, const qc__tsnap *s, size_t n,
				  qc__buf *out, size_t *before, size_t *now,
				  int *fail)
{
	pid_t known[64];
	size_t nknown = 0;
	qc__h_lock();
	for (qc__thr *r = qc__g_threads; r && nknown < 64; r = r->next)
		if (!atomic_load_explicit(&r->h, memory_order_relaxed))
			known[nknown++] = atomic_load(&r->tid);
	qc__h_unlock();
	qc_clock *real = qc_clock_real();
	pid_t timer_tid = 0;
	qc__clock_lock(real);
	if (real->thread_started) {
		clockid_t cid;
		if (pthread_getcpuclockid(real->thread, &cid) == 0)
			timer_tid = (pid_t) ~(cid >> 3);
	}
	qc__clock_unlock(real);

	size_t found = 0;
	/* A thread just joined may linger in /proc for a moment: look
	 * again a few times before blaming anything. */
	for (int attempt = 0; attempt < 5; attempt++) {
		pid_t *tids = NULL;
		size_t nt = 0;
		int ce = qc_census_tids_alloc(0, &tids, &nt);
		if (ce != 0) {
			if (!*fail)
				*fail = ce;
			return 0;
		}
		*before = h->nbase_tids;
		*now = nt;
		found = 0;
		qc__buf tmp = QC_BUF_INIT;
		for (size_t i = 0; i < nt; i++) {
			pid_t t = tids[i];
			bool ok = t == timer_tid ||
				  in_ints(h->base_tids, h->nbase_tids, t) ||
				  in_ints(known, nknown, t);
			for (size_t j = 0; j < n && !ok; j++)
				ok = s[j].tid == t;
			qc_thread_info info;
			if (ok || qc_census_thread(0, t, &info) != 0 ||
			    info.state == 'Z' || info.state == 'X')
				continue;
			if (found++ < QC_REPORT_BRIEF)
				qc__buf_printf(&tmp,
					       "  thread %d \"%s\" appeared "
					       "since qc_h_new but no "
					       "pthread_create made it "
					       "(thrd_create? a library's own "
					       "thread?)\n",
					       (int)t, info.name);
		}
		if (found > QC_REPORT_BRIEF)
			qc__buf_printf(&tmp,
				       "  ... and %zu more threads no "
				       "pthread_create made\n",
				       found - QC_REPORT_BRIEF);
		qc_census_free(tids);
		if (found == 0 || attempt == 4) {
			qc__buf_puts(out, qc__buf_str(&tmp));
			if (tmp.truncated)
				out->truncated = true;
			qc__buf_free(&tmp);
			break;
		}
		qc__buf_free(&tmp);
		uint32_t zero = 0; /* a real 10 ms nap nothing interposes */
		(void)qc__futex_wait(&zero, 0, 10 * QC_MILLISECOND);
	}
	return found;
}

static size_t check_threads(qc_h *h, qc__buf *out, int *fail)
{
	qc__tsnap *s = NULL;
	size_t n = 0, findings = 0;
	qc__h_lock();
	int e = qc__h_snapshot_locked(h, false, false, &s, &n);
	qc__h_unlock();
	if (e) {
		if (!*fail)
			*fail = e;
		return 0;
	}
	size_t shown = 0, unshown = 0;
	for (size_t i = 0; i < n; i++) {
		qc__tsnap *t = &s[i];
		bool running = !t->exited;
		if (t->ignored || (!running && (t->joined || t->detached)))
			continue;
		findings++;
		const char *what = running ? "still running"
					   : "exited but never joined or "
					     "detached (its stack is leaked)";
		if (shown >= QC_REPORT_FULL + QC_REPORT_BRIEF) {
			unshown++;
			continue;
		}
		if (shown++ >= QC_REPORT_FULL) {
			qc__buf_printf(out, "  %s: thread %d%s%s%s\n", what,
				       (int)t->tid, t->name ? " \"" : "",
				       t->name ? t->name : "",
				       t->name ? "\"" : "");
			continue;
		}
		qc__buf_printf(out, "  %s: ", what);
		qc__h_describe_thread(h, t, out);
		if (running)
			qc__h_describe_ctx(h, t, out);
	}
	if (unshown)
		qc__buf_printf(out,
			       "  ... and %zu more threads like these "
			       "(qc_h_write_json lists every thread)\n",
			       unshown);
	size_t before = 0, now = 0;
	findings += unexplained_threads(h, s, n, out, &before, &now, fail);
	if (findings > 0 && now > before)
		qc__buf_printf(out,
			       "  threads: +%zu since the baseline "
			       "(/proc/self/task: %zu -> %zu)\n",
			       now - before, before, now);
	qc__h_snapshot_free(s, n);
	return findings;
}

/* ----------------------------------------------------------------- fds */

static size_t check_fds(qc_h *h, const ctx_walk *w, qc__buf *out, int *fail)
{
	int *fds;
	size_t n, findings = 0;
	int e = qc__h_list_fds(&fds, &n);
	if (e != 0) {
		if (!*fail)
			*fail = e;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		int fd = fds[i];
		if (in_ints(h->base_fds, h->nbase_fds, fd) ||
		    in_ints(h->own_fds, h->nown_fds, fd) ||
		    qc_census_is_valgrind_fd(fd))
			continue;
		char what[256];
		if (qc_fd_describe(0, fd, what, sizeof what) != 0)
			continue; /* closed meanwhile */
		findings++;
		qc__buf_printf(out, "  fd %d: %s still open", fd, what);
		for (size_t j = 0; j < w->n; j++)
			if (w->v[j].done_fd == fd) {
				qc__buf_printf(out,
					       " (the done fd of context "
					       "\"%s\", leaked with it)",
					       w->v[j].name[0] ? w->v[j].name
							       : "(unnamed)");
				break;
			}
		qc__buf_puts(out, "\n");
	}
	/* A live context's done fd that is gone, or is something else now:
	 * the code under test closed it (close every fd, close_range). */
	for (size_t j = 0; j < w->n; j++) {
		int dfd = w->v[j].done_fd;
		if (dfd < 0)
			continue;
		char what[256];
		bool open = in_ints(fds, n, dfd);
		if (open && qc_fd_describe(0, dfd, what, sizeof what) == 0 &&
		    strstr(what, "eventfd"))
			continue;
		findings++;
		qc__buf_printf(out,
			       "  fd %d: the done fd of context \"%s\" was "
			       "closed by someone else%s; it must stay open "
			       "until the context's final release\n",
			       dfd,
			       w->v[j].name[0] ? w->v[j].name : "(unnamed)",
			       open ? " (the number is in use again)" : "");
	}
	qc_census_free(fds);
	return findings;
}

/* ----------------------------------------------------------- children */

static size_t check_children(qc_h *h, qc__buf *out, int *fail)
{
	size_t cap = 64, n = 0, findings = 0;
	pid_t *kids = NULL;
	for (;;) {
		kids = qc__malloc(cap * sizeof *kids);
		if (!kids) {
			if (!*fail)
				*fail = ENOMEM;
			return 0;
		}
		int e = qc_census_children(0, kids, cap, &n);
		if (e == 0)
			break;
		qc__free(kids);
		if (e != ERANGE) {
			if (!*fail)
				*fail = e;
			return 0;
		}
		cap = n + 16;
	}
	for (size_t i = 0; i < n; i++) {
		if (in_ints(h->base_children, h->nbase_children, kids[i]))
			continue;
		qc_proc_info p;
		if (qc_census_proc(kids[i], &p) != 0)
			continue;
		findings++;
		if (p.state == 'Z')
			qc__buf_printf(out,
				       "  child process %d \"%s\" is a zombie "
				       "(exited, never waited for)\n",
				       (int)p.pid, p.name);
		else
			qc__buf_printf(
			    out,
			    "  child process %d \"%s\" still running "
			    "(state %c)\n",
			    (int)p.pid, p.name, p.state);
	}
	qc__free(kids);
	return findings;
}

/* --------------------------------------------------------------- main */

int qc_h_check_leaks(qc_h *h)
{
	if (!h) {
		errno = EINVAL;
		return -1;
	}
	qc__h_reap_spawned(h);
	qc__h_resolve_ignores(h);
	qc__buf body = QC_BUF_INIT;
	size_t findings = 0;
	/* The first error that left a check undone: a leak check that could
	 * not look must never pass as one that found nothing. */
	int fail = 0;

	/* fds first: describing threads below may open symbol files. */
	ctx_walk w = {.h = h};
	qc__clock_foreach_live(h->clock, ctx_cb, &w);
	if (w.oom)
		fail = ENOMEM;
	qc__buf fdtext = QC_BUF_INIT;
	size_t nfd = check_fds(h, &w, &fdtext, &fail);
	qc__fdsnap fds_before;
	qc__h_fds_snap(&fds_before);

	char site[256], off[48];
	size_t ctimers = 0;
	for (size_t i = 0; i < w.n; i++) {
		live_ctx *l = &w.v[i];
		site_str(l->site, site, sizeof site);
		findings++;
		qc__buf_printf(&body,
			       "  context %s%s%s created at %s: %u user "
			       "reference%s never released (%s)\n",
			       l->name[0] ? "\"" : "",
			       l->name[0] ? l->name : "(unnamed)",
			       l->name[0] ? "\"" : "", site, l->urefs,
			       l->urefs == 1 ? "" : "s",
			       l->err ? "a lost release" : "a lost cancel");
		if (l->timer) {
			ctimers++;
			qc__buf_printf(
			    &body,
			    "  timer at %s for context %s%s%s still "
			    "armed\n",
			    qc__h_offset(h, l->deadline, off, sizeof off),
			    l->name[0] ? "\"" : "",
			    l->name[0] ? l->name : "(unnamed)",
			    l->name[0] ? "\"" : "");
		}
	}
	if (w.oom)
		qc__buf_puts(&body,
			     "  (more contexts: no memory to list them)\n");
	if (qc_clock_is_virtual(h->clock)) {
		size_t nt = qc_clock_timers(h->clock);
		qc_time next;
		if (nt > ctimers && qc_clock_next_timer(h->clock, &next) == 0) {
			findings++;
			qc__buf_printf(&body,
				       "  timers: %zu armed on the harness "
				       "clock (next at %s)\n",
				       nt,
				       qc__h_offset(h, next, off, sizeof off));
		}
	}

	findings += check_threads(h, &body, &fail);
	findings += nfd;
	qc__buf_puts(&body, qc__buf_str(&fdtext));
	if (fdtext.truncated)
		body.truncated = true;
	qc__buf_free(&fdtext);
	findings += check_children(h, &body, &fail);

	qc__h_lock();
	size_t nwrong = h->nwrong, total = h->nwrong_total;
	qc__wrong wrong[QC_MAX_WRONG];
	memcpy(wrong, h->wrong, nwrong * sizeof *wrong);
	qc__h_unlock();
	for (size_t i = 0; i < nwrong; i++) {
		site_str(wrong[i].site, site, sizeof site);
		findings++;
		qc__buf_printf(&body,
			       "  wrong parent: the context created at %s (by "
			       "%s) derives from %s, so cancelling the test's "
			       "contexts never reaches it\n",
			       site, wrong[i].thread, wrong[i].parent);
	}
	if (total > nwrong) {
		findings += total - nwrong;
		qc__buf_printf(&body, "  (%zu more wrong-parent derivations)\n",
			       total - nwrong);
	}

	if (h->heap) {
		size_t bytes = 0, blocks = 0;
		qc__buf details = QC_BUF_INIT;
		bool sure = true;
		int he = qc__heap_delta(h->heap, &bytes, &blocks, &details);
		if (he == 0 && bytes > 0 && RUNNING_ON_VALGRIND) {
			/* Only "possibly lost" grew: under valgrind that is
			 * glibc's cache of exited threads' stacks, whose TLS
			 * vectors are held by interior pointers (freed at
			 * exit by __libc_freeres), not the test's leak. */
			unsigned long lk = 0, dub = 0, rch = 0, sup = 0;
			VALGRIND_COUNT_LEAKS(lk, dub, rch, sup);
			(void)dub;
			(void)rch;
			(void)sup;
			sure = lk > h->vg_sure;
		}
		if (he == 0 && bytes > 0 && sure) {
			findings++;
			qc__buf_printf(&body,
				       "  heap: %zu bytes in %zu blocks lost "
				       "since qc_h_new\n",
				       bytes, blocks);
			qc__buf_puts(&body, qc__buf_str(&details));
			if (details.truncated)
				body.truncated = true;
		}
		qc__buf_free(&details);
	}
	qc__free(w.v);
	if (!fail && body.truncated)
		fail = ENOMEM; /* findings without their description */

	if (fail) {
		qc__buf_reset(&h->report);
		qc__buf_printf(&h->report,
			       "quiesce: leaks (qc_h_check_leaks): the check "
			       "could not be completed (%s); %zu finding%s "
			       "before it stopped\n",
			       strerror(fail), findings,
			       findings == 1 ? "" : "s");
		qc__buf_free(&body);
		qc__h_note_own_fds(h, &fds_before);
		errno = fail;
		return -1;
	}
	if (findings > 0) {
		qc__buf_reset(&h->report);
		qc__buf_printf(&h->report,
			       "quiesce: leaks (qc_h_check_leaks): %zu "
			       "finding%s\n",
			       findings, findings == 1 ? "" : "s");
		qc__buf_puts(&h->report, qc__buf_str(&body));
		if (w.n > 0)
			qc__buf_puts(&h->report,
				     "  hint: cancel and release every context "
				     "on every path (QC_DEFER)\n");
	}
	qc__buf_free(&body);
	qc__h_note_own_fds(h, &fds_before);
	return findings > (size_t)INT32_MAX ? INT32_MAX : (int)findings;
}
