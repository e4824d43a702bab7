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

/* qc_group_new: a group whose context is a cancelable child of parent.
 * Returns it (free with qc_group_free), or NULL with EINVAL or ENOMEM. */
QC_API qc_group *qc_group_new(qc_ctx *parent);

/* qc_group_ctx: the group's context (borrowed; NULL for NULL). */
QC_API qc_ctx *qc_group_ctx(qc_group *g);

/* qc_group_set_limit: at most n functions run at once (n <= 0: no limit).
 * Returns 0, EINVAL (NULL), EBUSY once a function was started. */
QC_API int qc_group_set_limit(qc_group *g, int n);

/*
 * qc_group_go: runs fn(qc_group_ctx(g), arg) on a new thread named name
 * (copied; NULL: "group"). Under a limit it first waits for a free slot
 * (parked inside a harness). Returns 0, EINVAL (NULL g or fn, or after
 * qc_group_wait returned), or pthread_create's error.
 */
QC_API int qc_group_go(qc_group *g, const char *name,
		       int (*fn)(qc_ctx *ctx, void *arg), void *arg);

/* qc_group_wait: waits for every function to return, cancels the group's
 * context, and returns the first non-zero result (0 if none). EINVAL for
 * NULL. */
QC_API int qc_group_wait(qc_group *g);

/* qc_group_free: frees g. Accepts NULL (0). EBUSY if functions were started
 * and qc_group_wait has not returned. */
QC_API int qc_group_free(qc_group *g);

QC_END_DECLS

#endif /* QUIESCE_GROUP_H */
