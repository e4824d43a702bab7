/*
 * check_stack.c: stack capture by signal, the /proc fallback, and symbols
 * (harness/stack.c).
 *
 * The threads under capture run noinline functions of this file, so a good
 * capture names the function and "check_stack.c". Every wait on another
 * thread is bounded: a broken capture fails, never hangs.
 */
/* quiesce-suite: static */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "stack.h"

#define NOINLINE __attribute__((noinline, noclone))

static int capture_signal(void)
{
	return SIGRTMIN + 3;
}

/* A generous bound for the handler: slow under valgrind. */
#define CAPTURE_TIMEOUT (2 * QC_SECOND)

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static qc_time mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

static pid_t own_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Waits (at most 10 s) until thread tid is blocked in system call nr, as
 * /proc/self/task/<tid>/syscall shows it. */
static bool wait_in_syscall(pid_t tid, long nr)
{
	char path[64], text[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	for (int i = 0; i < 10000; i++) {
		FILE *f = fopen(path, "r");
		if (f) {
			size_t n = fread(text, 1, sizeof text - 1, f);
			fclose(f);
			text[n] = '\0';
			if (strtol(text, NULL, 10) == nr &&
			    strncmp(text, "running", 7) != 0)
				return true;
		}
		sleep_ms(1);
	}
	return false;
}

/* ------------------------------------------------------------ subjects */

struct subject {
	int pipe[2];
	_Atomic pid_t tid;
	_Atomic int stop;
	bool block_signal;
};

static NOINLINE ssize_t blocked_reader(struct subject *s)
{
	char c;
	ssize_t r = read(s->pipe[0], &c, 1);
	__asm__ volatile("" ::: "memory"); /* keep the frame */
	return r;
}

static void *reader_main(void *arg)
{
	struct subject *s = arg;
	if (s->block_signal) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, capture_signal());
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	atomic_store(&s->tid, own_tid());
	blocked_reader(s);
	return NULL;
}

static NOINLINE void spin_until_told(struct subject *s)
{
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
		__asm__ volatile("" ::: "memory");
}

static void *spinner_main(void *arg)
{
	struct subject *s = arg;
	atomic_store(&s->tid, own_tid());
	spin_until_told(s);
	return NULL;
}

/* Starts fn on a thread and waits for it to publish its tid. */
static pthread_t start_subject(struct subject *s, void *(*fn)(void *))
{
	ck_assert_int_eq(pipe(s->pipe), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, fn, s), 0);
	for (int i = 0; i < 10000 && atomic_load(&s->tid) == 0; i++)
		sleep_ms(1);
	ck_assert_int_ne(atomic_load(&s->tid), 0);
	return t;
}

