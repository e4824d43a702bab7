/*
 * stack.c: another thread's stack, captured by signal, and symbols for
 * reports through elfutils libdwfl (see stack.h).
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
 * Symbolizer. One cached Dwfl for the process (sym_mu), built lazily from
 * /proc/<pid>/maps, rebuilt when the pid changes (a forked child), and
 * re-reported when the dynamic loader's load/unload counters moved since
 * (dlopen, dlclose) or, once per call, when an address lies outside every
 * module (an ELF file mapped by other means). Separate debug files are looked
 * up by build id on the local disk only: a test harness must never wait on
 * debuginfod's network.
 *
 * Lock order: capture_mu and sym_mu are leaves, never held together.
 */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <link.h>
#include <execinfo.h>
#include <inttypes.h>
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

#include "annotate.h"
#include "census_impl.h"
#include "futex.h"
#include "internal.h"
#include "stack.h"

/* ------------------------------------------------------------ capture */

/* Debug builds check every lock and unlock. */
#ifdef QC_DEBUG
#define MUTEX_INIT PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
#else
#define MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#endif

enum { SLOT_IDLE, SLOT_ASKED, SLOT_BUSY, SLOT_DONE };

/* Frames the handler records beyond QC_STACK_MAX: its own and the signal
 * trampoline's, dropped afterwards. */
#define SLOT_EXTRA 8

static pthread_mutex_t capture_mu = MUTEX_INIT;
static _Atomic uint32_t slot_state; /* futex word; SLOT_* */
static _Atomic pid_t slot_tid;	    /* the thread asked */
static void *slot_frames[QC_STACK_MAX];
static int slot_n; /* published by slot_state DONE (release) */

/* Guards installation (init_mu): which signals carry our handler, the
 * actions they had before, and the signal captures use. */
static pthread_mutex_t init_mu = MUTEX_INIT;
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
static void sym_after_fork_child(void);

static void capture_after_fork_child(void)
{
	pthread_mutex_t fresh = MUTEX_INIT;
	memcpy(&capture_mu, &fresh, sizeof fresh);
	atomic_store(&slot_state, SLOT_IDLE);
	atomic_store(&slot_tid, 0);
	sym_after_fork_child();
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

/* ------------------------------------------------------------ symbols */

static pthread_mutex_t sym_mu = MUTEX_INIT;
static Dwfl *sym_dwfl;		     /* sym_mu */
static pid_t sym_pid;		     /* the process sym_dwfl describes */
static unsigned long long sym_loads; /* dlpi_adds + dlpi_subs reported */
static bool sym_atexit;		     /* qc__stack_shutdown registered */

/* Separate debug files by build id under the local debug directories
 * only (Debian's -dbgsym packages); never debuginfod. */
static const Dwfl_Callbacks sym_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
};

static void sym_after_fork_child(void)
{
	if (pthread_mutex_trylock(&sym_mu) == 0) {
		pthread_mutex_unlock(&sym_mu);
		return;
	}
	pthread_mutex_t fresh = MUTEX_INIT;
	memcpy(&sym_mu, &fresh, sizeof fresh);
	sym_dwfl = NULL; /* possibly half-updated: leaked on purpose */
}

static void sym_lock(void)
{
	int e = pthread_mutex_lock(&sym_mu);
	QC_ASSERT(e == 0);
}

static void sym_unlock(void)
{
	int e = pthread_mutex_unlock(&sym_mu);
	QC_ASSERT(e == 0);
}

static int count_loads_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *n = arg;
	if (size >=
	    offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
		*n = info->dlpi_adds + info->dlpi_subs;
	return 1; /* the counters are the same in every entry */
}

/* How many times the dynamic loader has loaded or unloaded an object:
 * when it changes, the module list is stale. */
static unsigned long long count_loads(void)
{
	unsigned long long n = 0;
	dl_iterate_phdr(count_loads_cb, &n);
	return n;
}

/* (Re)reports the process's mappings. Modules reported again keep their
 * cached data; those gone (dlclose'd) are dropped. */
static int sym_report(Dwfl *d)
{
	sym_loads = count_loads();
	dwfl_report_begin(d);
	int e = dwfl_linux_proc_report(d, getpid());
	if (dwfl_report_end(d, NULL, NULL) != 0 && e == 0)
		e = EIO;
	return e;
}

