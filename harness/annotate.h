/*
 * annotate.h: tells helgrind and drd about quiesce's own synchronisation,
 * which they cannot see: the futex lock of block.h and the handoffs made
 * through C11 atomics. Both tools understand pthread objects only; without
 * these annotations every access under a quiesce lock is a "possible data
 * race".
 *
 * The macros are valgrind client requests (<valgrind/helgrind.h>). Outside
 * valgrind each is a few register instructions that change nothing; with
 * NVALGRIND defined they compile to nothing. drd reads helgrind's requests
 * for the ones used here (user read-write locks, happens-before tags, and
 * untracked ranges share their request codes), so one header serves both
 * tools.
 *
 * Rules: annotate only a real synchronisation, and at its real place: a
 * lock where the lock is taken and dropped; QC_ANN_HAPPENS_BEFORE just
 * before the store (release or stronger) that publishes, and
 * QC_ANN_HAPPENS_AFTER just after the load (acquire or stronger) that has
 * seen it. QC_ANN_ATOMIC exempts one atomic object from race checking: the
 * tools count its plain atomic loads and stores as racing accesses, though
 * C11 defines none (every access to an _Atomic object is atomic). It hides
 * nothing else, so the ordering an atomic makes for the data around it must
 * still be annotated with the happens-before pair.
 *
 * Nothing here may appear in a public header: qc_err() and the other
 * inline hot paths stay free of client requests.
 *
 * Cost: a client request is a dozen instructions even outside valgrind,
 * and these sit on every lock and context operation (+147 instructions per
 * create+cancel, +34%). So they exist only where QC_ANNOTATE is defined:
 * the library built with -DQC_ANNOTATE=ON (implied by QC_HELGRIND, the
 * helgrind preset) and the suites' support code. Run helgrind or drd over
 * code that uses quiesce with such a build.
 */
#ifndef QC_ANNOTATE_H
#define QC_ANNOTATE_H

#include <pthread.h>

#ifdef QC_ANNOTATE
#include <valgrind/helgrind.h>

/* The futex lock (block.h), modelled as a read-write lock held for
 * writing. Creation is optional for a lock that starts zeroed (the tools
 * create it on first acquisition); DESTROY must precede freeing the memory
 * of a lock that was created or used, so that the tools forget it. */
#define QC_ANN_LOCK_CREATE(l)	ANNOTATE_RWLOCK_CREATE(l)
#define QC_ANN_LOCK_DESTROY(l)	ANNOTATE_RWLOCK_DESTROY(l)
#define QC_ANN_LOCK_ACQUIRED(l) ANNOTATE_RWLOCK_ACQUIRED(l, 1)
#define QC_ANN_LOCK_RELEASED(l) ANNOTATE_RWLOCK_RELEASED(l, 1)

/* A handoff through the atomic object at obj (the tag is its address). */
#define QC_ANN_HAPPENS_BEFORE(obj) ANNOTATE_HAPPENS_BEFORE(obj)
#define QC_ANN_HAPPENS_AFTER(obj)  ANNOTATE_HAPPENS_AFTER(obj)

/* pthread_once orders its init routine before every return from it, but
 * neither tool models that (glibc builds it from atomics and a futex):
 * QC_ONCE calls pthread_once and consumes the edge that the init routine
 * publishes as its last act with QC_ANN_ONCE_DONE(once). */
#define QC_ONCE(once, init)                         \
	do {                                        \
		(void)pthread_once((once), (init)); \
		QC_ANN_HAPPENS_AFTER(once);         \
	} while (0)
#define QC_ANN_ONCE_DONE(once) QC_ANN_HAPPENS_BEFORE(once)

/* A pthread mutex that fork's child handler re-initialises while the
 * forking thread holds it (taken by the prepare handler): the child's fresh
 * mutex is free, which helgrind learns from this (else the child's only
 * thread "still holds 1 lock" when it exits). drd ignores it. */
#define QC_ANN_MUTEX_RESET_HELD(mu)                \
	do {                                       \
		VALGRIND_HG_MUTEX_UNLOCK_PRE(mu);  \
		VALGRIND_HG_MUTEX_UNLOCK_POST(mu); \
	} while (0)

/* The atomic object *p is accessed only atomically (see above). Call it
 * once the object exists; heap and stack memory is checked again after it
 * is freed and reused. */
#define QC_ANN_ATOMIC(p) QC_ANN_ATOMIC_RANGE((p), sizeof *(p))
#define QC_ANN_ATOMIC_RANGE(p, n) \
	ANNOTATE_BENIGN_RACE_SIZED((p), (n), "C11 atomics")

#else /* !QC_ANNOTATE: every annotation compiles to nothing (its operands \
       * are still evaluated, so none goes unused) */

#define QC_ANN_LOCK_CREATE(l)	    ((void)(l))
#define QC_ANN_LOCK_DESTROY(l)	    ((void)(l))
#define QC_ANN_LOCK_ACQUIRED(l)	    ((void)(l))
#define QC_ANN_LOCK_RELEASED(l)	    ((void)(l))
#define QC_ANN_HAPPENS_BEFORE(obj)  ((void)(obj))
#define QC_ANN_HAPPENS_AFTER(obj)   ((void)(obj))
#define QC_ONCE(once, init)	    ((void)pthread_once((once), (init)))
#define QC_ANN_ONCE_DONE(once)	    ((void)(once))
#define QC_ANN_MUTEX_RESET_HELD(mu) ((void)(mu))
#define QC_ANN_ATOMIC(p)	    ((void)(p))
#define QC_ANN_ATOMIC_RANGE(p, n)   ((void)(p), (void)(n))

#endif /* QC_ANNOTATE */

#endif /* QC_ANNOTATE_H */
