/*
 * quiesce/ctx.h: Go-style contexts: cancellation, deadlines and values.
 *
 * A context is done once it is cancelled, its deadline passes on its clock,
 * or its parent is done; then qc_err returns ECANCELED or ETIMEDOUT forever.
 * Semantics follow Go's context package: cancelling a parent cancels every
 * descendant with the same error and cause; a child's deadline is the earlier
 * of its own and its parent's; deriving from a done parent gives a done
 * child; a cancelled child leaves its parent at once.
 *
 * Ownership: constructors return a context holding one user reference; the
 * caller drops it with qc_release (qc_retain adds one). Releasing never
 * cancels. A child holds its parent alive internally. Roots (qc_background,
 * qc_clock_root) are borrowed and never released by the caller.
 *
 * Thread safety: every function is thread-safe. Only qc_wait blocks;
 * after-functions run on the thread that made the context done, with no
 * quiesce lock held.
 *
 * Creation sites: the constructors are also macros that pass the caller's
 * __FILE__, __LINE__ and function as a pointer to a static record, for leak
 * reports. Call (qc_with_cancel)(p) to bypass the macro.
 */
#ifndef QUIESCE_CTX_H
#define QUIESCE_CTX_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include <quiesce/api.h>
#include <quiesce/clock.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

typedef struct qc_ctx qc_ctx;
typedef struct qc_after qc_after;

/* qc_site: where something was created. Static storage; never freed. */
typedef struct qc_site {
	const char *file;
	int line;
	const char *func;
} qc_site;

/* QC_SITE(): a pointer to a static qc_site for the line it appears on. */
#define QC_SITE()                                                        \
	__extension__({                                                  \
		static const qc_site qc__site_rec = {__FILE__, __LINE__, \
						     __func__};          \
		&qc__site_rec;                                           \
	})

/* qc_background: the real clock's root: never done, never freed. */
QC_API qc_ctx *qc_background(void);

/* qc_clock_root: clock c's never-done root, the same pointer on every call,
 * borrowed, freed with the clock. NULL with EINVAL for NULL c. */
QC_API qc_ctx *qc_clock_root(qc_clock *c);

/*
 * qc_with_cancel: a child of parent that is done when qc_cancel is called on
 * it or parent is done. Returns the child (caller releases with qc_release),
 * or NULL with errno EINVAL (parent NULL) or ENOMEM.
 */
QC_API qc_ctx *qc_with_cancel(qc_ctx *parent);
QC_API qc_ctx *qc_with_cancel_at(qc_ctx *parent, const qc_site *site);

/*
 * qc_with_deadline: as qc_with_cancel, and also done with ETIMEDOUT when
 * parent's clock reaches deadline. A deadline at or before now gives a child
 * already done with ETIMEDOUT; if parent's deadline is earlier, the child
 * keeps the parent's. Errors: EINVAL, ENOMEM.
 */
QC_API qc_ctx *qc_with_deadline(qc_ctx *parent, qc_time deadline);
QC_API qc_ctx *qc_with_deadline_at(qc_ctx *parent, qc_time deadline,
				   const qc_site *site);

/*
 * qc_with_timeout: qc_with_deadline(parent, now + timeout) on parent's clock;
 * a zero or negative timeout gives a child already done with ETIMEDOUT; an
 * overflowing deadline saturates at QC_TIME_NEVER. Errors: EINVAL, ENOMEM.
 */
QC_API qc_ctx *qc_with_timeout(qc_ctx *parent, qc_duration timeout);
QC_API qc_ctx *qc_with_timeout_at(qc_ctx *parent, qc_duration timeout,
				  const qc_site *site);

/*
 * qc_with_value: a child carrying value under key (compared by address). It
 * has no cancellation of its own: it is done exactly when parent is.
 * value is borrowed: it must outlive the context. Errors: EINVAL, ENOMEM.
 */
QC_API qc_ctx *qc_with_value(qc_ctx *parent, const void *key, void *value);
QC_API qc_ctx *qc_with_value_at(qc_ctx *parent, const void *key, void *value,
				const qc_site *site);

/*
 * qc_without_cancel: a child that is never done, has no deadline, and still
 * sees parent's values. Errors: EINVAL, ENOMEM.
 */
QC_API qc_ctx *qc_without_cancel(qc_ctx *parent);
QC_API qc_ctx *qc_without_cancel_at(qc_ctx *parent, const qc_site *site);

#define qc_with_cancel(p)      qc_with_cancel_at((p), QC_SITE())
#define qc_with_deadline(p, d) qc_with_deadline_at((p), (d), QC_SITE())
#define qc_with_timeout(p, d)  qc_with_timeout_at((p), (d), QC_SITE())
#define qc_with_value(p, k, v) qc_with_value_at((p), (k), (v), QC_SITE())
#define qc_without_cancel(p)   qc_without_cancel_at((p), QC_SITE())

/*
 * qc_cancel: makes ctx and all its descendants done with ECANCELED, disarms
 * its timer and removes it from its parent. Cancelling a done context does
 * nothing. Returns 0, or EINVAL for NULL or a context with no cancellation
 * of its own (a root, a value or a without_cancel context). Runs the
 * after-functions it triggers before returning.
 */
