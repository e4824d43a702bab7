/*
 * quiesce/clock.h: the real clock and virtual clocks.
 *
 * A clock tells the time and fires timers (the deadlines of contexts and the
 * wake-ups of quiesce's sleeps). The real clock follows the process's
 * CLOCK_MONOTONIC; its timers are fired by one library thread, created
 * lazily, never tracked by a harness and joined at process exit. A virtual
 * clock moves only when told to (qc_clock_advance, qc_clock_set) or, inside a
 * harness, when every thread of its bubble is parked; its timers fire on the
 * thread that moves it.
 *
 * Thread safety: every function is thread-safe; none blocks except the
 * callbacks run by qc_clock_advance/qc_clock_set.
 */
#ifndef QUIESCE_CLOCK_H
#define QUIESCE_CLOCK_H

#include <stdbool.h>
#include <stddef.h>

#include <quiesce/api.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

typedef struct qc_clock qc_clock;

/* qc_clock_real: the process-wide real clock (CLOCK_MONOTONIC). Never NULL,
 * never freed; qc_clock_free on it returns EINVAL. */
QC_API qc_clock *qc_clock_real(void);

/*
 * qc_clock_virtual_new: a new virtual clock whose time is exactly start.
 * Returns the clock (caller frees with qc_clock_free), or NULL with errno
 * ENOMEM.
 */
QC_API qc_clock *qc_clock_virtual_new(qc_time start);

/*
 * qc_clock_free: frees a virtual clock and its root context. Accepts NULL
 * (returns 0). Returns EINVAL for the real clock, EBUSY while contexts
 * derived from its root or timers are alive on it (nothing is freed).
 */
QC_API int qc_clock_free(qc_clock *c);

/* qc_now: the clock's current time; for NULL, 0. */
QC_API qc_time qc_now(const qc_clock *c);

/* qc_clock_is_virtual: true for a virtual clock, false otherwise. */
QC_API bool qc_clock_is_virtual(const qc_clock *c);

/*
 * qc_clock_advance: moves a virtual clock forward by d, timer by timer: for
 * each timer due by the new time, in deadline order (ties: arming order), it
 * sets the time to that deadline and fires the timer; timers armed by those
 * callbacks fire too if due; then the time becomes start + d. When it
 * returns, every context whose deadline has passed is done. It does not wait
 * for woken threads to run. Returns 0, or EINVAL for NULL, the real clock or
 * d < 0. Blocks only for the after-functions it runs.
 */
QC_API int qc_clock_advance(qc_clock *c, qc_duration d);

/* qc_clock_set: as qc_clock_advance, up to t. EINVAL if t is before now. */
QC_API int qc_clock_set(qc_clock *c, qc_time t);

/*
 * qc_clock_next_timer: the deadline of the earliest armed timer into *when.
 * Returns 0, ENOENT when none is armed, EINVAL for NULL arguments.
 */
QC_API int qc_clock_next_timer(const qc_clock *c, qc_time *when);

/* qc_clock_timers: the number of armed timers (0 for NULL). */
QC_API size_t qc_clock_timers(const qc_clock *c);

/* qc_clock_live_contexts: the number of contexts alive on the clock, its
 * never-done root excluded (0 for NULL). */
QC_API size_t qc_clock_live_contexts(const qc_clock *c);

QC_END_DECLS

#endif /* QUIESCE_CLOCK_H */
