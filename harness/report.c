/*
 * report.c: what a harness says when a test fails: the qc_h_expect_quiet
 * report (one block per surviving thread: who, made where and by whom, in
 * what state, with which context, its stack, a hint), and the thread
 * snapshots and descriptions qc_h_check_leaks shares (trace.c has the
 * event trace and qc_h_write_json).
 *
 * Reports are built in two steps: a snapshot of the thread records under
 * the harness lock (names copied, contexts held), then everything slow
 * without it: /proc reads, stack captures (only once the verdict is final:
 * the capture signal can interrupt a system call), symbolization. The words
 * of the report are stable: tests and users grep for them.
 *
 * Invariants: a snapshot's contexts stay valid until qc__h_snapshot_free;
 * h->report is touched only by the test thread's calls.
 * Lock order: harness lock -> clock lock; no lock while describing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include <quiesce/census.h>

#include "harness_impl.h"
#include "stack.h"

/* ------------------------------------------------------------- times */

char *qc__h_offset(const qc_h *h, qc_time t, char *buf, size_t n)
{
	if (t == QC_TIME_NEVER) {
		snprintf(buf, n, "never");
		return buf;
	}
	char d[40]; /* the longest duration is 27 bytes */
	qc_duration_format(t - h->start, d, sizeof d);
	snprintf(buf, n, "%s%s", t >= h->start ? "+" : "", d);
	return buf;
}

const char *qc__h_base(const char *path)
{
	const char *b = path ? strrchr(path, '/') : NULL;
	return b ? b + 1 : path ? path : "?";
}

static char *dur(qc_duration d, char *buf, size_t n)
{
	return qc_duration_format(d, buf, n);
}

/* ----------------------------------------------------------- snapshots */

static char *dup_or_null(const char *s)
{
	return s ? qc__strdup(s) : NULL;
}

int qc__h_snapshot_locked(qc_h *h, bool alive_only, bool with_leftover,
			  qc__tsnap **out, size_t *n)
{
	size_t count = 0;
	for (qc__thr *r = qc__g_threads; r; r = r->next) {
		qc_h *rh = atomic_load_explicit(&r->h, memory_order_relaxed);
		if (r->is_test || (alive_only && r->exited) ||
		    (rh != h && !(with_leftover && !rh)))
			continue;
		count++;
	}
	qc__tsnap *s = count ? qc__calloc(count, sizeof *s) : NULL;
	if (count && !s)
		return ENOMEM;
	size_t i = 0;
	for (qc__thr *r = qc__g_threads; r && i < count; r = r->next) {
		qc_h *rh = atomic_load_explicit(&r->h, memory_order_relaxed);
		if (r->is_test || (alive_only && r->exited) ||
		    (rh != h && !(with_leftover && !rh)))
			continue;
		qc__tsnap *t = &s[i++];
		t->tid = atomic_load(&r->tid);
		t->name = dup_or_null(r->name);
		t->routine = r->routine;
		memcpy(t->frames, r->frames, sizeof t->frames);
		t->nframes = r->nframes;
		t->skip = r->skip;
		t->creator_tid = r->creator_tid;
		t->creator_name = dup_or_null(r->creator_name);
		t->creator_is_test = r->creator_is_test;
		t->creator_tracked = r->creator_tracked;
		t->ctx = r->ctx;
		t->inherited = r->inherited;
		qc__ctx_ref(t->ctx);
		qc__ctx_ref(t->inherited);
		t->exited = r->exited;
		t->joined = r->joined;
		t->detached = r->detached;
		t->spawned = r->spawned;
		t->ignored = r->ignored;
		t->leftover = !rh;
		t->parked = qc__thr_parked_locked(r);
		if (r->park) {
			t->park_what = r->park->what;
			t->park_until = r->park->until;
			/* The waiter holds it until its park ends, which
			 * takes the harness lock we hold. */
			t->park_ctx = (qc_ctx *)r->park->ctx;
			qc__ctx_ref(t->park_ctx);
		}
		if (r->foreign) {
			t->foreign_what = r->foreign->what;
			t->foreign_real = r->foreign->clock == qc_clock_real();
		}
		t->created_real = r->created_real;
		t->exited_real = r->exited_real;
	}
	*out = s;
	*n = i;
	return 0;
}