QC_API int qc_cancel(qc_ctx *ctx);

/* qc_cancel_cause: as qc_cancel, recording cause (an errno-like int) for
 * qc_cause; cause 0 is plain qc_cancel. The first cancel wins. */
QC_API int qc_cancel_cause(qc_ctx *ctx, int cause);

/* qc_retain: adds a user reference; returns ctx (NULL with EINVAL for NULL,
 * EOVERFLOW past 65535 user references). Roots are returned unchanged. */
QC_API qc_ctx *qc_retain(qc_ctx *ctx);

/*
 * qc_release: drops a user reference; never cancels. Accepts NULL and roots
 * (no-op). The context is freed when its last reference of any kind (user or
 * child) is gone, which disarms its timer and closes its done fd. Debug
 * builds abort on a release with no user reference left, naming the
 * context's creation site.
 */
QC_API void qc_release(qc_ctx *ctx);

/*
 * qc_err: 0 while ctx is not done, then ECANCELED or ETIMEDOUT; EINVAL for
 * NULL. One atomic load (acquire): the first member of every context is its
 * error, an int, so the inline form below reads it directly.
 */
QC_API int qc_err(const qc_ctx *ctx);
static inline int qc__err_inline(const qc_ctx *ctx)
{
	if (!ctx)
		return EINVAL;
	return __atomic_load_n((const int *)(const void *)ctx,
			       __ATOMIC_ACQUIRE);
}
#define qc_err(ctx) qc__err_inline(ctx)

/* qc_cause: the cause given to qc_cancel_cause, else qc_err (0 while not
 * done); EINVAL for NULL. */
QC_API int qc_cause(const qc_ctx *ctx);

/* qc_deadline: true and the effective deadline in *deadline (if non-NULL)
 * when ctx has one; false for NULL or none. */
QC_API bool qc_deadline(const qc_ctx *ctx, qc_time *deadline);

/* qc_value: the value stored under key by the nearest qc_with_value
 * ancestor (or ctx itself); NULL for NULL ctx or none. */
QC_API void *qc_value(const qc_ctx *ctx, const void *key);

/* qc_ctx_clock: the clock ctx lives on; NULL for NULL. */
QC_API qc_clock *qc_ctx_clock(const qc_ctx *ctx);

/*
 * qc_done_fd: an eventfd that becomes readable once ctx is done, for poll().
 * Created lazily, the same for the context's life, owned by ctx (never close
 * it), closed at the final release. A value context shares its parent's.
 * Returns -1 with errno EINVAL for NULL or a context that can never be done,
 * or EMFILE/ENFILE/ENOMEM from eventfd().
 */
QC_API int qc_done_fd(qc_ctx *ctx);

/* qc_wait: blocks until ctx is done and returns qc_err(ctx); EINVAL for NULL
 * or for a context that can never be done (it would block forever). Inside a
 * harness it parks the caller. */
QC_API int qc_wait(qc_ctx *ctx);

/*
 * qc_after_func: arranges for fn(arg) to run once ctx is done: exactly once,
 * in registration order, on the thread that made ctx done, after the
 * cancellation walk and with no quiesce lock held. On a done context fn runs
 * before this returns. Returns a handle valid while ctx lives (owned by ctx),
 * or NULL with EINVAL (NULL ctx or fn) or ENOMEM. On a context that can never
 * be done the handle's qc_after_stop returns true.
 */
QC_API qc_after *qc_after_func(qc_ctx *ctx, void (*fn)(void *), void *arg);

/* qc_after_stop: keeps fn from running; true if it did so, false if fn has
 * run or started, a second stop, or NULL. */
QC_API bool qc_after_stop(qc_after *a);

/* qc_ctx_set_name: names ctx for reports and dumps (copied; NULL clears).
 * Out of memory, the old name stays and errno is ENOMEM. */
QC_API void qc_ctx_set_name(qc_ctx *ctx, const char *name);

/* qc_ctx_name: ctx's name, or NULL if unnamed. Valid while ctx lives and its
 * name is not changed. */
QC_API const char *qc_ctx_name(const qc_ctx *ctx);

/* qc_ctx_site: where ctx was created (NULL for roots or the bypassed
 * constructors). */
QC_API const qc_site *qc_ctx_site(const qc_ctx *ctx);

/* qc_ctx_describe: one line about ctx ("\"name\" (timeout at +5s, created at
 * f.c:12 in fn), not done") into buf of size n; returns buf. */
QC_API char *qc_ctx_describe(const qc_ctx *ctx, char *buf, size_t n);

/* qc_ctx_dump: ctx's subtree, one line each, indented by depth, to out. */
QC_API void qc_ctx_dump(const qc_ctx *ctx, FILE *out);

/* QC_DEFER: declaration attribute that cancels and releases the context at
 * scope exit: QC_DEFER qc_ctx *c = qc_with_timeout(p, d); */
static inline void qc__defer_cleanup(qc_ctx **ctx)
{
	if (*ctx) {
		(void)qc_cancel(*ctx);
		qc_release(*ctx);
	}
}
#define QC_DEFER __attribute__((cleanup(qc__defer_cleanup)))

QC_END_DECLS

#endif /* QUIESCE_CTX_H */
