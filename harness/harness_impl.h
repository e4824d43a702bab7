/*
 * harness_impl.h: the private shape of a harness and of the thread records
 * it keeps, shared by harness.c (lifecycle, tracking, interposers),
 * bubble.c (parking, virtual time, settle/advance/expect_quiet), report.c
 * (failure report, JSON, event trace) and leaks.c (qc_h_check_leaks).
 *
 * One global mutex, the harness lock (qc__g_mu), guards every thread record
 * and every mutable field of every harness: there is at most one live
 * harness, and records outlive an abandoned harness, so one lock is both
 * simplest and enough (it is never held while user code runs).
 *
 * Lock order: harness lock -> clock lock -> channel/cond locks. The harness
 * lock is dropped around anything that can run user callbacks (moving a
 * clock, cancelling a context), around pthread_create/pthread_join, and
 * around /proc reads, stack captures and symbolization.
 */
#ifndef QC_HARNESS_IMPL_H
#define QC_HARNESS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <quiesce/harness.h>

#include "buf.h"
#include "heap.h"
#include "internal.h"
#include "park.h"

/* Return addresses kept from the creating thread's stack. */
#define QC_CREATE_FRAMES 10
/* The names qc_h_ignore keeps, and the wrong-parent findings kept. */
#define QC_MAX_WRONG 16
/* Events kept in the trace ring (the oldest are dropped). */
#define QC_EVENTS 2048

/* Threads a report (or a leak report) describes in full, then in one
 * line each; the rest are only counted, so reports stay short and quick
 * however many threads there are. */
#define QC_REPORT_FULL	16
#define QC_REPORT_BRIEF 200

/* The fds of its own a harness remembers, and the most fds a listing
 * without the heap holds (qc__fdsnap). */
#define QC_OWN_FDS 64
#define QC_FDSNAP  512

/* A park record that qc__park_begin did not register. */
#define QC_PARK_NOT_PUSHED ((qc__park *)(uintptr_t)1)

typedef struct qc__thr qc__thr;

/*
 * A thread record: one per tracked thread (and one for a harness's test
 * thread). Allocated by the creating thread, freed by whoever sees it is no
 * longer needed: qc_h_free for its harness's records, the thread's own exit
 * for records nobody will ask about (detached or joined, not spawned, or
 * left over from an abandoned harness). Every field below the first group
 * is under the harness lock unless marked otherwise.
 */
struct qc__thr {
	qc__thr *next, *prev; /* the registry */
	/* The tracking harness; NULL once it was abandoned (a left-over
	 * thread). Atomic: read without the lock by qc__h_time_clock. */
	qc_h *_Atomic h;
	_Atomic pid_t tid; /* set by the thread itself (and its creator) */
	pthread_t pt;	   /* valid once pt_set */
	bool pt_set;

	char *name;	     /* the quiesce name (owned), or NULL */
	void *(*fn)(void *); /* what the trampoline runs */
	void *arg;
	const void *routine; /* the start routine reports show */
	int (*spawn_fn)(qc_ctx *, void *);
	void *spawn_arg;
	int ret;	   /* spawn_fn's result, once exited */
	qc_ctx *ctx;	   /* the context it was given (held), or NULL */
	qc_ctx *inherited; /* its creator's context (held), or NULL */
	void *frames[QC_CREATE_FRAMES]; /* the creator's stack */
	int nframes, skip;		/* skip: our own frames (static link) */
	pid_t creator_tid;
	char *creator_name; /* the creator's quiesce name (owned), or NULL */
	bool creator_is_test;
	bool creator_tracked;

	qc__park *park;	   /* innermost active park record */
	qc__park *foreign; /* a quiesce wait on another clock (not parked) */
	_Atomic uint32_t exited_word; /* 0 until exited (joiners park on it) */
	bool is_test;		      /* the harness's test thread */
	bool spawned;		      /* by qc_h_spawn (qc_h_result) */
	bool exited, joined, detached, joining;
	bool advancing;		   /* moving the clock: running, not parked */
	bool ignore_done, ignored; /* qc_h_ignore, resolved lazily */
	uint32_t order; /* creation order in its harness (test thread: 0);
			   seeds the thread's chaos generator (chaos.c) */
	qc_time created_real, exited_real; /* qc__now_raw */
	/* Its CPU time (ns) when the guard last looked (bubble.c: a loaded
	 * machine must not trip the guard). */
	uint64_t sched_run;
};