static void stop_subject(struct subject *s, pthread_t t)
{
	atomic_store(&s->stop, 1);
	ck_assert_int_eq(write(s->pipe[1], "x", 1), 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	close(s->pipe[0]);
	close(s->pipe[1]);
}

static void setup(void)
{
	ck_assert_int_eq(qc__stack_init(capture_signal()), 0);
}

/* ------------------------------------------------------------ tests */

START_TEST(test_stack_capture_thread_blocked_in_read)
{
	struct subject s = {.tid = 0};
	pthread_t t = start_subject(&s, reader_main);
	ck_assert(wait_in_syscall(s.tid, SYS_read));

	void *frames[QC_STACK_MAX];
	int n = qc__stack_capture(s.tid, frames, QC_STACK_MAX, CAPTURE_TIMEOUT);
#ifdef __SANITIZE_THREAD__
	/* ThreadSanitizer would run the handler only once read returns:
	 * the /proc answer, the pc in read, is all there is. */
	ck_assert_int_eq(n, 1);
	qc__buf text = QC_BUF_INIT;
	qc__stack_format(frames, n, &text, "    ");
	const char *out = qc__buf_str(&text);
	ck_assert_msg(strstr(out, "#0 read") || strstr(out, "#0 __libc_read"),
		      "#0 is not read:\n%s", out);
#else
	ck_assert_int_gt(n, 1);
	qc__buf text = QC_BUF_INIT;
	qc__stack_format(frames, n, &text, "    ");
	const char *out = qc__buf_str(&text);
	ck_assert_msg(strstr(out, "blocked_reader  check_stack.c:"),
		      "no blocked_reader frame in:\n%s", out);
	ck_assert_msg(strstr(out, "reader_main  check_stack.c:"),
		      "no reader_main frame in:\n%s", out);
	ck_assert_msg(strncmp(out, "    #0 ", 7) == 0, "bad indent:\n%s", out);
	/* Nothing of the capture machinery is shown. */
	ck_assert_msg(!strstr(out, "capture_handler"), "handler shown:\n%s",
		      out);
#endif
	qc__buf_free(&text);

	/* SA_RESTART: the read went on, and still gets its byte. */
	stop_subject(&s, t);
}
END_TEST

START_TEST(test_stack_capture_spinning_thread)
{
	struct subject s = {.tid = 0};
	pthread_t t = start_subject(&s, spinner_main);

	void *frames[QC_STACK_MAX];
	int n = qc__stack_capture(s.tid, frames, QC_STACK_MAX, CAPTURE_TIMEOUT);
	ck_assert_int_ge(n, 1);
	qc__buf text = QC_BUF_INIT;
	qc__stack_format(frames, n, &text, "");
	const char *out = qc__buf_str(&text);
#ifdef __SANITIZE_THREAD__
	/* ThreadSanitizer delivers the signal late, from its runtime: the
	 * runtime's frames come first. */
	ck_assert_msg(strstr(out, " spin_until_told  check_stack.c:"),
		      "no spin_until_told frame in:\n%s", out);
#else
	ck_assert_msg(strstr(out, "#0 spin_until_told  check_stack.c:"),
		      "spin_until_told is not #0 in:\n%s", out);
#endif
	ck_assert_msg(strstr(out, "spinner_main  check_stack.c:"),
		      "no spinner_main frame in:\n%s", out);
	qc__buf_free(&text);
	stop_subject(&s, t);
}
END_TEST

START_TEST(test_stack_capture_signal_blocked_never_hangs)
{
	struct subject s = {.tid = 0, .block_signal = true};
	pthread_t t = start_subject(&s, reader_main);
	ck_assert(wait_in_syscall(s.tid, SYS_read));

	void *frames[QC_STACK_MAX];
	qc_time t0 = mono_now();
	int n = qc__stack_capture(s.tid, frames, QC_STACK_MAX, CAPTURE_TIMEOUT);
	qc_duration took = mono_now() - t0;
	/* The /proc fallback (one frame, the pc in libc's read), or nothing
	 * (under valgrind /proc cannot tell); never a hang. */
	ck_assert_msg(n == 1 || n == -1, "n = %d", n);
	ck_assert_int_lt(took, CAPTURE_TIMEOUT + 2 * QC_SECOND);
	if (n == 1) {
		qc__buf text = QC_BUF_INIT;
		qc__stack_format(frames, n, &text, "");
		/* "read (libc.so.6)", or "read  read.c:26" when libc's
		 * debug information is installed. */
		ck_assert_msg(strstr(qc__buf_str(&text), "read"),
			      "the pc is not in read:\n%s", qc__buf_str(&text));
		qc__buf_free(&text);
	}
	stop_subject(&s, t);
}
END_TEST

START_TEST(test_stack_capture_gone_thread_fails)
{
	struct subject s = {.tid = 0};
	pthread_t t = start_subject(&s, reader_main);
	pid_t tid = s.tid;
	stop_subject(&s, t);
	void *frames[4];
	ck_assert_int_eq(qc__stack_capture(tid, frames, 4, CAPTURE_TIMEOUT),
			 -1);
}
END_TEST

START_TEST(test_stack_capture_bad_arguments_fail)
{
	void *frames[4];
	ck_assert_int_eq(qc__stack_capture(own_tid(), NULL, 4, 0), -1);
	ck_assert_int_eq(qc__stack_capture(own_tid(), frames, 0, 0), -1);
	ck_assert_int_eq(qc__stack_capture(0, frames, 4, 0), -1);
	ck_assert_int_eq(qc__stack_capture(-5, frames, 4, 0), -1);
}
END_TEST

static NOINLINE int capture_own(void **frames, int max)
{
	int n = qc__stack_capture(own_tid(), frames, max, CAPTURE_TIMEOUT);
	__asm__ volatile("" ::: "memory");
	return n;
}

/* Captures the calling thread's stack through capture (capture_own or
 * capture_outer) into frames[QC_STACK_MAX], and formats it into text.
 * Returns the number of frames. */
static int capture_format(int (*capture)(void **, int), void **frames,
			  qc__buf *text)
{
	int n = capture(frames, QC_STACK_MAX);
	ck_assert_int_gt(n, 1);
	qc__stack_format(frames, n, text, "");
	return n;
}

START_TEST(test_stack_capture_own_thread)
{
	void *frames[QC_STACK_MAX];
	qc__buf text = QC_BUF_INIT;
	capture_format(capture_own, frames, &text);
	ck_assert_msg(
	    strstr(qc__buf_str(&text), "#0 capture_own  check_stack.c:"),
	    "capture_own is not #0 in:\n%s", qc__buf_str(&text));
	qc__buf_free(&text);
}
END_TEST

/* Functions inlined into their caller, in every build (always_inline
 * inlines at -O0 too): a capture from the innermost must name it, then
 * the one it is inlined into, then the real function, each at the line
 * of its call, as addr2line -i does. The nop after the capture keeps the
 * return address inside the inlined code. */
static int inner_capture_line, inner_call_line, outer_call_line;

static inline __attribute__((always_inline)) int capture_inner(void **frames,
							       int max)
{
	inner_capture_line = __LINE__ + 1;
	int n = qc__stack_capture(own_tid(), frames, max, CAPTURE_TIMEOUT);
	__asm__ volatile("nop" ::: "memory");
	return n;
}

static inline __attribute__((always_inline)) int capture_middle(void **frames,
								int max)
{
	inner_call_line = __LINE__ + 1;
	int n = capture_inner(frames, max);
	__asm__ volatile("nop" ::: "memory");
	return n;
}

static NOINLINE int capture_outer(void **frames, int max)
{
	outer_call_line = __LINE__ + 1;
	int n = capture_middle(frames, max);
	__asm__ volatile("nop" ::: "memory");
	return n;
}

/* Function pointer to object pointer, without ISO C's complaint. */
static const void *capture_fn_addr(int (*fn)(void **, int))
{
	const void *p;
	memcpy(&p, &fn, sizeof p);
	return p;
}

START_TEST(test_stack_format_names_inlined_functions)
{
	void *frames[QC_STACK_MAX];
	qc__buf text = QC_BUF_INIT;
	int n = capture_format(capture_outer, frames, &text);
	const char *out = qc__buf_str(&text);
	ck_assert_msg(strncmp(out, "#0 capture_inner  check_stack.c:", 32) == 0,
		      "capture_inner is not #0 in:\n%s", out);
	const char *nl = strchr(out, '\n');
	ck_assert_msg(nl && strncmp(nl - 10, " (inlined)", 10) == 0,
		      "#0 is not marked inlined in:\n%s", out);
	char want[128];
	snprintf(want, sizeof want,
		 "\n#1 capture_middle  check_stack.c:%d (inlined)\n"
		 "#2 capture_outer  check_stack.c:%d\n",
		 inner_call_line, outer_call_line);
	ck_assert_msg(strstr(out, want), "no\n%s\nin:\n%s", want + 1, out);
	/* The frames below keep counting on. */
	ck_assert_msg(strstr(out, "\n#3 "), "no #3 in:\n%s", out);
	qc__buf_free(&text);

	/* A report's stack shows the same chain. */
	qc__stack_format_user(frames, n, &text, "  ");
	out = qc__buf_str(&text);
	ck_assert_msg(strncmp(out, "  #0 capture_inner  check_stack.c:", 34) ==
			  0,
		      "capture_inner is not #0 in:\n%s", out);
	snprintf(want, sizeof want,
		 "\n  #1 capture_middle  check_stack.c:%d (inlined)\n"
		 "  #2 capture_outer  check_stack.c:%d\n",
		 inner_call_line, outer_call_line);
	ck_assert_msg(strstr(out, want), "no\n%s\nin:\n%s", want + 1, out);
	qc__buf_free(&text);
}
END_TEST

/* A creation site is a return address minus one through
 * qc__symbolize_fn: it must name the innermost inlined function, at the
 * line of the call. */
START_TEST(test_stack_symbolize_fn_names_inlined_function)
{
	void *frames[QC_STACK_MAX];
	int n = capture_outer(frames, QC_STACK_MAX);
	ck_assert_int_gt(n, 1);
	char out[256], want[64];
	qc__symbolize_fn((const char *)frames[0] - 1, out, sizeof out);
	snprintf(want, sizeof want, "capture_inner (check_stack.c:%d)",
		 inner_capture_line);
	ck_assert_msg(strcmp(out, want) == 0, "got '%s', want '%s'", out, want);
	char name[64];
	ck_assert(
	    qc__symbol_name((const char *)frames[0] - 1, name, sizeof name));
	ck_assert_str_eq(name, "capture_inner");

	/* An entry address (a start routine) names the function itself,
	 * even where its first instruction is inlined code. */
	qc__symbolize_fn(capture_fn_addr(capture_outer), out, sizeof out);
	ck_assert_msg(strncmp(out, "capture_outer (check_stack.c:", 29) == 0,
		      "got '%s'", out);
	ck_assert(
	    qc__symbol_name(capture_fn_addr(capture_outer), name, sizeof name));
	ck_assert_str_eq(name, "capture_outer");
}
END_TEST

START_TEST(test_stack_capture_max_cuts_the_stack)
{
	struct subject s = {.tid = 0};
	pthread_t t = start_subject(&s, spinner_main);
	void *frames[2];
	ck_assert_int_eq(qc__stack_capture(s.tid, frames, 2, CAPTURE_TIMEOUT),
			 2);
	stop_subject(&s, t);
}
END_TEST

/* Several threads capture the same target at once: captures are
 * serialized, each gets a full answer. */
struct racer {
	pid_t target;
	int n;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	void *frames[QC_STACK_MAX];
	for (int i = 0; i < 20; i++) {
		r->n = qc__stack_capture(r->target, frames, QC_STACK_MAX,
					 CAPTURE_TIMEOUT);
		if (r->n < 2)
			break;
	}
	return NULL;
}

START_TEST(test_stack_capture_concurrent_requests_serialize)
{
	struct subject s = {.tid = 0};
	pthread_t t = start_subject(&s, spinner_main);
	struct racer r[3];
	pthread_t rt[3];
	for (int i = 0; i < 3; i++) {
		r[i] = (struct racer){.target = s.tid, .n = 0};
		ck_assert_int_eq(
		    pthread_create(&rt[i], NULL, racer_main, &r[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_join(rt[i], NULL), 0);
		ck_assert_int_gt(r[i].n, 1);
	}
	stop_subject(&s, t);
}
END_TEST

START_TEST(test_stack_init_rejects_bad_signals)
{
	ck_assert_int_eq(qc__stack_init(0), EINVAL);
	ck_assert_int_eq(qc__stack_init(-1), EINVAL);
	ck_assert_int_eq(qc__stack_init(SIGKILL), EINVAL);
	ck_assert_int_eq(qc__stack_init(SIGSTOP), EINVAL);
	ck_assert_int_eq(qc__stack_init(100000), EINVAL);
	/* Installing twice is fine. */
	ck_assert_int_eq(qc__stack_init(capture_signal()), 0);
}
END_TEST

/* A signal that is not a capture request goes to the handler that was
 * installed before quiesce's. */
static _Atomic int earlier_handler_ran;

static void earlier_handler(int sig)
{
	(void)sig;
	atomic_store(&earlier_handler_ran, 1);
}

START_TEST(test_stack_stray_signal_reaches_earlier_handler)
{
	int sig = SIGRTMIN + 5;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = earlier_handler;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
	ck_assert_int_eq(qc__stack_init(sig), 0);
	ck_assert_int_eq(raise(sig), 0);
	ck_assert_int_eq(atomic_load(&earlier_handler_ran), 1);
}
END_TEST

static NOINLINE int query_backend(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

/* Function pointer to object pointer, without ISO C's complaint. */
static const void *fn_addr(int (*fn)(int))
{
	const void *p;
	memcpy(&p, &fn, sizeof p);
	return p;
}

START_TEST(test_stack_symbolize_fn_names_static_function)
{
	char out[256];
	qc__symbolize_fn(fn_addr(query_backend), out, sizeof out);
	ck_assert_msg(strncmp(out, "query_backend (check_stack.c:", 29) == 0,
		      "got '%s'", out);
	ck_assert_int_eq(query_backend(1), 2);

	char name[64];
	ck_assert(qc__symbol_name(fn_addr(query_backend), name, sizeof name));
	ck_assert_str_eq(name, "query_backend");
}
END_TEST

START_TEST(test_stack_symbolize_fn_truncates_and_terminates)
{
	char out[8];
	memset(out, 'x', sizeof out);
	qc__symbolize_fn(fn_addr(query_backend), out, sizeof out);
	ck_assert_uint_eq(strlen(out), sizeof out - 1);
	ck_assert_str_eq(out, "query_b");
}
END_TEST

START_TEST(test_stack_symbolize_fn_libc_without_lines)
{
	/* abs lives in libc, which carries no line information (unless
	 * libc's debug information is installed: then a file and line). */
	char out[256];
	qc__symbolize_fn(fn_addr(abs), out, sizeof out);
	ck_assert_msg(strstr(out, "abs") &&
			  (strstr(out, "(libc.so.6)") || strstr(out, ".c:")),
		      "got '%s'", out);
}
END_TEST

START_TEST(test_stack_format_unknown_addresses)
{
	void *frames[2] = {(void *)0x10, (void *)0x20};
	qc__buf text = QC_BUF_INIT;
	qc__stack_format(frames, 2, &text, NULL);
	ck_assert_str_eq(qc__buf_str(&text), "#0 0x10\n#1 0x20\n");
	qc__buf_free(&text);

	char out[32];
	qc__symbolize_fn(NULL, out, sizeof out);
	ck_assert_str_eq(out, "0x0");
	char name[16] = "untouched";
	ck_assert(!qc__symbol_name((void *)0x10, name, sizeof name));
	ck_assert_str_eq(name, "untouched");

	/* Nothing to do, nothing written. */
	qc__stack_format(frames, 0, &text, "");
	ck_assert_str_eq(qc__buf_str(&text), "");
}
END_TEST

/* A library loaded after the symbolizer built its module list is found
 * by refreshing it. */
START_TEST(test_stack_symbolize_after_dlopen)
{
	char out[256];
	qc__symbolize_fn(fn_addr(query_backend), out, sizeof out);

	void *lib = dlopen("libexpat.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		lib = dlopen("libffi.so.8", RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(lib, "no library to dlopen: %s", dlerror());
	const char *sym =
	    dlsym(lib, "XML_ParserCreate") ? "XML_ParserCreate" : "ffi_call";
	void *fn = dlsym(lib, sym);
	ck_assert_ptr_nonnull(fn);
	qc__symbolize_fn(fn, out, sizeof out);
	ck_assert_msg(strstr(out, sym), "got '%s' for %s", out, sym);
	dlclose(lib);
}
END_TEST

/* A forked child rebuilds the symbolizer for its own pid. */
START_TEST(test_stack_symbolize_in_forked_child)
{
	char out[256];
	qc__symbolize_fn(fn_addr(query_backend), out, sizeof out);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		qc__symbolize_fn(fn_addr(query_backend), out, sizeof out);
		qc__stack_shutdown();
		_exit(strstr(out, "query_backend (check_stack.c:") ? 0 : 1);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(test_stack_shutdown_then_symbolize_again)
{
	char out[256];
	qc__stack_shutdown();
	qc__stack_shutdown();
	qc__symbolize_fn(fn_addr(query_backend), out, sizeof out);
	ck_assert_msg(strstr(out, "query_backend"), "got '%s'", out);
}
END_TEST

static Suite *stack_suite(void)
{
	Suite *s = suite_create("stack");
	TCase *tc = tcase_create("capture");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stack_capture_thread_blocked_in_read);
	tcase_add_test(tc, test_stack_capture_spinning_thread);
	tcase_add_test(tc, test_stack_capture_signal_blocked_never_hangs);
	tcase_add_test(tc, test_stack_capture_gone_thread_fails);
	tcase_add_test(tc, test_stack_capture_bad_arguments_fail);
	tcase_add_test(tc, test_stack_capture_own_thread);
	tcase_add_test(tc, test_stack_format_names_inlined_functions);
	tcase_add_test(tc, test_stack_capture_max_cuts_the_stack);
	tcase_add_test(tc, test_stack_capture_concurrent_requests_serialize);
	tcase_add_test(tc, test_stack_init_rejects_bad_signals);
	tcase_add_test(tc, test_stack_stray_signal_reaches_earlier_handler);
	suite_add_tcase(s, tc);

	tc = tcase_create("symbols");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stack_symbolize_fn_names_static_function);
	tcase_add_test(tc, test_stack_symbolize_fn_names_inlined_function);
	tcase_add_test(tc, test_stack_symbolize_fn_truncates_and_terminates);
	tcase_add_test(tc, test_stack_symbolize_fn_libc_without_lines);
	tcase_add_test(tc, test_stack_format_unknown_addresses);
	tcase_add_test(tc, test_stack_symbolize_after_dlopen);
	tcase_add_test(tc, test_stack_symbolize_in_forked_child);
	tcase_add_test(tc, test_stack_shutdown_then_symbolize_again);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stack_suite());
	srunner_run_all(sr, CK_ENV);
	int run = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (run == 0)
		fprintf(stderr, "quiesce: no checks ran\n");
	return failed == 0 && run > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
