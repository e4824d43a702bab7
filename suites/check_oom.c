/*
 * check_oom.c: an out-of-memory sweep across the whole public API (issue
 * #9): every constructor and every call that allocates runs with its Nth
 * allocation failing, for N = 0, 1, 2, ... until it succeeds. This suite:
 * clocks, contexts, waits, channels, the census and faketime;
 * check_oom_harness.c: groups and the harness (helpers: oom.[ch]).
 *
 * After each failure the call must have returned a clean ENOMEM (or its
 * documented error) and left nothing behind: the counts the library shows
 * (live contexts and armed timers of the clock, the process's threads and
 * fds, the live harness) are what they were, and the objects it was given
 * are unchanged and still work. The run that succeeds must have made no
 * more allocations than it was allowed: a success that swallowed a failed
 * allocation is a silent degradation. Leaks are valgrind's to find: the
 * memcheck variant of this suite (fork mode, a leak check per test) treats
 * every definite, indirect or possible leak as an error.
 *
 * Each sweep prints "check_oom: <what>: <k> allocation points swept" to
 * stderr: k failed allocations, each a clean failure, before the success.
 *
 * The helper threads that complete a blocking call (a partner on a
 * channel, a signaller, a thread that moves a virtual clock) only act once
 * the call has blocked, and allocate nothing through quiesce.
 */
/* quiesce-suite: static */
/* quiesce-suite: timeout 300 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <quiesce/census.h>
#include <quiesce/check.h>
#include <quiesce/faketime.h>
#include <quiesce/quiesce.h>

#include "alloc.h"
#include "oom.h"
#include "support.h"

/* ------------------------------------------------------ clocks, roots */

START_TEST(test_oom_background_never_needs_memory)
{
	/* The real clock and its root are made on first use, once: that
	 * must not depend on an allocation (it could never be retried). */
	oom_on(0);
	qc_ctx *bg = qc_background();
	qc_clock *real = qc_clock_real();
	long made = oom_off();
	ck_assert_ptr_nonnull(bg);
	ck_assert_ptr_nonnull(real);
	ck_assert_ptr_eq(qc_ctx_clock(bg), real);
	ck_assert_int_eq(made, 0);
	qc_ctx *c = qc_with_cancel(bg);
	ck_assert_ptr_nonnull(c);
	oom_drop(c);
}
END_TEST

START_TEST(test_oom_clock_virtual_new)
{
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_on(n);
		qc_clock *c = qc_clock_virtual_new(QC_SECOND);
		int e = errno;
		long made = oom_off();
		if (c) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(qc_now(c), QC_SECOND);
			ck_assert_int_eq(qc_clock_live_contexts(c), 0);
			ck_assert_int_eq(qc_clock_free(c), 0);
			break;
		}
		ck_assert_int_eq(e, ENOMEM);
	}
	oom_swept("qc_clock_virtual_new", n);
}
END_TEST

/* ------------------------------------------------------ constructors */

enum ctor {
	CTOR_CANCEL,
	CTOR_DEADLINE,	    /* in the future: arms a timer */
	CTOR_TIMEOUT,	    /* in the future: arms a timer */
	CTOR_DEADLINE_PAST, /* done at once */
	CTOR_VALUE,
	CTOR_WITHOUT_CANCEL,
	CTOR_OF_DONE_PARENT, /* with_cancel of a cancelled parent */
	CTOR_OF_CANCEL,	     /* with_deadline of a linked cancel child */
	CTOR_N
};

static const char *const ctor_names[CTOR_N] = {
    "qc_with_cancel",	     "qc_with_deadline",
    "qc_with_timeout",	     "qc_with_deadline (past)",
    "qc_with_value",	     "qc_without_cancel",
    "qc_with_cancel (done)", "qc_with_deadline (of a child)",
};

static int value_key;

static qc_ctx *ctor_call(enum ctor k, qc_ctx *parent)
{
	qc_time now = qc_now(qc_ctx_clock(parent));
	switch (k) {
	case CTOR_CANCEL:
	case CTOR_OF_DONE_PARENT:
		return qc_with_cancel(parent);
	case CTOR_DEADLINE:
	case CTOR_OF_CANCEL:
		return qc_with_deadline(parent, now + QC_HOUR);
	case CTOR_TIMEOUT:
		return qc_with_timeout(parent, QC_HOUR);
	case CTOR_DEADLINE_PAST:
		return qc_with_deadline(parent, now - 1);
	case CTOR_VALUE:
		return qc_with_value(parent, &value_key, &value_key);
	default:
		return qc_without_cancel(parent);
	}
}

