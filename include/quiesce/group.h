/*
 * quiesce/group.h: Go's errgroup: run functions on threads with a shared
 * context; the first non-zero return cancels that context with the error as
 * cause; wait joins them all and returns the first error.
 *
 * Threads started by a group are tracked by a live harness like any other
 * and carry their names into its reports.
 *
 * Thread safety: qc_group_go and qc_group_ctx may be called from any thread;
 * qc_group_wait from one thread; qc_group_free once, after wait.
 */
#ifndef QUIESCE_GROUP_H
#define QUIESCE_GROUP_H

#include <quiesce/api.h>
#include <quiesce/ctx.h>

QC_BEGIN_DECLS

typedef struct qc_group qc_group;

/*
 * qc_group_new: a group whose context is a cancelable child of parent
 * (recorded as created at the caller's line, like the ctx.h constructors).
 * Returns it (free with qc_group_free, which releases the context), or NULL
 * with EINVAL (NULL parent) or ENOMEM. Thread safety: safe; does not block.
 */
QC_API qc_group *qc_group_new(qc_ctx *parent);
QC_API qc_group *qc_group_new_at(qc_ctx *parent, const qc_site *site);
#define qc_group_new(p) qc_group_new_at((p), QC_SITE())

/* qc_group_ctx: the group's context (borrowed: valid until qc_group_free;
 * NULL for NULL). It is cancelled by the first error and by qc_group_wait.
 */
QC_API qc_ctx *qc_group_ctx(qc_group *g);

/* qc_group_set_limit: at most n functions run at once (n <= 0: no limit).
 * Returns 0, EINVAL (NULL), EBUSY once qc_group_go was called. */
QC_API int qc_group_set_limit(qc_group *g, int n);

/*
 * qc_group_go: runs fn(qc_group_ctx(g), arg) on a new joinable thread named
 * name (copied; NULL: "group"). fn's non-zero return is an error: the first
 * one cancels the group's context with it as cause (qc_cause). Under a
 * limit it first waits for a free slot, whatever the context (parked inside
 * a harness, as "qc_group_go"). May be called from the group's own
 * functions, also while another thread is in qc_group_wait. Returns 0,
 * EINVAL (NULL g or fn, or qc_group_wait has returned), ENOMEM, or
 * pthread_create's error (EAGAIN). Thread safety: safe; blocks only for a
 * slot.
 */
QC_API int qc_group_go(qc_group *g, const char *name,
		       int (*fn)(qc_ctx *ctx, void *arg), void *arg);

/* qc_group_wait: waits for every function to return (parked inside a
 * harness, as "qc_group_wait"), joins their threads, cancels the group's
 * context, and returns the first non-zero result (0 if none). Calling it
 * again returns the same. EINVAL for NULL. Thread safety: one thread at a
 * time; blocks. */
QC_API int qc_group_wait(qc_group *g);

/* qc_group_free: frees g and releases its context. Accepts NULL (0). EBUSY
 * (nothing freed) if functions were started and qc_group_wait has not
 * returned. Thread safety: once, with no other call on g. */
QC_API int qc_group_free(qc_group *g);

QC_END_DECLS

#endif /* QUIESCE_GROUP_H */
