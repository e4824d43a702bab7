/*
 * stack.c: another thread's stack, captured by signal (see stack.h); the
 * symbols for reports are sym.c's.
 *
 * Capture protocol. One capture at a time (capture_mu). The requester
 * publishes the target tid in slot_tid, then moves slot_state IDLE -> ASKED
 * and sends the signal with tgkill. The handler acts only when it runs on
 * slot_tid and wins the CAS ASKED -> BUSY; it fills slot_frames/slot_n with
 * plain stores, then publishes DONE (release) and wakes the futex. The
 * requester waits on slot_state with raw futex waits measured on the raw
 * kernel clock. On timeout it takes the request back with the CAS ASKED ->
 * IDLE; if that fails the handler is running, and the requester gives it a
 * second timeout to finish. A handler that still has not finished leaves the
 * slot BUSY; the next capture waits for it (bounded) before reusing the slot,
 * so a late handler never writes into a slot another capture owns. A stray
 * or late signal (RT signals queue) finds the state not ASKED, or another
 * tid, and does nothing except chain to a handler installed before ours.
 *
 * Async-signal safety: the handler calls only backtrace() (warmed up in
 * qc__stack_init: its first call dlopens libgcc_s and allocates), atomics,
 * gettid and futex. With glibc >= 2.35 and GCC 12's libgcc, unwinding finds
 * FDEs through _dl_find_object, which takes no lock.
 *
 *
 * Lock order: capture_mu is a leaf; the symbolizer (sym.c) has its own.
 */
#include <errno.h>
#include <link.h>
#include <execinfo.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "alloc.h"
#include "annotate.h"
#include "census_impl.h"
#include "futex.h"
#include "internal.h"
#include "stack.h"

/* ------------------------------------------------------------ capture */

enum { SLOT_IDLE, SLOT_ASKED, SLOT_BUSY, SLOT_DONE };

/* Frames the handler records beyond QC_STACK_MAX: its own and the signal
 * trampoline's, dropped afterwards. */
#define SLOT_EXTRA 8

static pthread_mutex_t capture_mu = QC_MUTEX_INIT;
static _Atomic uint32_t slot_state; /* futex word; SLOT_* */
static _Atomic pid_t slot_tid;	    /* the thread asked */
static void *slot_frames[QC_STACK_MAX];
static int slot_n; /* published by slot_state DONE (release) */

/* Guards installation (init_mu): which signals carry our handler, the
 * actions they had before, and the signal captures use. */
static pthread_mutex_t init_mu = QC_MUTEX_INIT;
static struct sigaction old_actions[_NSIG];
static _Atomic unsigned char installed[_NSIG]; /* read by the handler */
static _Atomic int capture_sig;		       /* 0: none installed */
_Thread_local unsigned qc__stack_hits;	       /* stack.h */
static bool atfork_done;

static pid_t own_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* The pc the signal interrupted, or 0 where the architecture is unknown. */
static uintptr_t interrupted_pc(const void *ucv)
{
	const ucontext_t *uc = ucv;
	if (!uc)
		return 0;
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#else
	return 0;
#endif
}

/* Passes a signal that was not a capture request to the handler installed
 * before ours (the default action of the real-time signals is to kill the
 * process, so SIG_DFL is not applied: a late capture signal is harmless). */
static void chain(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *old = &old_actions[sig];
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction)
			old->sa_sigaction(sig, si, uc);
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
	}
}

static void capture_handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	qc__stack_hits++; /* late or stray ones too: see stack.h */
	uint32_t asked = SLOT_ASKED;
	if (atomic_load_explicit(&slot_tid, memory_order_acquire) !=
		own_tid() ||
	    !atomic_compare_exchange_strong_explicit(
		&slot_state, &asked, SLOT_BUSY, memory_order_acquire,
		memory_order_relaxed)) {
		chain(sig, si, uc);
		errno = saved_errno;
		return;
	}
	/* The requester's last read of slot_frames came before its ASKED. */
	QC_ANN_HAPPENS_AFTER(&slot_state);

	void *raw[QC_STACK_MAX + SLOT_EXTRA];
	void *ret = __builtin_return_address(0);
	int n = backtrace(raw, QC_STACK_MAX + SLOT_EXTRA);
	uintptr_t pc = interrupted_pc(uc);

	/* Everything before the interrupted pc is this handler, the signal
	 * trampoline and, in a sanitizer build, its backtrace interceptor.
	 * A sanitizer may also call the handler later, from its own runtime
	 * (ThreadSanitizer defers signals to its interceptors): then the pc
	 * is not on this stack, and the truth is the pc followed by the
	 * frames of whoever called this handler. */
	int at_pc = -1, at_ret = -1;
	for (int i = 0; i < n; i++) {
		if (pc && at_pc < 0 && (uintptr_t)raw[i] == pc)
			at_pc = i;
		if (at_ret < 0 && raw[i] == ret)
			at_ret = i;
	}
	int out = 0, from = n;
	if (at_pc >= 0) {
		from = at_pc;
	} else {
		if (pc)
			slot_frames[out++] = (void *)pc;
		/* Unknown architecture (no pc): skip the handler and the
		 * trampoline. */
		if (at_ret >= 0)
			from = at_ret;
		else if (!pc)
			from = 2;
	}
	for (int i = from; i < n && out < QC_STACK_MAX; i++)
		slot_frames[out++] = raw[i];
	slot_n = out;
	QC_ANN_HAPPENS_BEFORE(&slot_state);
	atomic_store_explicit(&slot_state, SLOT_DONE, memory_order_release);
	qc__futex_wake(&slot_state, INT_MAX);
	errno = saved_errno;
}