void qc__h_snapshot_free(qc__tsnap *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		qc__free(s[i].name);
		qc__free(s[i].creator_name);
		qc__ctx_unref(s[i].ctx);
		qc__ctx_unref(s[i].inherited);
		qc__ctx_unref(s[i].park_ctx);
	}
	qc__free(s);
}

/* ------------------------------------------------------ describing */

/* The OS name of thread tid, or "" when it is gone. */
static void comm_of(pid_t tid, char name[16])
{
	qc_thread_info info;
	name[0] = '\0';
	if (tid > 0 && qc_census_thread(0, tid, &info) == 0)
		memcpy(name, info.name, 16);
	/* Under valgrind an unnamed thread bears the tool's launcher name
	 * ("memcheck-amd64-"); without it, it would bear the program's. */
	if (RUNNING_ON_VALGRIND && strstr(name, "-amd64-"))
		snprintf(name, 16, "%s", program_invocation_short_name);
}

/* Splits qc__symbolize_fn's "name (file.c:41)" into its parts. */
static bool split_sym(const char *sym, char *fn, size_t nfn, char *loc,
		      size_t nloc)
{
	const char *open = strrchr(sym, '(');
	size_t len = strlen(sym);
	if (!open || open == sym || len < 2 || sym[len - 1] != ')')
		return false;
	size_t fl = (size_t)(open - sym);
	while (fl > 0 && sym[fl - 1] == ' ')
		fl--;
	snprintf(fn, nfn, "%.*s", (int)fl, sym);
	snprintf(loc, nloc, "%.*s", (int)(len - 1 - (size_t)(open - sym) - 1),
		 open + 1);
	return true;
}

/* The creation site: the first frame of the creator's stack outside
 * quiesce and the sanitizer runtimes. skip counts quiesce's own frames
 * (needed for a static link, where they look like the program's), after
 * any a sanitizer's backtrace interceptor put first. */
static void creation_site(const qc__tsnap *s, qc__buf *out)
{
	int i = 0;
	while (i < s->nframes && qc__h_frame_sanitizer(s->frames[i]))
		i++;
	i += s->skip;
	while (i < s->nframes && qc__h_frame_internal(s->frames[i]))
		i++;
	if (i >= s->nframes) {
		qc__buf_puts(out, "created at an unknown site");
		return;
	}
	char sym[512], fn[256], loc[256];
	qc__symbolize_fn((const char *)s->frames[i] - 1, sym, sizeof sym);
	if (split_sym(sym, fn, sizeof fn, loc, sizeof loc) && strchr(loc, ':'))
		qc__buf_printf(out, "created at %s in %s()", loc, fn);
	else if (split_sym(sym, fn, sizeof fn, loc, sizeof loc))
		qc__buf_printf(out, "created in %s() (%s)", fn, loc);
	else
		qc__buf_printf(out, "created at %s", sym);
}

static void creator(const qc__tsnap *s, qc__buf *out)
{
	char comm[16];
	comm_of(s->creator_tid, comm);
	if (s->creator_is_test) {
		qc__buf_printf(out, "by thread \"%s\" (the test thread)",
			       comm[0] ? comm : "test");
	} else if (s->creator_tracked) {
		const char *n = s->creator_name ? s->creator_name : comm;
		if (*n)
			qc__buf_printf(out, "by thread \"%s\"", n);
		else
			qc__buf_printf(out, "by thread %d (exited)",
				       (int)s->creator_tid);
	} else {
		qc__buf_printf(out, "by thread \"%s\" (tid %d, not tracked)",
			       comm[0] ? comm : "?", (int)s->creator_tid);
	}
}

void qc__h_describe_thread(const qc_h *h, const qc__tsnap *s, qc__buf *out)
{
	(void)h;
	char comm[16];
	comm_of(s->tid, comm);
	if (s->name || comm[0])
		qc__buf_printf(out, "thread %d \"%s\"", (int)s->tid,
			       s->name ? s->name : comm);
	else
		qc__buf_printf(out, "thread %d (%s)", (int)s->tid,
			       s->exited ? "exited" : "gone");
	if (!s->name && comm[0]) {
		/* A new thread inherits its creator's OS name. */
		char cc[16];
		comm_of(s->creator_tid, cc);
		const char *cn = s->creator_name ? s->creator_name : cc;
		bool same = strncmp(cn, comm, 15) == 0;
		qc__buf_puts(out, same
				      ? " (OS name, inherited from its creator)"
				      : " (OS name)");
	}
	if (s->routine) {
		char sym[512];
		qc__symbolize_fn(s->routine, sym, sizeof sym);
		qc__buf_printf(out, "  start routine %s", sym);
	}
	qc__buf_puts(out, "\n  ");
	creation_site(s, out);
	qc__buf_puts(out, ", ");
	creator(s, out);
	qc__buf_puts(out, "\n");
}

