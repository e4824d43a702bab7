/*
 * buf.h: a growable text buffer for reports. Appends never fail visibly: on
 * allocation failure the buffer keeps what it had and marks itself
 * truncated, so a report under memory pressure is short, never a crash.
 */
#ifndef QC_BUF_H
#define QC_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct qc__buf {
	char *s; /* NUL-terminated once anything was appended */
	size_t len, cap;
	bool truncated; /* an append did not fit in memory */
} qc__buf;

#define QC_BUF_INIT               \
	{                         \
		NULL, 0, 0, false \
	}

void qc__buf_printf(qc__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void qc__buf_puts(qc__buf *b, const char *s);
/* The text so far ("" when empty); valid until the next append or free. */
const char *qc__buf_str(const qc__buf *b);
void qc__buf_reset(qc__buf *b);
void qc__buf_free(qc__buf *b);
/* Appends s as the body of a JSON string (no quotes added). */
void qc__buf_json_str(qc__buf *b, const char *s);

#endif /* QC_BUF_H */
