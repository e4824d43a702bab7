/*
 * quiesce/chan.h: Go-style channels: bounded FIFO queues of fixed-size
 * elements whose blocking operations a context can end.
 *
 * Capacity 0 is a rendezvous: a send returns only once a receiver took the
 * value. After qc_chan_close, sends fail with EPIPE and receivers drain what
 * is buffered, then get EPIPE. A send or receive that fails took nothing and
 * left nothing. Inside a harness, blocked sends, receives and selects park
 * the caller.
 *
 * Thread safety: every function is thread-safe; send, recv and select block.
 */
#ifndef QUIESCE_CHAN_H
#define QUIESCE_CHAN_H

#include <stddef.h>

#include <quiesce/api.h>
#include <quiesce/ctx.h>

QC_BEGIN_DECLS

typedef struct qc_chan qc_chan;

enum { QC_SEND = 1, QC_RECV = 2 };

typedef struct qc_chan_case {
	qc_chan *ch;
	int op;	    /* QC_SEND or QC_RECV */
	void *elem; /* the element to send, or where to receive */
} qc_chan_case;

/* qc_chan_new: a channel of elements of elem_size bytes holding up to
 * capacity of them (0: a rendezvous). Returns it (free with qc_chan_free),
 * or NULL with errno EINVAL (elem_size 0, or elem_size * capacity
 * overflows) or ENOMEM. Thread safety: safe; does not block. */
QC_API qc_chan *qc_chan_new(size_t elem_size, size_t capacity);

/*
 * qc_chan_send: copies *elem (elem_size bytes, borrowed for the call) into
 * ch, waiting for room or, at capacity 0, for a receiver to take it.
 * Returns 0 once the element is in the buffer or with a receiver; EPIPE
 * (closed, also while waiting); qc_err(ctx) if ctx is done at entry or
 * before the element was taken (then nothing was sent); EINVAL (NULL
 * arguments); ENOMEM (ctx could not record the waiter). Thread safety:
 * safe; blocks, and parks the caller inside a harness.
 */
QC_API int qc_chan_send(qc_ctx *ctx, qc_chan *ch, const void *elem);

/* qc_chan_recv: copies the oldest element into *elem (NULL: discard it).
 * Returns 0; EPIPE (closed and drained); qc_err(ctx) if ctx is done at entry
 * or before an element arrived (then nothing was taken); EINVAL (NULL ctx or
 * ch); ENOMEM. Thread safety: safe; blocks, and parks the caller inside a
 * harness. */
QC_API int qc_chan_recv(qc_ctx *ctx, qc_chan *ch, void *elem);

/* qc_chan_try_send / qc_chan_try_recv: as above without waiting: 0, EAGAIN
 * when they would block, EPIPE, or EINVAL (NULL ch, or NULL elem to send).
 * Thread safety: safe; do not block. */
QC_API int qc_chan_try_send(qc_chan *ch, const void *elem);
QC_API int qc_chan_try_recv(qc_chan *ch, void *elem);

/*
 * qc_chan_select: waits until one of the n cases can proceed, performs it
 * and writes its index to *chosen. Returns 0, or EPIPE with *chosen set (a
 * send on a closed channel, or a receive on a closed drained one), or
 * qc_err(ctx) with no case taken (ctx done at entry or while waiting), or
 * EINVAL (NULL ctx, cases or chosen, n == 0 or n > 2^30, a NULL channel, a
 * bad op, a send with a NULL elem), or ENOMEM (n > 8 needs a little heap;
 * or ctx could not record the waiter). When several cases are ready the
 * lowest index wins; while waiting, the first partner to come wins and the
 * other cases are withdrawn untouched. A channel may appear in several
 * cases. *chosen is written only with 0 or EPIPE. Thread safety: safe;
 * blocks, and parks the caller inside a harness.
 */
QC_API int qc_chan_select(qc_ctx *ctx, qc_chan_case *cases, size_t n,
			  size_t *chosen);

/* qc_chan_close: no more sends; every waiting sender and receiver returns
 * EPIPE (receivers wait only on an empty buffer). Closing twice or NULL:
 * no-op. Thread safety: safe; does not block. */
QC_API void qc_chan_close(qc_chan *ch);

/* qc_chan_len: elements buffered now (0 for NULL). Thread safety: safe. */
QC_API size_t qc_chan_len(qc_chan *ch);

/* qc_chan_waiters: the number of operations blocked on ch now (a select
 * counts once per case on ch; 0 for NULL), for tests that must know a
 * thread is waiting before they act. Thread safety: safe; does not block. */
QC_API size_t qc_chan_waiters(qc_chan *ch);

/* qc_chan_free: frees ch. Accepts NULL (0). EBUSY while threads wait on it
 * (nothing freed); threads already woken (by a partner, close or their
 * context) but not yet returned are waited for, briefly. Thread safety:
 * not with other calls on ch except those leaving. */
QC_API int qc_chan_free(qc_chan *ch);

QC_END_DECLS

#endif /* QUIESCE_CHAN_H */
