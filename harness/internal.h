/*
 * internal.h: the private shape of clocks, contexts and timers, shared by
 * the library's modules (never installed).
 *
 * One mutex per clock (the clock lock) guards everything structural about
 * the contexts on that clock: the parent/child links, cold extensions,
 * after-function lists, and the clock's timer heap. Hot reads avoid it:
 * qc_err is one acquire load of ctx->err; reference counts are atomics.
 *
 * Lock order: harness lock -> clock lock -> channel/cond locks. No quiesce
 * lock is held while user callbacks run.
 */
#ifndef QC_INTERNAL_H
#define QC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <quiesce/clock.h>
#include <quiesce/ctx.h>
#include <quiesce/time.h>

#include "alloc.h"
#include "block.h"

#if defined(__GNUC__)
#define QC_LIKELY(x)   __builtin_expect(!!(x), 1)
#define QC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define QC_LIKELY(x)   (x)
#define QC_UNLIKELY(x) (x)
#endif

/* QC_MUTEX_INIT: the library's own pthread mutexes; debug builds check
 * every lock and unlock. */
#ifdef QC_DEBUG
#define QC_MUTEX_INIT PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
#else
#define QC_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#endif

/* QC_ASSERT: a broken internal invariant; always on, it names the line. */
#define QC_ASSERT(cond) \
	((cond) ? (void)0 : qc__assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void qc__assert_fail(const char *what, const char *file, int line);

/* qc__die: prints "quiesce: <message>" and aborts (misuse that cannot be
 * reported any other way, such as a double release). */
_Noreturn void qc__die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------- timers */

typedef struct qc__batch qc__batch;
typedef struct qc__timer qc__timer;

/* A timer on a clock's heap. Caller storage; armed and disarmed under the
 * clock lock; fire runs under the clock lock and may add work to batch, to
 * be run once the lock is dropped. */
struct qc__timer {
	qc_time when; /* deadline on the clock */
	uint64_t seq; /* arming order, for ties */
	size_t idx;   /* heap slot; SIZE_MAX when not armed */
	void (*fire)(qc__timer *t, qc__batch *b);
};

#define QC_TIMER_INIT(fn)            \
	{                            \
		0, 0, SIZE_MAX, (fn) \
	}

/* A thread sleeping on a virtual clock until a time: its timer, whose fire
 * claims the word with QC_W_TIME. Lives on the sleeper's stack; the timer
 * is the first member so that the fire callback finds the word. */
enum { QC_W_TIME = 2 };

typedef struct qc__sleeper {
	qc__timer timer;
	_Atomic uint32_t word;
} qc__sleeper;

/* Runs under the clock lock on the thread moving the clock; the sleeper
 * takes that lock to disarm before its frame goes away. */
static inline void qc__sleeper_fire(qc__timer *t, qc__batch *b)
{
	(void)b;
	qc__sleeper *s = (qc__sleeper *)(void *)t;
	if (qc__word_claim(&s->word, QC_W_TIME))
		qc__futex_wake(&s->word, 1);
}

#define QC_SLEEPER_INIT                                  \
	{                                                \
		.timer = QC_TIMER_INIT(qc__sleeper_fire) \
	}

/* ------------------------------------------------------------- clocks */

struct qc_clock {
	qc__lock lock;	     /* the clock lock (block.h: inline futex lock) */
	_Atomic qc_time now; /* virtual clocks only */
	bool is_virtual;
	bool track;	  /* keep a registry of live contexts (leak reports) */
	qc__timer **heap; /* min-heap on (when, seq) */
	size_t nheap, capheap;
	uint64_t seq;
	/* Contexts alive, the root excluded, are made - freed. made is
	 * written only under the clock lock, so its increment needs no
	 * locked instruction (the hot path of every derive); freed is
	 * counted without the lock. Read with qc__clock_live. */
	_Atomic size_t made, freed;
	qc_ctx *root;	     /* the never-done root */
	qc_ctx *reg_head;    /* registry of live contexts when track */
	void *_Atomic owner; /* the harness using this clock, or NULL */
	/* Real clock only: the timer thread, which sleeps on cv under mu
	 * (never the clock lock, so that lock can be a plain futex lock)
	 * until its deadline or until kicked. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool kicked; /* under mu */
	pthread_t thread;
	bool thread_started, thread_stop;
};

/* qc__now_raw: the kernel's CLOCK_MONOTONIC through a raw system call, so
 * that libfaketime cannot fake it (real-time guards and benchmarks). */
qc_time qc__now_raw(void);

/* Arms t on c at when (under c->mu). Returns 0 or ENOMEM. */
int qc__timer_arm_locked(qc_clock *c, qc__timer *t, qc_time when);
/* Disarms t if armed (under c->mu). */
void qc__timer_disarm_locked(qc_clock *c, qc__timer *t);

/* Locks and unlocks the clock lock: inline, uncontended cost one locked
 * compare-and-swap and one exchange (pthread_mutex_lock/unlock through
 * out-of-line wrappers cost ~130 instructions per create+cancel). */
static inline void qc__clock_lock(qc_clock *c)
{
	qc__lock_acquire(&c->lock);
}

static inline void qc__clock_unlock(qc_clock *c)
{
	qc__lock_release(&c->lock);
}

/* ------------------------------------------------------------- contexts */

enum qc__kind {
	QC_KIND_ROOT = 1,	/* clock root or background: never done */
	QC_KIND_CANCEL,		/* with_cancel */
	QC_KIND_DEADLINE,	/* with_deadline / with_timeout */
	QC_KIND_VALUE,		/* with_value: done with its parent */
	QC_KIND_WITHOUT_CANCEL, /* never done */
};

/* Changed only under the clock lock (plain release stores, no locked
 * read-modify-write); read without it with acquire loads. */
enum qc__flags {
	QC_F_LINKED = 1, /* in its parent's child list */
	QC_F_TIMER = 4,	 /* ext->timer may be armed */
	QC_F_REG = 8,	 /* in the clock's registry */
};

/* The top bit of ctx->refs: a thread has futex-waited on err, so making
 * the context done must wake it. Set without the clock lock (an atomic OR),
 * which is why it does not live in flags; reference counts never reach it. */
#define QC_REFS_WAITERS 0x80000000u
#define QC_REFS_MASK	0x7fffffffu

static inline void qc__ctx_set_waiters(qc_ctx *ctx);

/* A hook runs when a context becomes done: an after-function or an
 * internal wake-up of a waiting thread. Lives in ext->hooks while pending. */
typedef struct qc__hook qc__hook;
struct qc__hook {
	qc__hook *next, *prev; /* ext->hooks while pending */
	void (*fn)(void *);
	void *arg;
	_Atomic int state;    /* QC_HOOK_* */
	qc__hook *owned_next; /* ext->owned: after-handles freed with the ctx */
	qc_ctx *ctx;
};
enum { QC_HOOK_PENDING, QC_HOOK_RUNNING, QC_HOOK_DONE, QC_HOOK_STOPPED };

/* The cold part of a context, allocated only when needed. Guarded by the
 * clock lock except for fields fixed before the context is published
 * (deadline, key, value). */
typedef struct qc__ctx_ext {
	qc__timer timer;  /* deadline contexts */
	qc_time deadline; /* own deadline (QC_KIND_DEADLINE) */
	const void *key;  /* QC_KIND_VALUE */
	void *value;
	char *name;
	qc__hook *hooks_head, *hooks_tail; /* pending hooks, in order */
	qc__hook *owned;		   /* after-handles owned by the ctx */
	int done_fd;			   /* eventfd, or -1 */
	qc_ctx *reg_prev, *reg_next;	   /* clock registry */
	qc_ctx *batch_next;		   /* in a qc__batch */
	qc_ctx *self;
} qc__ctx_ext;

/* The hot part: 72 bytes, so a live cancelable child costs 80 bytes of heap
 * with glibc's chunk header. err must stay the first member: qc_err reads
 * it through the public header. */
struct qc_ctx {
	_Atomic int err;	/* 0, ECANCELED or ETIMEDOUT; set once */
	_Atomic int cause;	/* published before err */
	_Atomic uint32_t refs;	/* every reference: user + children */
	_Atomic uint16_t urefs; /* user references */
	uint8_t kind;		/* enum qc__kind */
	_Atomic uint8_t flags;	/* enum qc__flags */
	qc_ctx *parent;		/* held by a reference; NULL for roots */
	qc_ctx *child;		/* first linked child (clock lock) */
	qc_ctx *next, *prev;	/* siblings (clock lock) */
	const qc_site *site;	/* creation site, static; may be NULL */
	qc__ctx_ext *ext;	/* cold part, or NULL */
	qc_clock *clock;
};

/* Work collected under the clock lock, run after it is dropped: contexts
 * whose hooks must run (each holding a reference). */
struct qc__batch {
	qc_ctx *head, *tail;
};
#define QC_BATCH_INIT      \
	{                  \
		NULL, NULL \
	}

/* Makes ctx and its linked subtree done with err/cause (under the clock
 * lock), unlinks ctx from its parent, and queues hooks into b. A cause of
 * 0 means err. */
void qc__cancel_locked(qc_ctx *ctx, int err, int cause, qc__batch *b);
/* Runs the hooks queued in b (no lock held) and drops its references. */
void qc__batch_run(qc__batch *b);

/* Marks ctx as waited on (see QC_REFS_WAITERS); seq_cst, so that a
 * canceller either sees it or stored err before the waiter's next load. */
static inline void qc__ctx_set_waiters(qc_ctx *ctx)
{
	atomic_fetch_or(&ctx->refs, QC_REFS_WAITERS);
}

/* True if ctx can ever become done (not a root nor without_cancel). */
static inline bool qc__can_be_done(const qc_ctx *ctx)
{
	return ctx->kind != QC_KIND_ROOT && ctx->kind != QC_KIND_WITHOUT_CANCEL;
}

/*
 * Internal hooks on caller storage, for waits: qc__hook_add registers h to
 * call fn(arg) once ctx is done. qc__hook_remove unregisters h and, if h
 * already fired, waits until its fn has returned, so h may then be reused or
 * freed. qc__hook_add returns 0, qc_err(ctx) when ctx is already done (nothing
 * registered), or ENOMEM.
 */
int qc__hook_add(qc_ctx *ctx, qc__hook *h, void (*fn)(void *), void *arg);
void qc__hook_remove(qc_ctx *ctx, qc__hook *h);

/* The number of c's live contexts, the root excluded. Never below the
 * true count at some instant during the call (freed is read first). */
static inline size_t qc__clock_live(const qc_clock *c)
{
	size_t freed = atomic_load_explicit(&c->freed, memory_order_acquire);
	return atomic_load_explicit(&c->made, memory_order_relaxed) - freed;
}

/* Registry walk for leak reports: calls fn for each live context on c that
 * still has user references, under the clock lock (fn must not call into
 * quiesce's context API). Only for clocks with track set. */
void qc__clock_foreach_live(qc_clock *c, void (*fn)(qc_ctx *, void *),
			    void *arg);
/* Starts or stops keeping the registry on c (the real clock: while a
 * real-clock harness is live). Contexts created before are not listed. */
void qc__clock_set_track(qc_clock *c, bool on);

/* qc__ctx_ref / qc__ctx_unref: an internal (not user) reference, so that
 * a harness can keep a context alive for its reports without it counting as
 * a user's lost reference. No-ops on roots. qc__ctx_unref frees the context
 * when it drops the last reference of any kind. */
void qc__ctx_ref(qc_ctx *ctx);
void qc__ctx_unref(qc_ctx *ctx);

/* qc__ctx_kind_name: "cancel", "deadline", "value", "without_cancel",
 * "clock root" or "background", for reports and dumps. */
const char *qc__ctx_kind_name(const qc_ctx *ctx);

/* The root of c, created and freed with it. */
qc_ctx *qc__root_new(qc_clock *c);
void qc__root_free(qc_ctx *root);

#endif /* QC_INTERNAL_H */