/* In a forked child only the forking thread exists: a capture or a
 * symbolization some other thread was in the middle of will never finish,
 * so their locks and the slot start afresh. The Dwfl is dropped (leaked)
 * only when its lock was held, since it may be half-updated. */

static void capture_after_fork_child(void)
{
	pthread_mutex_t fresh = QC_MUTEX_INIT;
	memcpy(&capture_mu, &fresh, sizeof fresh);
	atomic_store(&slot_state, SLOT_IDLE);
	atomic_store(&slot_tid, 0);
	qc__sym_after_fork_child();
}

int qc__stack_init(int sig)
{
	if (sig <= 0 || sig >= _NSIG || sig == SIGKILL || sig == SIGSTOP)
		return EINVAL;
	int e = pthread_mutex_lock(&init_mu);
	QC_ASSERT(e == 0);
	if (!atfork_done) {
		/* Only ever accessed atomically (annotate.h). */
		QC_ANN_ATOMIC(&slot_state);
		QC_ANN_ATOMIC(&slot_tid);
		/* Warm backtrace() up outside any handler: its first call
		 * loads libgcc_s through dlopen, which allocates. */
		void *warm[4];
		(void)backtrace(warm, 4);
		if (pthread_atfork(NULL, NULL, capture_after_fork_child) == 0)
			atfork_done = true;
	}
	e = 0;
	if (!atomic_load(&installed[sig])) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = capture_handler;
		/* SA_NODEFER: the handler must not add sig to the
		 * thread's mask, or a capture that reads SigBlk while the
		 * previous capture's handler returns would take the thread
		 * for one that blocks the signal. The handler is reentrant
		 * (only the CAS winner writes the slot). */
		sa.sa_flags = SA_RESTART | SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		if (sigaction(sig, &sa, &old_actions[sig]) != 0)
			e = errno;
		else
			atomic_store(&installed[sig], 1);
	}
	if (e == 0)
		atomic_store(&capture_sig, sig);
	int u = pthread_mutex_unlock(&init_mu);
	QC_ASSERT(u == 0);
	return e;
}

/* True if thread tid has sig in its blocked mask (SigBlk in its status). */
static bool blocks_signal(pid_t tid, int sig)
{
	char path[QC__PROC_PATH_MAX], rest[48], text[4096];
	snprintf(rest, sizeof rest, "/task/%d/status", (int)tid);
	qc__proc_path(path, 0, rest);
	if (qc__read_small(path, text, sizeof text) < 0)
		return false;
	const char *p = strstr(text, "\nSigBlk:");
	if (!p)
		return false;
	unsigned long long mask = strtoull(p + 8, NULL, 16);
	return sig <= 64 && (mask >> (sig - 1)) & 1u;
}

/* True when /proc's SigBlk is not the program's own signal mask. */
static bool mask_unreliable(void)
{
#if defined(__SANITIZE_THREAD__)
	return true;
#else
	return RUNNING_ON_VALGRIND;
#endif
}

/* The /proc fallback: a blocked thread's user pc, the last field of its
 * syscall file ("nr a1 .. a6 sp pc", or "-1 sp pc" when blocked outside
 * a system call; "running" has none). Under valgrind /proc describes
 * valgrind's own state, never the program's. */
static int proc_pc(pid_t tid, void **frames)
{
	if (RUNNING_ON_VALGRIND)
		return -1;
	char path[QC__PROC_PATH_MAX], rest[48], text[256];
	snprintf(rest, sizeof rest, "/task/%d/syscall", (int)tid);
	qc__proc_path(path, 0, rest);
	ssize_t len = qc__read_small(path, text, sizeof text);
	if (len <= 0 || strncmp(text, "running", 7) == 0)
		return -1;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	const char *last = strrchr(text, ' ');
	if (!last || strncmp(last + 1, "0x", 2) != 0)
		return -1;
	uintptr_t pc = (uintptr_t)strtoull(last + 1, NULL, 16);
	if (!pc)
		return -1;
	frames[0] = (void *)pc;
	return 1;
}

