/*
 * futex.h: raw futex waits and wakes on 32-bit words, and the raw kernel
 * clock. Raw system calls on purpose: libfaketime cannot fake them, so
 * quiesce's real-time guards stay real under it; and waiting on a context's
 * error word lets one FUTEX_WAKE release every waiter of a context.
 */
#ifndef QC_FUTEX_H
#define QC_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/time.h>

/* Waits while *word == expect, at most rel_ns of real time (< 0: no limit).
 * Returns 0 when woken or the word differs, ETIMEDOUT, or EINTR. */
static inline int qc__futex_wait(const void *word, uint32_t expect,
				 qc_duration rel_ns)
{
	struct timespec ts, *tsp = NULL;
	if (rel_ns >= 0) {
		ts.tv_sec = (time_t)(rel_ns / QC_SECOND);
		ts.tv_nsec = (long)(rel_ns % QC_SECOND);
		tsp = &ts;
	}
	if (syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expect, tsp, NULL,
		    0) == 0)
		return 0;
	return errno == EAGAIN ? 0 : errno;
}

/* Wakes up to n threads waiting on word (INT_MAX: all). */
static inline void qc__futex_wake(const void *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif /* QC_FUTEX_H */