/* Checks what a successful constructor made. */
static void ctor_check(enum ctor k, qc_ctx *c)
{
	qc_time d;
	switch (k) {
	case CTOR_DEADLINE:
	case CTOR_TIMEOUT:
	case CTOR_OF_CANCEL:
		ck_assert(qc_deadline(c, &d));
		ck_assert_int_eq(qc_err(c), 0);
		break;
	case CTOR_DEADLINE_PAST:
		ck_assert_int_eq(qc_err(c), ETIMEDOUT);
		break;
	case CTOR_OF_DONE_PARENT:
		ck_assert_int_eq(qc_err(c), ECANCELED);
		break;
	case CTOR_VALUE:
		ck_assert_ptr_eq(qc_value(c, &value_key), &value_key);
		break;
	default:
		ck_assert_int_eq(qc_err(c), 0);
		break;
	}
}

/* Sweeps constructor k with a parent on clock c (NULL: the real clock);
 * a virtual clock is made anew for every attempt, so that the first timer
 * always grows an empty heap. */
static void sweep_ctor(enum ctor k, bool virt)
{
	char what[96];
	snprintf(what, sizeof what, "%s on %s clock", ctor_names[k],
		 virt ? "a virtual" : "the real");
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_clock *clock =
		    virt ? qc_clock_virtual_new(QC_VIRTUAL_EPOCH) : NULL;
		qc_ctx *root = virt ? qc_clock_root(clock) : qc_background();
		qc_ctx *mid = NULL, *parent = root;
		if (k == CTOR_OF_DONE_PARENT || k == CTOR_OF_CANCEL) {
			mid = qc_with_cancel(root);
			ck_assert_ptr_nonnull(mid);
			if (k == CTOR_OF_DONE_PARENT)
				qc_cancel(mid);
			parent = mid;
		}
		qc_clock *pc = qc_ctx_clock(parent);
		size_t live = qc_clock_live_contexts(pc);
		size_t timers = qc_clock_timers(pc);
		oom_counts before = oom_counts_now();

		oom_on(n);
		qc_ctx *c = ctor_call(k, parent);
		int e = errno;
		long made = oom_off();
		if (c) {
			ck_assert_int_le(made, n);
			ctor_check(k, c);
			ck_assert_int_eq(qc_clock_live_contexts(pc), live + 1);
			qc_cancel(c); /* EINVAL for the kinds without one */
			qc_release(c);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert_int_eq(qc_clock_live_contexts(pc), live);
			ck_assert_int_eq(qc_clock_timers(pc), timers);
			oom_counts_same(&before, what, n);
			/* The parent is as it was and still derives. */
			qc_ctx *again = ctor_call(k, parent);
			ck_assert_ptr_nonnull(again);
			ctor_check(k, again);
			qc_cancel(again);
			qc_release(again);
		}
		if (mid)
			oom_drop(mid);
		if (virt) {
			ck_assert_int_eq(qc_clock_live_contexts(clock), 0);
			ck_assert_int_eq(qc_clock_free(clock), 0);
		}
		if (c)
			break;
	}
	oom_swept(what, n);
}

START_TEST(test_oom_ctx_constructors_virtual)
{
	sweep_ctor((enum ctor)_i, true);
}
END_TEST

START_TEST(test_oom_ctx_constructors_real)
{
	oom_warm_real_clock();
	sweep_ctor((enum ctor)_i, false);
}
END_TEST

/* ------------------------------------------------------ after-functions */

static void count_call(void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
}

enum after_case { AFTER_BARE, AFTER_VIRTUAL, AFTER_DONE, AFTER_NEVER, AFTER_N };

