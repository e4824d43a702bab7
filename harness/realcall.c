/*
 * realcall.c: the real pthread_create, for the library's own threads.
 *
 * libquiesce defines pthread_create to track the threads of code under test
 * (harness.c). qc__thread_create_untracked is the next definition after
 * ours (libc's): what the interposer itself calls. The library's own threads
 * (the real clock's timer thread) start through qc__thread_create_internal,
 * which goes through the normal lookup with the pass-through flag set, so
 * that a sanitizer runtime whose interceptor comes first still sees the
 * thread (TSan must know every thread that runs instrumented code) and our
 * interposer hands it on untracked.
 *
 * A sanitizer runtime linked statically into the executable (clang's
 * default) defines pthread_create in the same object as a static
 * libquiesce: ours wins the link, RTLD_NEXT then skips the runtime's
 * interceptor, and the runtime would never learn of the thread (LSan would
 * not scan its stack, TSan would not know it). So when the interceptor sits
 * in our own object, the next definition is the interceptor itself (it
 * calls libc's, found by the runtime on its own).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "annotate.h"
#include "harness_impl.h"
#include "park.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
			 void *);

static create_fn real_create;
static pthread_once_t real_create_once = PTHREAD_ONCE_INIT;

void *qc__next_symbol(const char *name)
{
	char icpt_name[96];
	void *sym = dlsym(RTLD_NEXT, name);
	snprintf(icpt_name, sizeof icpt_name, "__interceptor_%s", name);
	void *icpt = dlsym(RTLD_DEFAULT, icpt_name);
	Dl_info mine, theirs;
	if (icpt && dladdr((void *)(uintptr_t)qc__next_symbol, &mine) &&
	    dladdr(icpt, &theirs) && mine.dli_fbase == theirs.dli_fbase)
		sym = icpt;
	return sym;
}

static void find_real_create(void)
{
	/* POSIX guarantees dlsym's object pointer converts to a function
	 * pointer; ISO C does not, hence the copy. */
	void *sym = qc__next_symbol("pthread_create");
	memcpy(&real_create, &sym, sizeof real_create);
	QC_ANN_ONCE_DONE(&real_create_once);
}

int qc__thread_create_untracked(pthread_t *t, const pthread_attr_t *attr,
				void *(*fn)(void *), void *arg)
{
	QC_ONCE(&real_create_once, find_real_create);
	if (!real_create)
		return ENOSYS;
	return real_create(t, attr, fn, arg);
}

int qc__thread_create_internal(pthread_t *t, const pthread_attr_t *attr,
			       void *(*fn)(void *), void *arg)
{
	qc__pass_through = true;
	int e = pthread_create(t, attr, fn, arg);
	qc__pass_through = false;
	return e;
}