/* The one entry of the event trace. */
typedef struct qc__event {
	uint8_t kind; /* enum qc__ev_kind */
	pid_t tid;
	qc_time virt;	  /* harness clock, offset from its start */
	qc_time real;	  /* raw monotonic, offset from the harness's start */
	qc_time until;	  /* park: the wait's end (offset), or QC_TIME_NEVER */
	const char *what; /* park: the quiesce call (static string) */
	char name[16];
} qc__event;

enum qc__ev_kind {
	QC_EV_NEW = 1,
	QC_EV_SPAWN,
	QC_EV_PARK,
	QC_EV_WAKE,
	QC_EV_CANCEL,
	QC_EV_TIMER,
	QC_EV_EXIT,
	QC_EV_VERDICT,
};

/* A wrong-parent finding (qc__h_note_derive). */
typedef struct qc__wrong {
	const qc_site *site; /* the child's creation site, or NULL */
	char parent[200];    /* what the parent was */
	char thread[40];     /* who derived it */
} qc__wrong;

/* Why qc_h_expect_quiet failed. */
enum qc__why {
	QC_WHY_NONE = 0,
	QC_WHY_GUARD,	 /* the real-time guard expired */
	QC_WHY_BOUND,	 /* survivors at the bound, every thread parked */
	QC_WHY_DEADLOCK, /* every thread parked, no timer pending */
	QC_WHY_MANUAL,	 /* every thread parked, time is manual */
	QC_WHY_REAL,	 /* real clock: the bound passed */
};

struct qc_h {
	const qc_site *site; /* where qc_h_new was called */
	qc_h_opts opts;
	qc_clock *clock;
	qc_ctx *ctx;	    /* the test's root (one user reference) */
	qc_time start;	    /* clock time at qc_h_new */
	qc_time start_real; /* qc__now_raw at qc_h_new */
	int multiplier;
	qc_duration guard; /* scaled */
	bool stacks_ok;	   /* qc__stack_init succeeded */

	qc__thr *test;		/* the test thread's record */
	qc__thr *prev_self;	/* the test thread's record before qc_h_new */
	_Atomic uint32_t epoch; /* bumped on every park, exit, spawn, move */
	_Atomic uint32_t epoch_waiters;
	bool advancing;	     /* a thread is moving the clock */
	qc_time quiet_limit; /* auto-advance stops here (expect_quiet) */
	bool cancelled;	     /* qc_h_cancel was called */
	qc_time cancel_time, cancel_real;
	bool abandoned;
	qc_h *abandoned_next;
	uint32_t ncreated; /* threads tracked so far (qc__thr.order) */

	char **ignore;
	size_t nignore;

	qc__buf report; /* the last failure report */
	int last_verdict;
	enum qc__why last_why;

	/* Baselines taken at qc_h_new (leaks.c). */
	pid_t *base_tids;
	size_t nbase_tids;
	int *base_fds;
	size_t nbase_fds;
	pid_t *base_children;
	size_t nbase_children;
	/* fds quiesce itself opened while reporting (the symbolizer's
	 * files); fixed storage: noting them must work out of memory. */
	int own_fds[QC_OWN_FDS];
	size_t nown_fds;
	qc__heap *heap;		  /* NULL: no heap delta (ENOTSUP) */
	unsigned long vg_sure;	  /* valgrind: definitely+indirectly lost
				     bytes at the baseline */
	const qc_ctx **base_ctxs; /* real clock: contexts before qc_h_new */
	size_t nbase_ctxs;
	bool base_ctxs_oom; /* base_ctxs is incomplete: qc_h_new fails */
	/* Allocated by qc_h_new, so that qc_h_free never needs memory to
	 * keep a clock that lost contexts live on (harness.c). */
	struct qc__kept_clock *kept;

