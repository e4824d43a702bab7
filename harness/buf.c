/*
 * buf.c: growable report text (see buf.h). Not thread-safe: each buffer
 * belongs to one thread at a time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

static bool reserve(qc__buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *s = qc__realloc(b->s, cap);
	if (!s) {
		b->truncated = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void qc__buf_printf(qc__buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void qc__buf_puts(qc__buf *b, const char *s)
{
	size_t n = strlen(s);
	if (!reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

const char *qc__buf_str(const qc__buf *b)
{
	return b->s ? b->s : "";
}

void qc__buf_reset(qc__buf *b)
{
	b->len = 0;
	b->truncated = false;
	if (b->s)
		b->s[0] = '\0';
}

void qc__buf_free(qc__buf *b)
{
	qc__free(b->s);
	*b = (qc__buf)QC_BUF_INIT;
}

void qc__buf_json_str(qc__buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			qc__buf_printf(b, "\\%c", c);
		else if (c == '\n')
			qc__buf_puts(b, "\\n");
		else if (c == '\t')
			qc__buf_puts(b, "\\t");
		else if (c < 0x20)
			qc__buf_printf(b, "\\u%04x", c);
		else
			qc__buf_printf(b, "%c", c);
	}
}
