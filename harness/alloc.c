/*
 * alloc.c: the library's allocator wrapper and fault injection.
 *
 * The countdown is one atomic; when injection is off it costs a relaxed
 * load. Thread-safe.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "annotate.h"

static _Atomic long fail_countdown = -1; /* -1: injection off */
/* Counted with a relaxed load and store, not a locked add (one more
 * store-buffer drain per allocation): exact on one thread, approximate when
 * threads allocate concurrently. */
static _Atomic long alloc_count;

/* Its lost updates are accepted (above), and every access is atomic: no
 * race for helgrind or drd to report (annotate.h). Once, at load time. */
__attribute__((constructor)) static void alloc_annotate(void)
{
	QC_ANN_ATOMIC(&alloc_count);
}

/* True if this allocation must fail. */
static int injected_failure(void)
{
	atomic_store_explicit(
	    &alloc_count,
	    atomic_load_explicit(&alloc_count, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	while (left >= 0) {
		if (left == 0)
			return 1;
		if (atomic_compare_exchange_weak_explicit(
			&fail_countdown, &left, left - 1, memory_order_relaxed,
			memory_order_relaxed))
			return 0;
	}
	return 0;
}

void *qc__malloc(size_t n)
{
	if (injected_failure()) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(n);
}

void *qc__calloc(size_t count, size_t n)
{
	if (injected_failure()) {
		errno = ENOMEM;
		return NULL;
	}
	return calloc(count, n);
}

void *qc__realloc(void *p, size_t n)
{
	if (injected_failure()) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

char *qc__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = qc__malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

void qc__free(void *p)
{
	free(p);
}

void qc__alloc_fail_after(long n)
{
	atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

long qc__alloc_count(void)
{
	return atomic_load(&alloc_count);
}