START_TEST(test_oom_after_func)
{
	static const char *const names[AFTER_N] = {
	    "qc_after_func (real clock, no cold part)",
	    "qc_after_func (virtual clock)", "qc_after_func (done context)",
	    "qc_after_func (never done)"};
	enum after_case k = (enum after_case)_i;
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_clock *vc = qc_clock_virtual_new(0);
		qc_ctx *c;
		if (k == AFTER_VIRTUAL)
			c = qc_with_cancel(qc_clock_root(vc));
		else if (k == AFTER_NEVER)
			c = qc_without_cancel(qc_background());
		else
			c = oom_bare_ctx();
		ck_assert_ptr_nonnull(c);
		if (k == AFTER_DONE)
			qc_cancel(c);
		_Atomic int calls = 0;

		oom_on(n);
		qc_after *a = qc_after_func(c, count_call, &calls);
		int e = errno;
		long made = oom_off();
		if (a) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(atomic_load(&calls),
					 k == AFTER_DONE ? 1 : 0);
			if (k == AFTER_NEVER)
				ck_assert(qc_after_stop(a));
			qc_cancel(c);
			ck_assert_int_eq(atomic_load(&calls),
					 k == AFTER_NEVER ? 0 : 1);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert_int_eq(atomic_load(&calls), 0);
			qc_cancel(c);
			ck_assert_int_eq(atomic_load(&calls), 0);
		}
		qc_release(c);
		ck_assert_int_eq(qc_clock_free(vc), 0);
		if (a)
			break;
	}
	oom_swept(names[k], n);
}
END_TEST

/* ------------------------------------------------------ names, done fds */

START_TEST(test_oom_ctx_set_name)
{
	static const char *const names[] = {
	    "qc_ctx_set_name (unnamed, real clock)",
	    "qc_ctx_set_name (renaming)", "qc_ctx_set_name (virtual clock)"};
	qc_clock *vc = qc_clock_virtual_new(0);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_ctx *c = _i == 2 ? qc_with_cancel(qc_clock_root(vc))
				    : oom_bare_ctx();
		ck_assert_ptr_nonnull(c);
		if (_i == 1)
			qc_ctx_set_name(c, "old");
		const char *old = _i == 1 ? "old" : NULL;

		errno = 0;
		oom_on(n);
		qc_ctx_set_name(c, "new name");
		int e = errno;
		long made = oom_off();
		const char *got = qc_ctx_name(c);
		bool done = made <= n;
		if (done) {
			ck_assert_pstr_eq(got, "new name");
		} else {
			/* The documented failure: the old name stays. */
			ck_assert_int_eq(e, ENOMEM);
			ck_assert_pstr_eq(got, old);
		}
		oom_drop(c);
		if (done)
			break;
	}
	ck_assert_int_eq(qc_clock_free(vc), 0);
	oom_swept(names[_i], n);
}
END_TEST

START_TEST(test_oom_done_fd)
{
	oom_warm_real_clock();
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_counts base = oom_counts_now();
		qc_ctx *c = oom_bare_ctx();
		qc_ctx *v = qc_with_value(c, &value_key, NULL);
		ck_assert_ptr_nonnull(v);
		oom_counts before = oom_counts_now();

		oom_on(n);
		int fd = qc_done_fd(_i ? v : c);
		int e = errno;
		long made = oom_off();
		if (fd >= 0) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(qc_done_fd(c), fd);
			ck_assert_int_eq(qc_done_fd(v), fd);
			struct pollfd p = {.fd = fd, .events = POLLIN};
			ck_assert_int_eq(poll(&p, 1, 0), 0);
			qc_cancel(c);
			ck_assert_int_eq(poll(&p, 1, 0), 1);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			oom_counts_same(&before, "qc_done_fd", n);
		}
		qc_release(v);
		oom_drop(c);
		/* Closed at the final release. */
		oom_counts_same(&base, "qc_done_fd (after release)", n);
		if (fd >= 0)
			break;
	}
	oom_swept(_i ? "qc_done_fd (value context)" : "qc_done_fd", n);
}
END_TEST

/* ------------------------------------------------------------ channels */

START_TEST(test_oom_chan_new)
{
	size_t cap = _i ? 16 : 0;
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_on(n);
		qc_chan *ch = qc_chan_new(sizeof(long), cap);
		int e = errno;
		long made = oom_off();
		if (ch) {
			ck_assert_int_le(made, n);
			long x = 7, y = 0;
			if (cap) {
				ck_assert_int_eq(qc_chan_try_send(ch, &x), 0);
				ck_assert_int_eq(qc_chan_try_recv(ch, &y), 0);
				ck_assert_int_eq(y, 7);
			}
			ck_assert_int_eq(qc_chan_free(ch), 0);
			break;
		}
		ck_assert_int_eq(e, ENOMEM);
	}
	oom_swept(cap ? "qc_chan_new (buffered)" : "qc_chan_new (rendezvous)",
		  n);
}
END_TEST

