/*
 * oom.h: the out-of-memory sweep's helpers, shared by check_oom.c (clocks,
 * contexts, waits, channels, census, faketime) and check_oom_harness.c
 * (groups and the harness): fault injection around one call, the counts a
 * failed call must leave unchanged, and a helper thread that completes a
 * blocked call.
 *
 * A sweep: for n = 0, 1, 2, ...: oom_on(n); the call; made = oom_off();
 * on failure check ENOMEM and oom_counts_same(); on success check that
 * made <= n (nothing swallowed) and stop; then oom_swept(what, n).
 */
#ifndef QC_SUITES_OOM_H
#define QC_SUITES_OOM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <quiesce/quiesce.h>

/* No call here needs anywhere near this many allocations. */
#define OOM_SWEEP_MAX 5000

/* oom_on: the next n allocations quiesce makes succeed, then every one
 * fails. oom_off: injection off; returns how many allocations were
 * attempted since oom_on. */
void oom_on(long n);
long oom_off(void);

/* oom_swept: ends a sweep of what: k allocation points failed cleanly
 * before the call succeeded. Prints "check_oom: <what>: <k> allocation
 * points swept" to stderr; fails the test if the call never succeeded. */
void oom_swept(const char *what, long k);

/* What the process shows that a failed call must not change. */
typedef struct oom_counts {
	size_t threads, fds;
	size_t real_live, real_timers;
} oom_counts;

oom_counts oom_counts_now(void);
/* Fails the test (naming what and n) unless the counts are a's again
 * (waiting a moment for a thread just joined to leave /proc). */
void oom_counts_same(const oom_counts *a, const char *what, long n);

/* oom_warm_real_clock: starts the real clock's timer thread (made at its
 * first deadline), so that thread counts compare like with like. */
void oom_warm_real_clock(void);

/* oom_bare_ctx: a context on the real clock with no cold part yet: its
 * first hook, name, after-function or done fd allocates one. oom_drop:
 * cancels and releases c. */
qc_ctx *oom_bare_ctx(void);
void oom_drop(qc_ctx *c);

/* A helper thread that completes a blocked call: it waits (real time, a
 * guard only) until the call has blocked, then does its part. It makes no
 * allocation through quiesce. */
enum comp_kind {
	COMP_SEND,    /* a receiver waits on ch: try_send val */
	COMP_RECV,    /* a sender waits on ch: try_recv */
	COMP_SIGNAL,  /* a waiter waits on cv: signal */
	COMP_ADVANCE, /* a timer is armed on clock: advance it by d */
};

typedef struct oom_completer {
	enum comp_kind kind;
	qc_chan *ch;
	qc_cond *cv;
	qc_clock *clock;
	qc_duration d;
	long val;
	_Atomic int stop;
	_Atomic int acted;
	pthread_t t;
} oom_completer;

/* oom_comp_start: starts c's thread. oom_comp_stop: stops it if it has
 * not acted, joins it, and returns whether it acted. */
void oom_comp_start(oom_completer *c);
bool oom_comp_stop(oom_completer *c);

/* oom_parked_worker: a qc_h_spawn function that waits (parked) for its
 * argument, a context, to be done; 0 if it was cancelled. Not static: the
 * harness's ignore list names it. */
int oom_parked_worker(qc_ctx *ctx, void *arg);

#endif /* QC_SUITES_OOM_H */
