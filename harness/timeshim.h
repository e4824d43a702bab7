/*
 * timeshim.h: the real clock-reading functions, bypassing quiesce's own
 * interposed definitions (timeshim.c), for the library's internal use.
 */
#ifndef QC_TIMESHIM_H
#define QC_TIMESHIM_H

#include <stdbool.h>
#include <time.h>

#include <quiesce/clock.h>

/* The next clock_gettime in lookup order (libc's, or libfaketime's when it
 * is preloaded), never quiesce's virtual one. */
int qc__real_clock_gettime(clockid_t id, struct timespec *ts);

/* True when the calling code's time functions resolve to quiesce's
 * definitions (a static link can drop them; a preloaded libfaketime comes
 * first). Probed once by calling time() through the normal lookup. */
bool qc__time_intercept_available(void);

/* Implemented by the harness: the virtual clock the calling thread's time
 * functions must read, or NULL (not a bubble thread of a harness with
 * intercept_time). Called only while qc__h_live is set. */
qc_clock *qc__h_time_clock(void);

#endif /* QC_TIMESHIM_H */