/* The cached Dwfl (under sym_mu), built on first use; NULL if libdwfl
 * cannot describe this process. */
static Dwfl *sym_get(void)
{
	pid_t pid = getpid();
	if (sym_dwfl && sym_pid != pid) {
		dwfl_end(sym_dwfl);
		sym_dwfl = NULL;
	}
	if (sym_dwfl) {
		/* A stale list can credit a new library's addresses to an
		 * old neighbour, so refresh as soon as the loader moved. */
		if (count_loads() != sym_loads)
			(void)sym_report(sym_dwfl);
		return sym_dwfl;
	}
	Dwfl *d = dwfl_begin(&sym_callbacks);
	if (!d)
		return NULL;
	if (sym_report(d) != 0) {
		dwfl_end(d);
		return NULL;
	}
	sym_dwfl = d;
	sym_pid = pid;
	if (!sym_atexit && atexit(qc__stack_shutdown) == 0)
		sym_atexit = true;
	return d;
}

/* What one address resolves to. Strings point into the Dwfl (valid while
 * sym_mu is held and the Dwfl is not refreshed). */
struct sym {
	const char *func; /* symbol, or NULL */
	const char *file; /* source basename, or NULL */
	const char *path; /* source path as in the debug info, or NULL */
	int line;
	const char *mod; /* module basename, or NULL outside every module */
	uintptr_t off;	 /* module-relative offset of the address */
};

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Looks up addr (exact: as is; else as a return address, addr - 1). May
 * re-report the mappings once per *refreshed. Under sym_mu. */
static void sym_lookup(Dwfl *d, uintptr_t addr, bool exact, bool *refreshed,
		       struct sym *s)
{
	memset(s, 0, sizeof *s);
	Dwarf_Addr look = exact || addr == 0 ? addr : addr - 1;
	Dwfl_Module *m = dwfl_addrmodule(d, look);
	if (!m && !*refreshed) {
		*refreshed = true;
		(void)sym_report(d);
		m = dwfl_addrmodule(d, look);
	}
	if (!m)
		return;
	const char *modname =
	    dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	s->mod = modname ? base_name(modname) : "?";
	s->func = dwfl_module_addrname(m, look);
	Dwfl_Line *l = dwfl_module_getsrc(m, look);
	if (l) {
		int line = 0;
		const char *f = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
		if (f && line > 0) {
			s->file = base_name(f);
			s->path = f;
			s->line = line;
		}
	}
	Dwarf_Addr rel = look;
	if (dwfl_module_relocate_address(m, &rel) < 0)
		rel = look;
	s->off = (uintptr_t)rel + (uintptr_t)(addr - look);
}

/* Appends frame a's line, numbered i. Under sym_mu. */
static void format_frame(const struct sym *s, uintptr_t a, int i, qc__buf *out,
			 const char *indent)
{
	if (s->func && s->file)
		qc__buf_printf(out, "%s#%d %s  %s:%d\n", indent, i, s->func,
			       s->file, s->line);
	else if (s->func)
		qc__buf_printf(out, "%s#%d %s (%s)\n", indent, i, s->func,
			       s->mod);
	else if (s->mod && s->file)
		qc__buf_printf(out, "%s#%d %s+0x%" PRIxPTR "  %s:%d\n", indent,
			       i, s->mod, s->off, s->file, s->line);
	else if (s->mod)
		qc__buf_printf(out, "%s#%d %s+0x%" PRIxPTR "\n", indent, i,
			       s->mod, s->off);
	else
		qc__buf_printf(out, "%s#%d 0x%" PRIxPTR "\n", indent, i, a);
}

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether a frame is quiesce's own code: its source lies beside this file
 * (any link: static, shared, installed), or, without line information, it
 * is in libquiesce or bears the library's qc_ prefix. */
static bool frame_is_quiesce(const struct sym *s)
{
	static const char here[] = __FILE__;
	const char *slash = strrchr(here, '/');
	size_t dir = slash ? (size_t)(slash - here) + 1 : 0;
	if (s->path && dir && strncmp(s->path, here, dir) == 0)
		return true;
	return starts_with(s->mod, "libquiesce") || starts_with(s->func, "qc_");
}

/* The C library, the loader, the unwinder and the sanitizer runtimes: what
 * lies between a blocked thread's pc and the call it made. */
