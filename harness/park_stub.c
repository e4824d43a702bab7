/*
 * park_stub.c: TODO(#4) the harness replaces this file (harness.c defines
 * these hooks). Until then no thread is ever in a bubble.
 */
#include <string.h>

#include "park.h"

void *_Atomic qc__h_live;

void qc__park_begin(qc__park *p)
{
	(void)p;
}

void qc__park_end(qc__park *p)
{
	(void)p;
}

void qc__h_note_derive(const qc_ctx *parent, const qc_ctx *child)
{
	(void)parent;
	(void)child;
}

int qc__thread_start(pthread_t *t, const char *name, qc_ctx *ctx,
		     void *(*fn)(void *), void *arg)
{
	(void)ctx;
	int e = pthread_create(t, NULL, fn, arg);
	if (e == 0 && name) {
		char os[16];
		strncpy(os, name, 15);
		os[15] = '\0';
		pthread_setname_np(*t, os);
	}
	return e;
}