	qc__wrong wrong[QC_MAX_WRONG];
	size_t nwrong, nwrong_total;

	qc__event *ev; /* ring of QC_EVENTS */
	uint64_t nev;  /* events ever recorded */
};

/* ------------------------------------------------------------ globals */

extern pthread_mutex_t qc__g_mu;
extern qc__thr *qc__g_threads; /* the registry */
extern __attribute__((
    tls_model("initial-exec"))) _Thread_local qc__thr *qc__self_thr;

/* Set while quiesce itself calls pthread_create for a thread it has
 * already wrapped (or must not track): the interposer passes it on. */
extern __attribute__((
    tls_model("initial-exec"))) _Thread_local bool qc__pass_through;

void qc__h_lock(void);
void qc__h_unlock(void);

/* The live harness, or NULL (acquire). */
static inline qc_h *qc__h_get_live(void)
{
	return (qc_h *)atomic_load_explicit(&qc__h_live, memory_order_acquire);
}

/* ------------------------------------------------------- bubble.c */

/* True if r is parked now: its innermost park record's wait has not been
 * decided (harness lock). */
bool qc__thr_parked_locked(const qc__thr *r);
/* True if every bubble thread of h other than except is parked or gone
 * and nobody is moving the clock (harness lock). */
bool qc__h_all_parked_locked(qc_h *h, const qc__thr *except);
/* Bumps h's epoch and wakes its waiters (harness lock). */
void qc__h_bump_locked(qc_h *h);
/* Auto-advance: while every bubble thread is parked and a timer is due
 * within quiet_limit, moves the clock to it (drops the lock meanwhile). */
void qc__h_maybe_advance_locked(qc_h *h);
/* Waits for an epoch change, at most rel ns of real time (drops the lock
 * meanwhile). */
void qc__h_wait_epoch_locked(qc_h *h, qc_duration rel);
/* Moves h's clock to t with the advancing flag set (drops the lock). */
void qc__h_move_clock_locked(qc_h *h, qc_time t);

/* ------------------------------------------------------- track.c */

/* What a tracked thread runs and how it was made. */
typedef struct track_req {
	void *(*fn)(void *); /* start routine (not with spawn_fn) */
	void *arg;
	const void *routine; /* the start routine reports show */
	const char *name;    /* copied; NULL: none */
	qc_ctx *ctx;	     /* held while the thread runs; NULL: none */
	int (*spawn_fn)(qc_ctx *, void *); /* qc_h_spawn */
	void *spawn_arg;
	void *const *frames; /* the creator's stack */
	int nframes, skip;
	bool via_public; /* create through the public pthread_create */
} track_req;

/* Creates the thread q describes, tracked by h. Returns 0, ESRCH (h is no
 * longer live: nothing created), ENOMEM, or pthread_create's error. */
int qc__h_track_create(qc_h *h, pthread_t *t, const pthread_attr_t *attr,
		       const track_req *q);
/* The test thread's record, registered (NULL: ENOMEM). */
qc__thr *qc__h_test_record_new(qc_h *h);
/* Frees the records of h's exited threads and its test thread; those of
 * running threads become left over (harness lock). */
void qc__h_release_records_locked(qc_h *h);
/* True if fn is a sanitizer runtime's own thread; else *routine becomes
 * the user's routine when fn is the runtime's wrapper around it. */
bool qc__h_sanitizer_thread(void *(*fn)(void *), const pthread_attr_t *attr,
			    void *arg, const void **routine);
/* True if a sanitizer runtime is loaded in this process (found once:
 * a runtime is loaded before the program starts, never by dlopen). */
bool qc__h_sanitizer_loaded(void);
/* True if pc lies in a sanitizer runtime. */
bool qc__h_frame_sanitizer(const void *pc);
/* Parks a bubble thread joining a running tracked thread; true if p was
 * registered (then qc__park_end(p) after the join). */