/* One context: "\"name\" (kind, created at f.c:12 in fn()) — state". */
static void ctx_line(const qc_h *h, const qc_ctx *c, qc__buf *out)
{
	const char *name = qc_ctx_name(c);
	const qc_site *site = qc_ctx_site(c);
	char when[64] = "", off[48];
	qc_time dl;
	bool has_dl = qc_deadline(c, &dl);
	if (has_dl && c->clock == h->clock)
		snprintf(when, sizeof when, ", deadline at %s",
			 qc__h_offset(h, dl, off, sizeof off));
	if (name) {
		qc__buf_printf(out, "\"%s\" ", name);
	} else {
		/* Parents live as long as their children do. */
		const qc_ctx *a = c->parent;
		int up = 1;
		while (a && !qc_ctx_name(a)) {
			a = a->parent;
			up++;
		}
		if (a)
			qc__buf_printf(out, "(unnamed %s of \"%s\") ",
				       up == 1 ? "child" : "descendant",
				       qc_ctx_name(a));
		else
			qc__buf_puts(out, "(unnamed) ");
	}
	qc__buf_printf(out, "(%s%s", qc__ctx_kind_name(c), when);
	if (site)
		qc__buf_printf(out, ", created at %s:%d in %s()",
			       qc__h_base(site->file), site->line, site->func);
	qc__buf_puts(out, ") \xe2\x80\x94 ");
	int err = qc_err(c);
	if (!err) {
		unsigned urefs = atomic_load(&((qc_ctx *)c)->urefs);
		if (!qc__can_be_done(c))
			qc__buf_puts(out,
				     "never done (it cannot be cancelled)");
		else if (urefs > 0)
			qc__buf_printf(out,
				       "not done: NEVER CANCELLED (%u user "
				       "reference%s still held)",
				       urefs, urefs == 1 ? "" : "s");
		else
			qc__buf_puts(out, "not done: never cancelled, and no "
					  "user reference is left to cancel "
					  "it");
		if (has_dl && c->clock == h->clock && dl > qc_now(h->clock))
			qc__buf_printf(out,
				       " (its deadline at %s was never "
				       "reached)",
				       off);
		return;
	}
	int cause = qc_cause(c);
	qc__buf_puts(out, err == ECANCELED ? "ECANCELED" : "ETIMEDOUT");
	if (cause != err)
		qc__buf_printf(out, " (cause %d: %s)", cause, strerror(cause));
	if (err == ECANCELED && h->cancelled && c->clock == h->clock) {
		char at[48], ago[48], real[48];
		qc__buf_printf(
		    out, ", cancelled at %s by qc_h_cancel, %s ago (%s real)",
		    qc__h_offset(h, h->cancel_time, at, sizeof at),
		    dur(qc_now(h->clock) - h->cancel_time, ago, sizeof ago),
		    dur(qc__now_raw() - h->cancel_real, real, sizeof real));
	}
	qc__buf_puts(out, ": the thread did not stop");
}

void qc__h_describe_ctx(const qc_h *h, const qc__tsnap *s, qc__buf *out)
{
	if (s->ctx) {
		qc__buf_puts(out, "  context: ");
		ctx_line(h, s->ctx, out);
	} else if (s->inherited) {
		char comm[16];
		comm_of(s->creator_tid, comm);
		const char *cn = s->creator_name ? s->creator_name
				 : comm[0]	 ? comm
						 : "?";
		qc__buf_printf(out,
			       "  context: none given; its creator \"%s\" ran "
			       "with ",
			       cn);
		ctx_line(h, s->inherited, out);
	} else {
		qc__buf_puts(out, "  context: none (neither it nor its creator "
				  "was given one)");
	}
	qc__buf_puts(out, "\n");
}

