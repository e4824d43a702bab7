/*
 * stack.h: capturing another thread's user stack (stack.c), and turning
 * addresses into "function  file.c:line" for reports (sym.c). Never
 * installed.
 *
 * Capture: the requester sends the thread a signal (tgkill); the signal's
 * handler records the interrupted stack with backtrace() into one shared
 * slot, and the requester waits for it with a bounded raw futex wait. A
 * thread that blocks the signal, or does not answer in time, is described
 * from /proc/self/task/<tid>/syscall instead: its user pc as a single frame.
 *
 * Symbols: elfutils libdwfl over the process's own mappings, cached across
 * calls and refreshed when an address falls outside every known module (a
 * library dlopen'ed since). With debug information, functions inlined at
 * an address are named too (the innermost first, as addr2line -i does):
 * optimised code (-O2 -g) inlines most small static functions.
 *
 * Thread safety: every function is thread-safe. qc__stack_capture blocks at
 * most its timeout (plus, rarely, a second timeout while a late handler
 * finishes); the others block only on the symbolizer's mutex.
 */
#ifndef QC_STACK_H
#define QC_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <quiesce/time.h>

#include "buf.h"

/* The most frames qc__stack_capture records (deeper stacks are cut). */
#define QC_STACK_MAX 64

/*
 * qc__stack_init: installs the capture handler for sig (SA_RESTART |
 * SA_SIGINFO | SA_NODEFER), once per signal, and warms backtrace() up (its
 * first call loads libgcc_s, which a signal handler must not do). The caller
 * chooses the signal (SIGRTMIN+3 by default, qc_h_opts.stack_signal). Returns
 * 0, EINVAL (not a valid signal number, or one that cannot be caught), or
 * sigaction's errno. Thread safety: safe; does not block.
 */
int qc__stack_init(int sig);

/*
 * qc__stack_capture: the user stack of thread tid of this process into
 * frames[0..max) (caller storage): frames[0] is the interrupted pc (exact),
 * the rest are return addresses, innermost first; the capture handler's own
 * frames are left out. The signal is the one most recently passed to
 * qc__stack_init (which must have succeeded). Captures are serialized; each
 * waits at most timeout of real time (raw CLOCK_MONOTONIC) for the handler.
 *
 * Returns the number of frames (>= 1), or -1 when nothing could be
 * captured: tid is gone, it blocks the signal or did not answer in time and
 * /proc could not tell its pc either (it was running, or the process runs
 * under valgrind, where /proc shows valgrind's own state), or max < 1. A
 * thread that blocks the signal is never signalled: its pc comes from
 * /proc/self/task/<tid>/syscall, one frame. The thread's own call captures
 * its own stack directly.
 *
 * Under ThreadSanitizer, which runs signal handlers only from its own
 * interceptors, a thread blocked in a system call gets the /proc answer at
 * once (one frame), and a running thread's stack starts with frames of the
 * sanitizer's runtime.
 *
 * Note the handler interrupts tid's system call: SA_RESTART restarts read
 * and the like, but poll, epoll_wait, select and some others return EINTR.
 * Capture only once a verdict is final.
 * Thread safety: safe; blocks up to timeout.
 */
int qc__stack_capture(pid_t tid, void **frames, int max, qc_duration timeout);

/*
 * qc__stack_format: appends one line per frame to out:
 *   "<indent>#0 func  file.c:22\n"    with line information,
 *   "<indent>#1 read (libc.so.6)\n"    a symbol without line information,
 *   "<indent>#2 libfoo.so+0x1a2b\n"    no symbol (module-relative offset),
 *   "<indent>#3 0x7f0011223344\n"      outside every module.
 * A frame whose address lies in inlined code gets one line per function,
 * numbered on: the innermost at the address's line, then each function it
 * was inlined into at the line of that call, marked, and last the real
 * function:
 *   "<indent>#0 step  compute.c:32 (inlined)\n"
 *   "<indent>#1 compute  compute.c:41\n"
 * frames[0] is looked up as an exact pc, the others as return addresses
 * (pc - 1, so a call at the end of a function is not credited to the next
 * line or function). indent may be NULL (""). Thread safety: safe.
 */
void qc__stack_format(void *const *frames, int n, qc__buf *out,
		      const char *indent);

/*
 * qc__stack_format_user: qc__stack_format for a report, showing the code
 * under test's frames only: the call the thread's code made into quiesce
 * (qc_wait, or an interposed nanosleep) or, failing that, into the C
 * library (read, pthread_cond_wait@@GLIBC_2.3.2) becomes frame #0, with the
 * frames above it left out, and the frames below the thread's own code
 * (quiesce's trampolines, start_thread, clone, __libc_start_main) are cut.
 * That call shows as the function the code called, without the helpers
 * inlined into it; the code's own inlined functions are shown as
 * qc__stack_format does. A thread running its own code starts at its pc.
 * QC_STACK_FULL=1 in the environment keeps every frame (to debug quiesce
 * or the C library).
 * Thread safety: safe.
 */
void qc__stack_format_user(void *const *frames, int n, qc__buf *out,
			   const char *indent);

/*
 * qc__symbolize_fn: names the function at fn: "query_backend
 * (aggregator.c:41)", "name (libc.so.6)" without line information,
 * "libname.so+0xoff" without a symbol, "0x..." outside every module. An
 * entry address (a start routine) names its own function, at the line of
 * its first instruction (or, when that is inlined code, of the call to
 * it); any other address (a creation site's pc - 1) names the innermost
 * function inlined there, at the address's own line. Always NUL-terminates
 * out (size n > 0). Thread safety: safe.
 */
void qc__symbolize_fn(const void *fn, char *out, size_t n);

/*
 * qc__symbol_name: the bare name of the function containing addr
 * ("query_backend"), for allow-lists such as qc_h_ignore: the function
 * qc__symbolize_fn names (an entry address's own). Returns true and
 * writes out (NUL-terminated, truncated to n - 1) when a symbol is known;
 * false, leaving out alone, otherwise. Thread safety: safe.
 */
bool qc__symbol_name(const void *addr, char *out, size_t n);

/*
 * qc__stack_libc_call: the C library function a blocked thread called, from
 * its captured stack: the outermost of the system-library frames on top
 * (pthread_cond_wait for a stack of __futex_abstimed_wait_common,
 * pthread_cond_wait@@GLIBC_2.3.2, user code), without version suffix or
 * leading underscores, into out (NUL-terminated). Returns false when the
 * top frame is not in a system library, or no frame below the library's
 * shows the call was made (a one-frame stack); out may then be written.
 * Thread safety: safe.
 */
bool qc__stack_libc_call(void *const *frames, int n, char *out, size_t len);

/*
 * qc__sym_after_fork_child: in a forked child, drops the symbolizer's lock
 * and cache that another thread may have held mid-update (sym.c; called
 * from the capture's atfork child handler).
 */
void qc__sym_after_fork_child(void);

/*
 * qc__stack_shutdown: frees the cached symbolizer (registered with atexit on
 * first use, so the process is valgrind-clean at exit). A later symbolizing
 * call builds it again. Thread safety: safe.
 */
void qc__stack_shutdown(void);

/*
 * qc__stack_hits: how many times the capture signal's handler ran on the
 * calling thread (a thread-local count bumped first thing in the handler,
 * for late and stray signals too). A virtual sleep (timeshim.c) that a
 * signal interrupted looks at it to tell quiesce's own capture, which must
 * not end the sleep, from the code's signals.
 */
extern __attribute__((
    tls_model("initial-exec"))) _Thread_local unsigned qc__stack_hits;

#endif /* QC_STACK_H */