bool qc__h_join_begin(pthread_t t, qc__park *p);
/* After a successful join or detach of t. */
void qc__h_note_joined(pthread_t t, bool detach);

/* ------------------------------------------------------- harness.c, track.c */

/* Tracked threads of h still running (not exited, not ignored). */
size_t qc__h_alive_locked(qc_h *h);
/* Joins the exited, unjoined threads qc_h_spawn made (no lock held). */
void qc__h_reap_spawned(qc_h *h);
/* Resolves qc_h_ignore for h's records (no lock held; symbolizes). */
void qc__h_resolve_ignores(qc_h *h);
/* True if pc lies in quiesce itself (shared build) or a sanitizer
 * runtime: frames to leave out of a creation site. */
bool qc__h_frame_internal(const void *pc);

/* ------------------------------------------------------- report.c */

/* Records an event (harness lock). r may be NULL (the caller's record is
 * used for the tid and name then). */
void qc__h_event_locked(qc_h *h, int kind, const qc__thr *r, const char *what,
			qc_time until);
/* The file name of a path (reports show sites as file.c:12). */
const char *qc__h_base(const char *path);
/* "+1h0m0.5s": t on h's clock as an offset from its start. */
char *qc__h_offset(const qc_h *h, qc_time t, char *buf, size_t n);

/* What reports need of one thread, copied under the harness lock so the
 * report can be built without it (contexts held until freed). */
typedef struct qc__tsnap {
	pid_t tid;
	char *name;
	const void *routine;
	void *frames[QC_CREATE_FRAMES];
	int nframes, skip;
	pid_t creator_tid;
	char *creator_name;
	bool creator_is_test, creator_tracked;
	qc_ctx *ctx, *inherited;
	bool exited, joined, detached, spawned, ignored, leftover;
	bool parked;
	const char *park_what;
	qc_time park_until;
	qc_ctx *park_ctx; /* what the wait ends on (a reference), or NULL */
	const char *foreign_what; /* a wait on another clock, or NULL */
	bool foreign_real;	  /* ... on the real clock */
	qc_time created_real, exited_real;
} qc__tsnap;

/* Snapshots h's records (alive ones only if alive_only); leftover records
 * of abandoned harnesses too if with_leftover (harness lock). Returns 0 or
 * ENOMEM. */
int qc__h_snapshot_locked(qc_h *h, bool alive_only, bool with_leftover,
			  qc__tsnap **out, size_t *n);
void qc__h_snapshot_free(qc__tsnap *s, size_t n);
/* The lines naming one thread: `thread <tid> "<name>"  start routine ...`
 * and `  created at ...`. */
void qc__h_describe_thread(const qc_h *h, const qc__tsnap *s, qc__buf *out);
/* `context: ...` lines for a snapshot (indent "  "). */
void qc__h_describe_ctx(const qc_h *h, const qc__tsnap *s, qc__buf *out);
/* Builds h->report for a failed qc_h_expect_quiet (no lock held). */
void qc__h_build_quiet_report(qc_h *h, int verdict, enum qc__why why,
			      qc_duration bound, qc_time from, bool from_cancel,
			      qc_time limit);
/* This process's open fds, listed without the heap (the report paths
 * must work out of memory); ok is false when the listing failed (more
 * than QC_FDSNAP fds, or /proc unreadable). */
typedef struct qc__fdsnap {
	int fd[QC_FDSNAP];
	size_t n;
	bool ok;
} qc__fdsnap;
void qc__h_fds_snap(qc__fdsnap *s);
/* Remembers the fds open now that were not in before, as quiesce's own
 * (symbolizer files), so leak checks skip them. Does nothing when either
 * listing failed: guessing would hide the test's own fds. */
void qc__h_note_own_fds(qc_h *h, const qc__fdsnap *before);
/* Lists this process's open fds (caller frees with qc_census_free). */
int qc__h_list_fds(int **fds, size_t *n);

#endif /* QC_HARNESS_IMPL_H */