enum chan_case {
	CH_RECV,	 /* recv on an empty channel */
	CH_SEND,	 /* send on a full channel */
	CH_SELECT,	 /* select over 9 cases (more than fit on the stack) */
	CH_RECV_VIRTUAL, /* recv, context on a virtual clock */
	CH_N
};

START_TEST(test_oom_chan_blocking)
{
	static const char *const names[CH_N] = {
	    "qc_chan_recv (blocking)", "qc_chan_send (blocking)",
	    "qc_chan_select (9 cases, blocking)",
	    "qc_chan_recv (blocking, virtual clock)"};
	enum chan_case k = (enum chan_case)_i;
	enum { NSEL = 9 };
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_clock *vc = qc_clock_virtual_new(0);
		qc_ctx *c = k == CH_RECV_VIRTUAL
				? qc_with_cancel(qc_clock_root(vc))
				: oom_bare_ctx();
		ck_assert_ptr_nonnull(c);
		qc_chan *chs[NSEL];
		for (int i = 0; i < NSEL; i++) {
			chs[i] = qc_chan_new(sizeof(long), 1);
			ck_assert_ptr_nonnull(chs[i]);
		}
		long full = 11;
		if (k == CH_SEND)
			ck_assert_int_eq(qc_chan_try_send(chs[0], &full), 0);
		oom_completer comp = {.kind =
					  k == CH_SEND ? COMP_RECV : COMP_SEND,
				      .ch = chs[NSEL - 1],
				      .val = 42};
		if (k != CH_SELECT)
			comp.ch = chs[0];
		oom_comp_start(&comp);
		oom_counts before = oom_counts_now();
		before.threads -= 1; /* the oom_completer, joined below */

		long got = -1, out = 5;
		size_t chosen = 99;
		qc_chan_case cases[NSEL];
		for (int i = 0; i < NSEL; i++)
			cases[i] = (qc_chan_case){chs[i], QC_RECV, &got};
		oom_on(n);
		int e;
		switch (k) {
		case CH_SEND:
			e = qc_chan_send(c, chs[0], &out);
			break;
		case CH_SELECT:
			e = qc_chan_select(c, cases, NSEL, &chosen);
			break;
		default:
			e = qc_chan_recv(c, chs[0], &got);
			break;
		}
		long made = oom_off();
		bool acted = oom_comp_stop(&comp);
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert(acted);
			if (k == CH_SEND) {
				/* The partner took 11; 5 moved in. */
				ck_assert_int_eq(qc_chan_try_recv(chs[0], &got),
						 0);
				ck_assert_int_eq(got, 5);
			} else {
				ck_assert_int_eq(got, 42);
			}
			if (k == CH_SELECT)
				ck_assert_uint_eq(chosen, NSEL - 1);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert(!acted);
			ck_assert_int_eq(got, -1);
			ck_assert_uint_eq(chosen, 99);
			ck_assert_uint_eq(qc_chan_waiters(chs[0]), 0);
			ck_assert_uint_eq(qc_chan_len(chs[0]),
					  k == CH_SEND ? 1 : 0);
			oom_counts_same(&before, names[k], n);
		}
		for (int i = 0; i < NSEL; i++)
			ck_assert_int_eq(qc_chan_free(chs[i]), 0);
		oom_drop(c);
		ck_assert_int_eq(qc_clock_free(vc), 0);
		if (e == 0)
			break;
	}
	oom_swept(names[k], n);
}
END_TEST

/* ---------------------------------------------------------- conditions */

START_TEST(test_oom_cond_wait)
{
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_ctx *c = oom_bare_ctx();
		qc_cond cv;
		ck_assert_int_eq(qc_cond_init(&cv), 0);
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
		pthread_mutex_t mu;
		pthread_mutex_init(&mu, &ma);
		pthread_mutexattr_destroy(&ma);
		oom_completer comp = {.kind = COMP_SIGNAL, .cv = &cv};
		oom_comp_start(&comp);

		ck_assert_int_eq(pthread_mutex_lock(&mu), 0);
		oom_on(n);
		int e = qc_cond_wait(c, &cv, &mu);
		long made = oom_off();
		/* Held on return, success or not, by this thread: busy, and
		 * ours to unlock (an error-checking mutex refuses anyone
		 * else). A trylock, not a deadlocking relock, which thread
		 * checkers (helgrind) rightly report. */
		ck_assert_int_eq(pthread_mutex_trylock(&mu), EBUSY);
		ck_assert_int_eq(pthread_mutex_unlock(&mu), 0);
		bool acted = oom_comp_stop(&comp);
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert(acted);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert(!acted);
			ck_assert_uint_eq(qc_cond_waiters(&cv), 0);
		}
		ck_assert_int_eq(qc_cond_destroy(&cv), 0);
		pthread_mutex_destroy(&mu);
		oom_drop(c);
		if (e == 0)
			break;
	}
	oom_swept("qc_cond_wait", n);
}
END_TEST

