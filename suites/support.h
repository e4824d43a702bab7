/*
 * support.h: helpers shared by quiesce's own Check suites (never installed).
 *
 * Real time here is only ever a guard against hangs or a way to make a
 * race likely; a test's verdict never depends on how long something took,
 * except for strict lower bounds.
 */
#ifndef QC_SUITES_SUPPORT_H
#define QC_SUITES_SUPPORT_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>

#include <quiesce/time.h>

/* QCS_SANITIZED: 1 in a sanitizer build, where some deliberate misuse
 * (a huge malloc, unlocking a mutex one does not hold) is itself reported
 * and must be left out. */
#if defined(QC_SANITIZER_BUILD) || defined(__SANITIZE_THREAD__) || \
    defined(__SANITIZE_ADDRESS__)
#define QCS_SANITIZED 1
#else
#define QCS_SANITIZED 0
#endif

/* qcs_run: runs s (takes ownership) in Check's default mode and returns
 * main()'s status: failure when any test failed or when none ran. */
int qcs_run(Suite *s);

/* qcs_multiplier: QC_TIME_MULTIPLIER if set, else 20 under valgrind, 5 in a
 * sanitizer build, else 1 (the library's rule). */
int qcs_multiplier(void);

/* qcs_on_valgrind: true when running under valgrind (any tool). */
bool qcs_on_valgrind(void);

/* qcs_on_memcheck: true under valgrind's memcheck, the one tool that counts
 * leaked heap (not helgrind nor drd). */
bool qcs_on_memcheck(void);

/* qcs_thread_checked: true under a valgrind thread checker (helgrind, drd),
 * which reports deliberate pthread misuse as an error. */
bool qcs_thread_checked(void);

/* qcs_slow: true under valgrind or a sanitizer: scale stress sizes down. */
bool qcs_slow(void);

/* qcs_now: the raw CLOCK_MONOTONIC in ns (never faked by libfaketime). */
qc_time qcs_now(void);

/* qcs_guard: d times the multiplier (a real-time give-up bound). */
qc_duration qcs_guard(qc_duration d);

/* A wait that only catches a hang lasts at least this long: on a loaded
 * machine a thread may wait seconds for a CPU, and a passing test never
 * waits the bound out (ci/soak.sh runs every suite with the cores busy). */
#define QCS_HANG_MIN (30 * QC_SECOND)

/* qcs_hang: a bound for "finishes, and at once": qcs_guard of d, at least
 * QCS_HANG_MIN scaled. For "returns at once" where the slow path would
 * take virtual hours, not for telling apart two real-time outcomes. */
qc_duration qcs_hang(qc_duration d);

/* qcs_nap: sleeps d of real time. Only to make a race likely. */
void qcs_nap(qc_duration d);

/* qcs_thread_start: a joinable thread on a small stack (QC_THREAD_STACK
 * bytes if set, else 256 KiB), so that hundreds fit under valgrind.
 * Returns 0 or pthread_create's error. */
int qcs_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* qcs_wait_for: polls pred(arg) until it is true (returns true) or
 * qcs_hang(guard) of real time has passed (returns false). */
bool qcs_wait_for(bool (*pred)(void *), void *arg, qc_duration guard);

/* qcs_join_within: joins t if it finishes within guard (scaled); *done is
 * the thread's own "finished" flag (raised last thing, qcs_flag_raise).
 * Returns false, leaving the thread running, if it did not. */
bool qcs_join_within(pthread_t t, const int *done, qc_duration guard);

/* qcs_flag_raise: sets *flag to 1 (release), for a thread that says it is
 * done; read with an acquire load (qcs_join_within). Told to helgrind and
 * drd as what it is: an atomic handoff (harness/annotate.h). */
void qcs_flag_raise(int *flag);

#endif /* QC_SUITES_SUPPORT_H */
