/*
 * realcall.c: the real pthread_create, for the library's own threads.
 *
 * libquiesce defines pthread_create to track the threads of code under test
 * (harness.c). Its own threads (the real clock's timer thread) must never be
 * tracked, so they go straight to the next definition in the lookup order:
 * libc's, or a sanitizer runtime's interceptor when one comes first.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "park.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
			 void *);

static create_fn real_create;
static pthread_once_t real_create_once = PTHREAD_ONCE_INIT;

static void find_real_create(void)
{
	/* POSIX guarantees dlsym's object pointer converts to a function
	 * pointer; ISO C does not, hence the copy. */
	void *sym = dlsym(RTLD_NEXT, "pthread_create");
	memcpy(&real_create, &sym, sizeof real_create);
}

int qc__thread_create_untracked(pthread_t *t, const pthread_attr_t *attr,
				void *(*fn)(void *), void *arg)
{
	pthread_once(&real_create_once, find_real_create);
	if (!real_create)
		return ENOSYS;
	return real_create(t, attr, fn, arg);
}