/* "state: ..." from the park record or /proc; *kind: 'p' parked, 'r'
 * running, 'f' fd call, 'x' futex, 's' sleep, 'o' other, 'g' gone. */
static void thread_state(const qc_h *h, const qc__tsnap *s, qc__buf *out,
			 char *kind, char *call, size_t ncall)
{
	char buf[512];
	call[0] = '\0';
	if (s->parked && s->park_what) {
		*kind = 'p';
		snprintf(call, ncall, "%s", s->park_what);
		if (s->park_until != QC_TIME_NEVER) {
			char off[48];
			qc__buf_printf(
			    out, "  state: parked in %s until %s\n",
			    s->park_what,
			    qc__h_offset(h, s->park_until, off, sizeof off));
		} else if (!s->park_ctx) {
			qc__buf_printf(out,
				       "  state: parked in %s (no deadline)\n",
				       s->park_what);
		} else if (s->park_ctx == (s->ctx ? s->ctx : s->inherited)) {
			qc__buf_printf(out,
				       "  state: parked in %s until its "
				       "context is done\n",
				       s->park_what);
		} else {
			/* Another context: say which, and whether it can
			 * ever end the wait. */
			qc__buf_printf(out, "  state: parked in %s on context ",
				       s->park_what);
			ctx_line(h, s->park_ctx, out);
			qc__buf_puts(out, "\n");
		}
		return;
	}
	if (s->foreign_what) {
		*kind = 'w';
		snprintf(call, ncall, "%s", s->foreign_what);
		qc__buf_printf(out,
			       "  state: waiting in %s on a context of %s (not "
			       "parked: the harness's virtual time and "
			       "cancellation cannot end it)\n",
			       s->foreign_what,
			       s->foreign_real ? "the real clock"
					       : "a clock no harness owns");
		return;
	}
	qc_thread_info info;
	if (s->tid <= 0 || qc_census_thread(0, s->tid, &info) != 0) {
		*kind = 'g';
		qc__buf_puts(out, "  state: gone (it exited while the report "
				  "was being written)\n");
		return;
	}
	qc_census_thread_describe(0, &info, buf, sizeof buf);
	const char *nm =
	    info.syscall >= 0 ? qc_syscall_name(info.syscall) : NULL;
	if (nm)
		snprintf(call, ncall, "%s", nm);
	if (strncmp(buf, "running", 7) == 0 ||
	    (RUNNING_ON_VALGRIND && strstr(buf, "valgrind"))) {
		/* Under valgrind a thread waiting for its scheduler looks
		 * blocked in read on valgrind's own pipe: it runs. */
		*kind = 'r';
		qc__buf_puts(out, "  state: running\n");
		return;
	}
	if (nm && (strcmp(nm, "futex") == 0))
		*kind = 'x';
	else if (nm && (strstr(nm, "sleep") || strcmp(nm, "pause") == 0))
		*kind = 's';
	else if (info.syscall >= 0 && (qc_syscall_takes_fd(info.syscall) ||
				       strstr(nm ? nm : "", "poll") ||
				       strstr(nm ? nm : "", "select")))
		*kind = 'f';
	else
		*kind = 'o';
	qc__buf_printf(out, "  state: %s\n", buf);
}

