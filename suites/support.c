/*
 * support.c: helpers shared by quiesce's own Check suites (see support.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "annotate.h"
#include "heap.h"
#include "support.h"

int qcs_multiplier(void)
{
	const char *s = getenv("QC_TIME_MULTIPLIER");
	if (s && *s) {
		int m = atoi(s);
		if (m > 0)
			return m;
	}
	if (RUNNING_ON_VALGRIND)
		return 20;
	return QCS_SANITIZED ? 5 : 1;
}

bool qcs_on_valgrind(void)
{
	return RUNNING_ON_VALGRIND != 0;
}

bool qcs_on_memcheck(void)
{
	return qc__on_memcheck();
}

bool qcs_thread_checked(void)
{
	return RUNNING_ON_VALGRIND && !qc__on_memcheck();
}

bool qcs_slow(void)
{
	return qcs_multiplier() > 1;
}

qc_time qcs_now(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

qc_duration qcs_guard(qc_duration d)
{
	return d * qcs_multiplier();
}

qc_duration qcs_hang(qc_duration d)
{
	return qcs_guard(d > QCS_HANG_MIN ? d : QCS_HANG_MIN);
}

void qcs_nap(qc_duration d)
{
	struct timespec ts = {(time_t)(d / QC_SECOND), (long)(d % QC_SECOND)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int qcs_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	size_t stack = 256 * 1024;
	const char *s = getenv("QC_THREAD_STACK");
	if (s && *s && atol(s) >= 65536)
		stack = (size_t)atol(s);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, stack);
	int e = pthread_create(t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return e;
}

bool qcs_wait_for(bool (*pred)(void *), void *arg, qc_duration guard)
{
	qc_time end = qcs_now() + qcs_hang(guard);
	while (!pred(arg)) {
		if (qcs_now() > end)
			return false;
		qcs_nap(50 * QC_MICROSECOND);
	}
	return true;
}

void qcs_flag_raise(int *flag)
{
	QC_ANN_ATOMIC(flag);
	QC_ANN_HAPPENS_BEFORE(flag);
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

static bool flag_set(void *arg)
{
	if (__atomic_load_n((const int *)arg, __ATOMIC_ACQUIRE) == 0)
		return false;
	QC_ANN_HAPPENS_AFTER(arg);
	return true;
}

bool qcs_join_within(pthread_t t, const int *done, qc_duration guard)
{
	if (!qcs_wait_for(flag_set, (void *)(uintptr_t)done, guard))
		return false;
	return pthread_join(t, NULL) == 0;
}

int qcs_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr), ran = srunner_ntests_run(sr);
	srunner_free(sr);
	if (ran == 0)
		fprintf(stderr, "quiesce: no checks ran\n");
	return failed || ran == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
