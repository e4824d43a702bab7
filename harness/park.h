/*
 * park.h: how quiesce's waits tell a live harness that a thread is parked,
 * and the harness's other hooks into the core (implemented in harness.c).
 *
 * A bubble thread is parked while it waits in a quiesce wait on a context or
 * clock of its harness. A parked record describes when the wait ends: once
 * ctx is done, once the clock reaches until, or once *word != expect. The
 * harness evaluates that predicate itself, so a thread whose wake-up has
 * been decided (the context is done, the time has come, the word changed)
 * never counts as parked, even before it runs again.
 */
#ifndef QC_PARK_H
#define QC_PARK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

typedef struct qc__park {
	const char *what;  /* the quiesce call, e.g. "qc_sleep" */
	qc_clock *clock;   /* the clock the wait's times are on */
	const qc_ctx *ctx; /* ends once done; NULL: none */
	qc_time until;	   /* ends once now >= until; QC_TIME_NEVER */
	const void *word;  /* ends once *(uint32_t *)word != expect */
	uint32_t expect;
	struct qc__park *priv_next; /* the harness's own use */
} qc__park;

/* Non-NULL while a harness is live: one relaxed load on fast paths. */
extern void *_Atomic qc__h_live;

/*
 * qc__park_begin: if the calling thread is in the bubble of the harness that
 * owns p->clock, records it as parked and, when that leaves every bubble
 * thread parked with a timer pending (and time is not manual), advances the
 * clock to that timer before returning. The caller then blocks (futex) and
 * calls qc__park_end when its wait is over. No-op outside a bubble.
 */
void qc__park_begin(qc__park *p);
void qc__park_end(qc__park *p);

/* qc__h_note_derive: called when a context is derived, to catch the wrong
 * parent (a bubble thread deriving from qc_background() or from a context
 * of no harness). Only when qc__h_live is set. */
void qc__h_note_derive(const qc_ctx *parent, const qc_ctx *child);

/*
 * qc__thread_start: starts fn(arg) on a new joinable thread through
 * pthread_create (so a live harness tracks it like any other), naming it for
 * reports (shown whole there; truncated to 15 bytes for the OS) and noting
 * the context it runs with (borrowed: the caller keeps it alive while the
 * thread runs). Used by qc_h_spawn and groups. Returns 0 or an errno.
 */
int qc__thread_start(pthread_t *t, const char *name, qc_ctx *ctx,
		     void *(*fn)(void *), void *arg);

/* qc__thread_create_untracked: the real pthread_create, bypassing the
 * harness's interposer (library threads are never tracked). */
int qc__thread_create_untracked(pthread_t *t, const pthread_attr_t *attr,
				void *(*fn)(void *), void *arg);

/* qc__next_symbol: the definition of name that quiesce's own interposer
 * of it must call: dlsym(RTLD_NEXT), or a sanitizer runtime's interceptor
 * when that runtime is linked into the same object as quiesce (a static
 * link with clang's static runtime), where ours shadowed it. */
void *qc__next_symbol(const char *name);

/* qc__thread_create_internal: starts one of quiesce's own threads: through
 * the normal pthread_create lookup (so a sanitizer's interceptor sees it),
 * never tracked by a harness. */
int qc__thread_create_internal(pthread_t *t, const pthread_attr_t *attr,
			       void *(*fn)(void *), void *arg);

#endif /* QC_PARK_H */