static void hint(const qc__tsnap *s, char kind, const char *call,
		 enum qc__why why, qc__buf *out)
{
	switch (kind) {
	case 'f':
		qc__buf_printf(
		    out,
		    "  hint: a thread blocked in %s() cannot see its "
		    "context; use qc_read/qc_write(ctx, ...), or "
		    "qc_poll with the context's done fd "
		    "(qc_done_fd)\n",
		    call[0] ? call : "a system call");
		break;
	case 'x':
		if (strcmp(call, "futex") != 0)
			qc__buf_printf(out,
				       "  hint: %s() cannot see a context; use "
				       "qc_cond_wait(ctx, ...) or a qc_chan, "
				       "and cancel the context\n",
				       call);
		else
			qc__buf_puts(out,
				     "  hint: a plain pthread_cond_wait, "
				     "pthread_mutex_lock, pthread_join or "
				     "sem_wait cannot see a context; use "
				     "qc_cond_wait(ctx, ...) or a qc_chan, and "
				     "cancel the context\n");
		break;
	case 's':
		qc__buf_puts(out, "  hint: a sleep outside quiesce cannot see "
				  "its context; use qc_sleep(ctx, d)\n");
		break;
	case 'r':
		qc__buf_puts(out, "  hint: the thread is running (spinning?): "
				  "a loop must check qc_err(ctx), or wait "
				  "through a quiesce call that takes the "
				  "context\n");
		break;
	case 'w':
		qc__buf_printf(
		    out,
		    "  hint: its %s waits on a context that does not "
		    "derive from the harness's (the wrong parent: "
		    "qc_background() or another clock); derive it "
		    "from the context the thread was given\n",
		    call);
		break;
	case 'p':
		if (s->park_ctx && !qc__can_be_done(s->park_ctx) &&
		    s->park_until == QC_TIME_NEVER) {
			qc__buf_printf(out,
				       "  hint: its %s waits on a context that "
				       "can never be done (a root, or one "
				       "derived without cancel): pass it the "
				       "context the thread was given (or a "
				       "child of it)\n",
				       call);
			break;
		}
		if (why == QC_WHY_DEADLOCK) {
			qc__buf_printf(
			    out,
			    "  hint: nothing can end its %s: no timer "
			    "is pending and no other thread runs; "
			    "cancel the context it waits on, or "
			    "signal what it waits for\n",
			    call);
			break;
		}
		qc__buf_printf(out,
			       "  hint: its %s outlives the bound: pass it the "
			       "cancelled context (or a child of it), so that "
			       "cancellation ends the wait\n",
			       call);
		break;
	default:
		break;
	}
	const qc_ctx *c = s->ctx ? s->ctx : s->inherited;
	if (c && !qc_err(c) && qc__can_be_done(c) &&
	    atomic_load(&((qc_ctx *)c)->urefs) > 0) {
		const char *n = qc_ctx_name(c);
		qc__buf_printf(out,
			       "  hint: cancel %s%s%s and release it on every "
			       "path (QC_DEFER)\n",
			       n ? "\"" : "", n ? n : "its context",
			       n ? "\"" : "");
	}
}

/* Captures thread tid's stack into frames (QC_STACK_MAX); returns the
 * count, 0 when stacks are off, -1 when the capture failed. */
static int capture(const qc_h *h, pid_t tid, void **frames)
{
	if (!h->stacks_ok || tid <= 0)
		return 0;
	int n = qc__stack_capture(tid, frames, QC_STACK_MAX,
				  200 * QC_MILLISECOND * h->multiplier);
	return n > 0 ? n : -1;
}

static void stack_lines(void *const *frames, int n, qc__buf *out)
{
	if (n < 0) {
		qc__buf_puts(out, "  stack: unavailable (the thread blocks the "
				  "capture signal, or did not answer)\n");
	} else if (n > 0) {
		qc__buf_puts(out, "  stack:\n");
		qc__stack_format_user(frames, n, out, "    ");
	}
}

/* A thread blocked in a futex: its state line (in st, read from /proc
 * before the capture signal disturbed it) names the libc call it made,
 * which the hint then names too. */
static void name_futex_call(void *const *frames, int n, qc__buf *st, char *call,
			    size_t ncall)
{
	char fn[64];
	if (n <= 0 || !qc__stack_libc_call(frames, n, fn, sizeof fn) ||
	    st->len == 0 || st->s[st->len - 1] != '\n')
		return;
	st->s[--st->len] = '\0';
	qc__buf_printf(st, " (in %s)\n", fn);
	snprintf(call, ncall, "%s", fn);
}

/* One line about a surviving thread past the first QC_REPORT_FULL. */
static void brief_line(const qc_h *h, const qc__tsnap *s, qc__buf *out)
{
	(void)h;
	char sym[256] = "?", state[512];
	if (s->routine && !qc__symbol_name(s->routine, sym, sizeof sym))
		snprintf(sym, sizeof sym, "?");
	qc_thread_info info;
	if (s->parked && s->park_what)
		snprintf(state, sizeof state, "parked in %s", s->park_what);
	else if (s->foreign_what)
		snprintf(state, sizeof state,
			 "waiting in %s on a context of another clock",
			 s->foreign_what);
	else if (s->tid > 0 && qc_census_thread(0, s->tid, &info) == 0)
		qc_census_thread_describe(0, &info, state, sizeof state);
	else
		snprintf(state, sizeof state, "gone");
	qc__buf_printf(out, "  thread %d%s%s%s (start routine %s): %s\n",
		       (int)s->tid, s->name ? " \"" : "",
		       s->name ? s->name : "", s->name ? "\"" : "", sym, state);
}