/* Waits while slot_state == from, until the raw clock passes deadline.
 * Returns the state seen last. */
static uint32_t slot_wait_while(uint32_t from, qc_time deadline)
{
	for (;;) {
		uint32_t s =
		    atomic_load_explicit(&slot_state, memory_order_acquire);
		if (s != from)
			return s;
		qc_duration left = deadline - qc__now_raw();
		if (left <= 0)
			return s;
		qc__futex_wait(&slot_state, from, left);
	}
}

__attribute__((noinline)) int qc__stack_capture(pid_t tid, void **frames,
						int max, qc_duration timeout)
{
	if (!frames || max < 1 || tid <= 0)
		return -1;
	if (timeout < 0)
		timeout = 0;

	if (tid == own_tid()) {
		/* Our own stack, from our caller on (#0 is then a return
		 * address, not an exact pc). Found by address rather than
		 * by counting: a sanitizer's backtrace interceptor adds
		 * frames of its own. */
		void *raw[QC_STACK_MAX + SLOT_EXTRA];
		void *ret = __builtin_return_address(0);
		int n = backtrace(raw, QC_STACK_MAX + SLOT_EXTRA);
		int first = 1;
		for (int i = 0; i < n; i++) {
			if (raw[i] == ret) {
				first = i;
				break;
			}
		}
		int out = 0;
		for (int i = first; i < n && out < max; i++)
			frames[out++] = raw[i];
		return out > 0 ? out : -1;
	}

	int sig = atomic_load(&capture_sig);
	if (sig == 0)
		return proc_pc(tid, frames);
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer runs handlers only from its own interceptors, so
	 * a thread blocked in a restarted system call would not answer
	 * until the call returns: take /proc's word for it at once. */
	{
		int n = proc_pc(tid, frames);
		if (n > 0)
			return n;
	}
#endif
	/* Under valgrind /proc shows the host thread's mask, which blocks
	 * everything while the thread runs guest code; ThreadSanitizer
	 * blocks everything while it runs deferred handlers. Never trust
	 * it there: the timeout tells instead. */
	if (!mask_unreliable() && blocks_signal(tid, sig))
		return proc_pc(tid, frames);

	int e = pthread_mutex_lock(&capture_mu);
	QC_ASSERT(e == 0);
	int n = -1;
	qc_time deadline = qc_time_add(qc__now_raw(), timeout);

	/* A handler from an abandoned capture may still be writing. */
	if (slot_wait_while(SLOT_BUSY, deadline) == SLOT_BUSY)
		goto fallback;

	atomic_store(&slot_state, SLOT_IDLE);
	atomic_store_explicit(&slot_tid, tid, memory_order_release);
	QC_ANN_HAPPENS_BEFORE(&slot_state);
	atomic_store(&slot_state, SLOT_ASKED);
	if (syscall(SYS_tgkill, getpid(), tid, sig) != 0) {
		atomic_store(&slot_state, SLOT_IDLE);
		atomic_store(&slot_tid, 0);
		goto out; /* gone: ESRCH */
	}

#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer keeps one pending instance per signal number and
	 * can drop one that arrives while it runs the previous handler: ask
	 * again every 50 ms (extra instances find the slot not ASKED). */
	uint32_t s;
	for (;;) {
		qc_time slice = qc_time_add(qc__now_raw(), 50 * QC_MILLISECOND);
		s = slot_wait_while(SLOT_ASKED,
				    slice < deadline ? slice : deadline);
		if (s != SLOT_ASKED || qc__now_raw() >= deadline)
			break;
		syscall(SYS_tgkill, getpid(), tid, sig);
	}
#else
	uint32_t s = slot_wait_while(SLOT_ASKED, deadline);
#endif
	if (s == SLOT_ASKED) {
		uint32_t asked = SLOT_ASKED;
		if (atomic_compare_exchange_strong(&slot_state, &asked,
						   SLOT_IDLE))
			goto fallback; /* it never answered */
		s = asked;
	}
	if (s == SLOT_BUSY) {
		/* The handler started just in time: let it finish. */
		s = slot_wait_while(SLOT_BUSY,
				    qc_time_add(qc__now_raw(), timeout));
		if (s == SLOT_BUSY)
			goto fallback; /* the next capture waits for it */
	}
	QC_ASSERT(s == SLOT_DONE);
	QC_ANN_HAPPENS_AFTER(&slot_state); /* the handler's frames */
	n = slot_n < max ? slot_n : max;
	memcpy(frames, slot_frames, (size_t)n * sizeof *frames);
	atomic_store(&slot_state, SLOT_IDLE);
	if (n == 0)
		n = -1;
	goto out;

fallback:
	n = proc_pc(tid, frames);
out:
	e = pthread_mutex_unlock(&capture_mu);
	QC_ASSERT(e == 0);
	return n;
}
