/*
 * heap.h: the heap bytes one test leaked, as the difference between two
 * leak searches of the running process (never installed).
 *
 * Under valgrind memcheck the searches are its client requests (a quick
 * leak check, then its counters); in a build with AddressSanitizer or
 * LeakSanitizer, LeakSanitizer's recoverable leak check. A plain build, or
 * valgrind running another tool (helgrind, drd), has neither: the
 * functions say ENOTSUP.
 *
 * Thread safety: each function is thread-safe, but a leak search counts the
 * whole process: allocations that other threads lose between the baseline
 * and the delta count too. Neither blocks beyond the search itself (which
 * stops every thread under LeakSanitizer).
 */
#ifndef QC_HEAP_H
#define QC_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include <quiesce/api.h>

#include "buf.h"

typedef struct qc__heap qc__heap;

/*
 * qc__heap_baseline: searches for leaks now and remembers the totals in
 * *out (caller frees with qc__heap_free). Returns 0, ENOTSUP (neither
 * valgrind memcheck nor LeakSanitizer is active, or LeakSanitizer's
 * detect_leaks is off), EINVAL (out NULL) or ENOMEM. *out is written only
 * on success.
 */
int qc__heap_baseline(qc__heap **out);

/*
 * qc__heap_delta: searches again and reports the growth since base: bytes
 * and blocks definitely or indirectly lost (valgrind; "possibly lost" is
 * not counted: in a running process it is mostly glibc's per-thread
 * blocks, pointed into by live or cached thread stacks) or leaked
 * (LeakSanitizer). A shrink counts as zero. When anything leaked, appends
 * one or more lines to details (may be NULL; each line indented by four
 * spaces, to sit under a report's finding) saying how much and where the
 * tool printed its own report. LeakSanitizer without totals (its report
 * went to a log_path) gives 0 bytes and 1 block when there were no leaks
 * before and are now: test bytes || blocks, not bytes alone. Returns 0,
 * EINVAL (NULL base or counts), or ENOTSUP (base was made under another
 * tool, which cannot happen in practice). Counts are written only on
 * success.
 */
int qc__heap_delta(qc__heap *base, size_t *leaked_bytes, size_t *leaked_blocks,
		   qc__buf *details);

/* qc__heap_free: frees base; accepts NULL. */
void qc__heap_free(qc__heap *base);

/* qc__on_memcheck: true if the process runs under valgrind's memcheck (not
 * merely under valgrind: helgrind and drd count no leaks). Exported for the
 * library's own suites. Thread-safe; does not block. */
QC_API bool qc__on_memcheck(void);

#endif /* QC_HEAP_H */