/* ------------------------------------------------------ own fds */

void qc__h_fds_snap(qc__fdsnap *s)
{
	s->ok = qc_census_fds(0, s->fd, QC_FDSNAP, &s->n) == 0;
	if (!s->ok)
		s->n = 0;
}

void qc__h_note_own_fds(qc_h *h, const qc__fdsnap *before)
{
	qc__fdsnap now;
	if (!before->ok)
		return;
	qc__h_fds_snap(&now);
	if (!now.ok)
		return;
	for (size_t i = 0; i < now.n && h->nown_fds < QC_OWN_FDS; i++) {
		bool old = false;
		for (size_t j = 0; j < before->n && !old; j++)
			old = before->fd[j] == now.fd[i];
		for (size_t j = 0; j < h->nown_fds && !old; j++)
			old = h->own_fds[j] == now.fd[i];
		if (!old)
			h->own_fds[h->nown_fds++] = now.fd[i];
	}
}

/* ------------------------------------------------------ quiet report */

static void header(qc_h *h, enum qc__why why, size_t n, qc_duration bound,
		   qc_time from, bool from_cancel, qc_time limit, qc__buf *out)
{
	char b[48], f[48], lim[48], g[48], c[64], nx[48];
	dur(bound, b, sizeof b);
	qc__h_offset(h, from, f, sizeof f);
	qc__h_offset(h, limit, lim, sizeof lim);
	dur(h->guard, g, sizeof g);
	if (h->cancelled)
		snprintf(c, sizeof c, "cancelled at %s",
			 qc__h_offset(h, h->cancel_time, nx, sizeof nx));
	else
		snprintf(c, sizeof c, "nothing was cancelled");
	const char *th = n == 1 ? "thread" : "threads";
	qc__buf_printf(out, "quiesce: not quiet: %zu %s still alive ", n, th);
	switch (why) {
	case QC_WHY_GUARD:
		qc__buf_printf(out, "after the %s real-time guard", g);
		break;
	case QC_WHY_BOUND:
		qc__buf_printf(out, "at the bound (%s)", lim);
		break;
	case QC_WHY_DEADLOCK:
		qc__buf_puts(out, "in a deadlock (EDEADLK)");
		break;
	case QC_WHY_MANUAL:
		qc__buf_puts(out,
			     "with every thread parked and manual_time set");
		break;
	default:
		qc__buf_printf(out, "after the %s bound (real clock)", b);
		break;
	}
	qc__buf_printf(out, "\n  (bound %s from %s at %s; %s; guard %s", b,
		       from_cancel ? "qc_h_cancel" : "qc_h_expect_quiet", f, c,
		       g);
	if (h->multiplier > 1)
		qc__buf_printf(out, " with time multiplier %d", h->multiplier);
	qc__buf_puts(out, ";\n  ");
	qc_time next;
	bool timer = qc_clock_next_timer(h->clock, &next) == 0;
	switch (why) {
	case QC_WHY_GUARD:
		qc__buf_puts(out, "virtual time could not move: a thread runs "
				  "or blocks outside quiesce's waits)\n");
		break;
	case QC_WHY_BOUND:
		qc__buf_printf(
		    out,
		    "every thread is parked; virtual time moved to "
		    "the bound%s%s)\n",
		    timer ? ", next timer at " : ", no timer pending",
		    timer ? qc__h_offset(h, next, nx, sizeof nx) : "");
		break;
	case QC_WHY_DEADLOCK:
		qc__buf_puts(out,
			     "every bubble thread is parked and no timer is "
			     "pending: virtual time cannot move and "
			     "nothing can wake them)\n");
		break;
	case QC_WHY_MANUAL:
		qc__buf_puts(out, "virtual time could not move: manual_time is "
				  "set)\n");
		break;
	default:
		qc__buf_puts(out, "real clock: no virtual time)\n");
		break;
	}
}

