/*
 * alloc.h: the library's one allocator, with fault injection for tests.
 *
 * Every allocation quiesce makes goes through these, so that a test can make
 * the Nth one fail (SQLite's fault simulation) and check that every
 * constructor fails cleanly with ENOMEM, leaving nothing allocated or
 * half-linked.
 */
#ifndef QC_ALLOC_H
#define QC_ALLOC_H

#include <stddef.h>

#include <quiesce/api.h>

void *qc__malloc(size_t n);
void *qc__calloc(size_t count, size_t n);
void *qc__realloc(void *p, size_t n);
char *qc__strdup(const char *s);
void qc__free(void *p);

/*
 * qc__alloc_fail_after: the next n allocations succeed and every one after
 * fails with ENOMEM, until qc__alloc_fail_after(-1) turns injection off.
 * Counts only the calling process. Exported for the library's own suites.
 */
QC_API void qc__alloc_fail_after(long n);

/* qc__alloc_count: allocations made since the process started (for sweeps
 * that need to know how many allocations an operation makes). */
QC_API long qc__alloc_count(void);

#endif /* QC_ALLOC_H */
