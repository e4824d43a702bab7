/*
 * timeshim.h: the real clock-reading functions, bypassing quiesce's own
 * interposed definitions (timeshim.c), for the library's internal use.
 */
#ifndef QC_TIMESHIM_H
#define QC_TIMESHIM_H

#include <stdbool.h>
#include <time.h>

#include <quiesce/clock.h>

/* The process's clock_gettime: the first in lookup order that is not
 * quiesce's (libfaketime's when it is preloaded, whether libquiesce is
 * linked statically or shared, else libc's), never virtual: a sanitizer's
 * interceptor that calls quiesce's definition back reaches libc. */
int qc__real_clock_gettime(clockid_t id, struct timespec *ts);

/* True when the calling code's time functions resolve to quiesce's
 * definitions (a static link can drop them; a preloaded libfaketime comes
 * first). Probes by calling time() through the normal lookup: only an
 * entry into quiesce's time() counts, not another library's time() that
 * reaches quiesce's clock_gettime as its "real" one. */
bool qc__time_intercept_available(void);

/* Implemented by the harness: the virtual clock the calling thread's time
 * functions must read, or NULL (not a bubble thread of the live harness,
 * or it was made without intercept_time). Threads from before qc_h_new,
 * left over from an abandoned harness, or started untracked get NULL. */
qc_clock *qc__h_time_clock(void);

#endif /* QC_TIMESHIM_H */