/* -------------------------------------------------------------- sleeps */

START_TEST(test_oom_sleep_virtual)
{
	static const char *const names[] = {"qc_sleep (virtual clock)",
					    "qc_sleep_until (virtual clock)",
					    "qc_sleep (virtual clock root)"};
	const qc_time start = QC_VIRTUAL_EPOCH;
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		qc_clock *vc = qc_clock_virtual_new(start);
		qc_ctx *c = _i == 2 ? qc_clock_root(vc)
				    : qc_with_cancel(qc_clock_root(vc));
		ck_assert_ptr_nonnull(c);
		oom_completer comp = {
		    .kind = COMP_ADVANCE, .clock = vc, .d = QC_HOUR};
		oom_comp_start(&comp);

		oom_on(n);
		int e = _i == 1 ? qc_sleep_until(c, start + QC_HOUR)
				: qc_sleep(c, QC_HOUR);
		long made = oom_off();
		bool acted = oom_comp_stop(&comp);
		if (e == 0) {
			ck_assert_int_le(made, n);
			ck_assert(acted);
			ck_assert_int_eq(qc_now(vc), start + QC_HOUR);
		} else {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert(!acted);
			ck_assert_int_eq(qc_now(vc), start);
			ck_assert_uint_eq(qc_clock_timers(vc), 0);
		}
		if (_i != 2)
			oom_drop(c);
		ck_assert_int_eq(qc_clock_free(vc), 0);
		if (e == 0)
			break;
	}
	oom_swept(names[_i], n);
}
END_TEST

/* ---------------------------------------------------------------- poll */

START_TEST(test_oom_poll)
{
	enum { NFD = 9 }; /* more than qc_poll keeps on its stack */
	bool virt = _i == 1;
	oom_warm_real_clock();
	int pipes[NFD][2];
	for (int i = 0; i < NFD; i++)
		ck_assert_int_eq(pipe2(pipes[i], O_CLOEXEC), 0);
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		oom_counts base = oom_counts_now();
		qc_clock *vc = qc_clock_virtual_new(0);
		qc_ctx *c =
		    virt ? qc_with_cancel(qc_clock_root(vc)) : oom_bare_ctx();
		ck_assert_ptr_nonnull(c);
		struct pollfd fds[NFD];
		for (int i = 0; i < NFD; i++)
			fds[i] = (struct pollfd){pipes[i][0], POLLIN, 77};
		oom_completer comp = {
		    .kind = COMP_ADVANCE, .clock = vc, .d = QC_SECOND};
		if (virt)
			oom_comp_start(&comp);
		oom_counts before = oom_counts_now();
		if (virt)
			before.threads -= 1;

		oom_on(n);
		int r = qc_poll(c, fds, NFD, virt ? QC_SECOND : 0);
		int e = errno;
		long made = oom_off();
		bool acted = virt && oom_comp_stop(&comp);
		if (r == 0) {
			ck_assert_int_le(made, n);
			ck_assert(acted == virt);
			for (int i = 0; i < NFD; i++)
				ck_assert_int_eq(fds[i].revents, 0);
		} else {
			ck_assert_int_eq(r, -1);
			ck_assert_int_eq(e, ENOMEM);
			ck_assert(!acted);
			/* The context's done fd, once made, is the
			 * context's (made lazily, kept until its final
			 * release): it may stay, nothing else may. */
			size_t nfd;
			ck_assert_int_eq(qc_census_fd_count(0, &nfd), 0);
			ck_assert_uint_le(nfd, before.fds + 1);
			if (virt)
				ck_assert_uint_eq(qc_clock_timers(vc), 0);
		}
		oom_drop(c);
		if (r != 0)
			oom_counts_same(&base, "qc_poll (after release)", n);
		ck_assert_int_eq(qc_clock_free(vc), 0);
		if (r == 0)
			break;
	}
	for (int i = 0; i < NFD; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	oom_swept(virt ? "qc_poll (9 fds, virtual timeout)" : "qc_poll (9 fds)",
		  n);
}
END_TEST