void qc__h_build_quiet_report(qc_h *h, int verdict, enum qc__why why,
			      qc_duration bound, qc_time from, bool from_cancel,
			      qc_time limit)
{
	(void)verdict;
	qc__fdsnap fds_before;
	qc__h_fds_snap(&fds_before);

	qc__tsnap *s = NULL, *all = NULL;
	size_t n = 0, nall = 0;
	qc__h_lock();
	int e = qc__h_snapshot_locked(h, true, false, &s, &n);
	if (e == 0)
		e = qc__h_snapshot_locked(h, true, true, &all, &nall);
	qc__h_unlock();

	qc__buf *out = &h->report;
	qc__buf_reset(out);
	if (e) {
		qc__buf_puts(out, "quiesce: not quiet (no memory for the "
				  "report)\n");
		qc__h_snapshot_free(s, n);
		return;
	}
	size_t blamed = 0, ignored = 0, leftover = 0;
	for (size_t i = 0; i < n; i++)
		s[i].ignored ? ignored++ : blamed++;
	for (size_t i = 0; i < nall; i++)
		leftover += all[i].leftover;
	header(h, why, blamed, bound, from, from_cancel, limit, out);
	/* A bounded report however many threads survive: the first ones in
	 * full (stack captures and symbols cost), then one line each. */
	size_t full = 0, brief = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i].ignored)
			continue;
		if (full == QC_REPORT_FULL) {
			if (brief++ == 0)
				qc__buf_printf(out,
					       "\n%zu more threads, in brief "
					       "(no stacks):\n",
					       blamed - full);
			if (brief <= QC_REPORT_BRIEF)
				brief_line(h, &s[i], out);
			continue;
		}
		full++;
		char kind, call[64];
		qc__buf st = QC_BUF_INIT;
		void *frames[QC_STACK_MAX];
		qc__buf_puts(out, "\n");
		qc__h_describe_thread(h, &s[i], out);
		thread_state(h, &s[i], &st, &kind, call, sizeof call);
		int nf = capture(h, s[i].tid, frames);
		if (kind == 'x')
			name_futex_call(frames, nf, &st, call, sizeof call);
		qc__buf_puts(out, qc__buf_str(&st));
		qc__buf_free(&st);
		qc__h_describe_ctx(h, &s[i], out);
		stack_lines(frames, nf, out);
		hint(&s[i], kind, call, why, out);
	}
	if (brief > QC_REPORT_BRIEF)
		qc__buf_printf(out,
			       "  ... and %zu more (qc_h_write_json lists "
			       "every thread)\n",
			       brief - QC_REPORT_BRIEF);
	qc__h_lock();
	size_t nwrong = h->nwrong, total = h->nwrong_total;
	qc__wrong wrong[QC_MAX_WRONG];
	memcpy(wrong, h->wrong, nwrong * sizeof *wrong);
	qc__h_unlock();
	if (nwrong)
		qc__buf_puts(out, "\n");
	for (size_t i = 0; i < nwrong; i++) {
		const qc_site *ws = wrong[i].site;
		if (ws)
			qc__buf_printf(
			    out,
			    "note: wrong parent: the context created "
			    "at %s:%d in %s() (by %s) derives from "
			    "%s, so cancelling the test's contexts "
			    "never reaches it\n",
			    qc__h_base(ws->file), ws->line, ws->func,
			    wrong[i].thread, wrong[i].parent);
		else
			qc__buf_printf(out,
				       "note: wrong parent: a context made by "
				       "%s derives from %s\n",
				       wrong[i].thread, wrong[i].parent);
	}
	if (total > nwrong)
		qc__buf_printf(out, "note: %zu more wrong-parent derivations\n",
			       total - nwrong);
	if (ignored)
		qc__buf_printf(out,
			       "\n(%zu more thread%s ignored: qc_h_ignore)\n",
			       ignored, ignored == 1 ? "" : "s");
	if (leftover)
		qc__buf_printf(out,
			       "\n(%zu more thread%s left over from an earlier "
			       "test, not blamed)\n",
			       leftover, leftover == 1 ? "" : "s");
	qc__h_snapshot_free(s, n);
	qc__h_snapshot_free(all, nall);
	qc__h_note_own_fds(h, &fds_before);
}