static bool frame_is_system(const struct sym *s)
{
	static const char *const mods[] = {
	    "libc.so",	"libpthread", "ld-linux",   "linux-vdso", "libgcc_s",
	    "libasan",	"libtsan",    "liblsan",    "libubsan",	  "libm.so",
	    "librt.so", "vgpreload",  "libfaketime"};
	for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++)
		if (starts_with(s->mod, mods[i]))
			return true;
	return false;
}

/* Where a thread's own code ends: the frames that start a thread or the
 * process. */
static bool frame_is_start(const struct sym *s)
{
	static const char *const fns[] = {
	    "start_thread",	      "__clone3",	   "__clone", "clone",
	    "__libc_start_call_main", "__libc_start_main", "_start"};
	for (size_t i = 0; s->func && i < sizeof fns / sizeof fns[0]; i++)
		if (strcmp(s->func, fns[i]) == 0)
			return true;
	return false;
}

void qc__stack_format(void *const *frames, int n, qc__buf *out,
		      const char *indent)
{
	if (!out || !frames || n <= 0)
		return;
	if (!indent)
		indent = "";
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false;
	for (int i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)frames[i];
		struct sym s;
		if (d)
			sym_lookup(d, a, i == 0, &refreshed, &s);
		else
			memset(&s, 0, sizeof s);
		format_frame(&s, a, i, out, indent);
	}
	sym_unlock();
}

void qc__stack_format_user(void *const *frames, int n, qc__buf *out,
			   const char *indent)
{
	if (!out || !frames || n <= 0)
		return;
	const char *full = getenv("QC_STACK_FULL");
	sym_lock();
	Dwfl *d = sym_get();
	if (!d || (full && *full && strcmp(full, "0") != 0)) {
		sym_unlock();
		qc__stack_format(frames, n, out, indent);
		return;
	}
	if (!indent)
		indent = "";
	bool refreshed = false;
	struct sym s;
	/* From the top: the libc and quiesce frames above the quiesce call
	 * the thread made; it shows as frame #0. */
	int first = 0;
	for (int i = 0; i < n; i++) {
		sym_lookup(d, (uintptr_t)frames[i], i == 0, &refreshed, &s);
		if (frame_is_quiesce(&s))
			first = i;
		else if (!frame_is_system(&s))
			break;
	}
	for (int i = first, k = 0; i < n; i++, k++) {
		uintptr_t a = (uintptr_t)frames[i];
		sym_lookup(d, a, i == 0, &refreshed, &s);
		/* Below the thread's own code: quiesce's trampolines, then
		 * the C library's thread start. */
		if (i > first && (frame_is_quiesce(&s) || frame_is_start(&s)))
			break;
		format_frame(&s, a, k, out, indent);
	}
	sym_unlock();
}

void qc__symbolize_fn(const void *fn, char *out, size_t n)
{
	if (!out || n == 0)
		return;
	uintptr_t a = (uintptr_t)fn;
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false;
	struct sym s;
	if (d && a)
		sym_lookup(d, a, true, &refreshed, &s);
	else
		memset(&s, 0, sizeof s);
	if (s.func && s.file)
		snprintf(out, n, "%s (%s:%d)", s.func, s.file, s.line);
	else if (s.func)
		snprintf(out, n, "%s (%s)", s.func, s.mod);
	else if (s.mod)
		snprintf(out, n, "%s+0x%" PRIxPTR, s.mod, s.off);
	else
		snprintf(out, n, "0x%" PRIxPTR, a);
	sym_unlock();
}

bool qc__symbol_name(const void *addr, char *out, size_t n)
{
	if (!out || n == 0 || !addr)
		return false;
	bool found = false;
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false;
	struct sym s;
	if (d) {
		sym_lookup(d, (uintptr_t)addr, true, &refreshed, &s);
		if (s.func) {
			snprintf(out, n, "%s", s.func);
			found = true;
		}
	}
	sym_unlock();
	return found;
}

void qc__stack_shutdown(void)
{
	sym_lock();
	/* In a forked child this frees the child's copy: fine. */
	if (sym_dwfl)
		dwfl_end(sym_dwfl);
	sym_dwfl = NULL;
	sym_atexit = false;
	sym_unlock();
}