/* --------------------------------------------------------- census, faketime */

START_TEST(test_oom_census)
{
	static const char *const names[] = {"qc_census_tids_alloc",
					    "qc_census_children",
					    "qc_census_descendants"};
	long n;
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		pid_t *tids = NULL, out[64] = {0};
		size_t cnt = 12345;
		oom_on(n);
		int e;
		if (_i == 0)
			e = qc_census_tids_alloc(0, &tids, &cnt);
		else if (_i == 1)
			e = qc_census_children(getppid(), out, 64, &cnt);
		else
			e = qc_census_descendants(0, 0, out, 64, &cnt);
		long made = oom_off();
		if (e == 0) {
			ck_assert_int_le(made, n);
			if (_i == 0) {
				ck_assert_uint_ge(cnt, 1);
				qc_census_free(tids);
			}
			break;
		}
		ck_assert_int_eq(e, ENOMEM);
		ck_assert_ptr_null(tids);
		ck_assert_uint_eq(cnt, 12345);
	}
	oom_swept(names[_i], n);
}
END_TEST

/* The entries of directory d, "." and ".." aside. */
static int dir_entries(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", d);
	FILE *p = popen(cmd, "r");
	int k = -1;
	if (p) {
		if (fscanf(p, "%d", &k) != 1)
			k = -1;
		pclose(p);
	}
	return k;
}

START_TEST(test_oom_faketime_child_new)
{
	char lib[512];
	if (qc_faketime_library(lib, sizeof lib) != 0)
		return; /* libfaketime missing: qc_faketime_child_new says so */
	char dir[] = "/tmp/qc-oom-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	qc_faketime ft;
	ck_assert_int_eq(qc_faketime_parse("+1d", &ft, NULL, 0), 0);
	long n;
	/* Each failure says so on stderr: keep the test's output short. */
	fflush(stderr);
	int saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(null, 0);
	for (n = 0; n < OOM_SWEEP_MAX; n++) {
		dup2(null, 2);
		oom_on(n);
		qc_faketime_child *c = qc_faketime_child_new(&ft, "true", dir);
		int e = errno;
		long made = oom_off();
		dup2(saved, 2);
		if (c) {
			ck_assert_int_le(made, n);
			ck_assert_int_eq(dir_entries(dir), 1);
			ck_assert_int_eq(qc_faketime_child_free(c), 0);
			ck_assert_int_eq(dir_entries(dir), 0);
			break;
		}
		ck_assert_int_eq(e, ENOMEM);
		ck_assert_int_eq(dir_entries(dir), 0); /* no file left */
	}
	close(null);
	close(saved);
	ck_assert_int_eq(rmdir(dir), 0);
	oom_swept("qc_faketime_child_new", n);
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *oom_suite(void)
{
	Suite *s = suite_create("oom");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_oom_background_never_needs_memory);
	tcase_add_test(tc, test_oom_clock_virtual_new);
	tcase_add_loop_test(tc, test_oom_ctx_constructors_virtual, 0, CTOR_N);
	tcase_add_loop_test(tc, test_oom_ctx_constructors_real, 0, CTOR_N);
	tcase_add_loop_test(tc, test_oom_after_func, 0, AFTER_N);
	tcase_add_loop_test(tc, test_oom_ctx_set_name, 0, 3);
	tcase_add_loop_test(tc, test_oom_done_fd, 0, 2);
	tcase_add_loop_test(tc, test_oom_chan_new, 0, 2);
	tcase_add_loop_test(tc, test_oom_chan_blocking, 0, CH_N);
	tcase_add_test(tc, test_oom_cond_wait);
	tcase_add_loop_test(tc, test_oom_sleep_virtual, 0, 3);
	tcase_add_loop_test(tc, test_oom_poll, 0, 2);
	tcase_add_loop_test(tc, test_oom_census, 0, 3);
	tcase_add_test(tc, test_oom_faketime_child_new);
	suite_add_tcase(s, tc);
	return s;
}

QC_CHECK_MAIN(oom_suite)
