/*
 * heap.c: per-test heap-leak deltas through the leak checker the process
 * runs under (see heap.h).
 *
 * valgrind memcheck (not valgrind's other tools, which count no leaks):
 * VALGRIND_DO_QUICK_LEAK_CHECK, then the byte and block
 * counters of that search (COUNT_LEAKS reports definitely + indirectly lost
 * as "leaked", possibly lost as "dubious"). Only "leaked" counts: in a
 * running process "possibly lost" is mostly noise, above all glibc's
 * dynamic thread vector (allocate_dtv, 288-320 bytes per thread), which the
 * thread's descriptor points into the middle of for as long as the thread
 * or its cached stack lives; its growth is shown in the details only. A
 * quick (summary) search prints a short LEAK SUMMARY to valgrind's log but,
 * unlike a full one, counts no errors, so a test that leaks on purpose and
 * then frees the block does not turn valgrind's exit status into a
 * failure.
 *
 * AddressSanitizer / LeakSanitizer: __lsan_do_recoverable_leak_check (weak:
 * present only when a sanitizer runtime is loaded) reports every current
 * leak to stderr and returns non-zero when there is any. Its report is
 * captured (fd 2 is pointed at a memfd for the length of the search) to
 * read the totals from its SUMMARY line, so the delta is in bytes and
 * allocations, and old leaks are not blamed on the current test. The report
 * is passed on to stderr only when the test leaked. While fd 2 is
 * redirected, other threads' stderr output goes to the memfd too and is
 * passed on with it, or dropped when there is nothing to report (the
 * search stops every thread anyway, so the window is short).
 *
 * Invariants: a qc__heap records the mode it was made in; the delta uses
 * the same tool. No locks: the searches serialize inside the tools, and the
 * stderr redirection is not reentrant (one harness, one test thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

#include "alloc.h"
#include "heap.h"

/* Present only when a sanitizer runtime with LeakSanitizer is loaded. The
 * declaration is the runtime's; defined outside this library. */
extern int __lsan_do_recoverable_leak_check(void)
    __attribute__((weak, visibility("default")));

enum { MODE_VALGRIND = 1, MODE_LSAN };

struct qc__heap {
	int mode;
	bool known;   /* totals read (LSan: its SUMMARY line was seen) */
	bool any;     /* LSan said leaks existed */
	size_t bytes; /* definitely + indirectly lost (LSan: leaked) */
	size_t blocks;
	size_t possibly; /* valgrind: possibly lost bytes (not counted) */
};

/* True if the option string s turns detect_leaks off. */
static bool option_off(const char *s)
{
	if (!s)
		return false;
	const char *p = strstr(s, "detect_leaks=");
	if (!p)
		return false;
	p += strlen("detect_leaks=");
	return *p == '0' || strncmp(p, "false", 5) == 0;
}

/* memcheck answers its own client requests; another tool leaves a
 * request's default (0) in place. GET_VBITS of a defined word answers 1. */
bool qc__on_memcheck(void)
{
	if (!RUNNING_ON_VALGRIND)
		return false;
	unsigned word = 0, vbits = 0;
	return VALGRIND_GET_VBITS(&word, &vbits, sizeof word) == 1;
}

static int current_mode(void)
{
	if (RUNNING_ON_VALGRIND)
		return qc__on_memcheck() ? MODE_VALGRIND : 0;
	if (__lsan_do_recoverable_leak_check) {
		if (option_off(getenv("ASAN_OPTIONS")) ||
		    option_off(getenv("LSAN_OPTIONS")))
			return 0;
		return MODE_LSAN;
	}
	return 0;
}

static void valgrind_search(struct qc__heap *h)
{
	unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
	unsigned long bleaked = 0, bdubious = 0, breachable = 0,
		      bsuppressed = 0;
	VALGRIND_DO_QUICK_LEAK_CHECK;
	VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
	VALGRIND_COUNT_LEAK_BLOCKS(bleaked, bdubious, breachable, bsuppressed);
	(void)reachable;
	(void)suppressed;
	(void)breachable;
	(void)bsuppressed;
	(void)bdubious;
	h->known = true;
	h->possibly = dubious;
	h->bytes = leaked;
	h->blocks = bleaked;
}

/* Reads the "N byte(s) leaked in M allocation(s)" of LeakSanitizer's
 * SUMMARY line. */
static bool parse_summary(const char *text, size_t *bytes, size_t *blocks)
{
	const char *p = strstr(text, "SUMMARY: ");
	const char *key = p ? strstr(p, " byte(s) leaked in ") : NULL;
	if (!key)
		return false;
	const char *start = key;
	while (start > p && start[-1] >= '0' && start[-1] <= '9')
		start--;
	if (start == key)
		return false;
	*bytes = (size_t)strtoull(start, NULL, 10);
	*blocks =
	    (size_t)strtoull(key + strlen(" byte(s) leaked in "), NULL, 10);
	return true;
}

/* Writes all of s to fd 2. */
static void to_stderr(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Runs LeakSanitizer's search with its report captured into *report. */
static void lsan_search(struct qc__heap *h, qc__buf *report)
{
	fflush(stderr);
	int mfd = memfd_create("quiesce-lsan", MFD_CLOEXEC);
	int saved = mfd >= 0 ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
	bool captured = saved >= 0 && dup2(mfd, STDERR_FILENO) >= 0;

	h->any = __lsan_do_recoverable_leak_check() != 0;

	if (captured) {
		dup2(saved, STDERR_FILENO);
		char chunk[4096];
		ssize_t r;
		lseek(mfd, 0, SEEK_SET);
		while ((r = read(mfd, chunk, sizeof chunk - 1)) > 0) {
			chunk[r] = '\0';
			qc__buf_puts(report, chunk);
		}
	}
	if (saved >= 0)
		close(saved);
	if (mfd >= 0)
		close(mfd);

	h->known = false;
	h->bytes = h->blocks = 0;
	if (!h->any)
		h->known = true;
	else if (parse_summary(qc__buf_str(report), &h->bytes, &h->blocks))
		h->known = true;
}

int qc__heap_baseline(qc__heap **out)
{
	if (!out)
		return EINVAL;
	int mode = current_mode();
	if (!mode)
		return ENOTSUP;
	struct qc__heap *h = qc__calloc(1, sizeof *h);
	if (!h)
		return ENOMEM;
	h->mode = mode;
	if (mode == MODE_VALGRIND) {
		valgrind_search(h);
	} else {
		qc__buf report = QC_BUF_INIT;
		lsan_search(h, &report);
		/* Nothing leaked: whatever was captured came from other
		 * threads; pass it on. Old leaks are not news. */
		if (!h->any)
			to_stderr(qc__buf_str(&report), report.len);
		qc__buf_free(&report);
	}
	*out = h;
	return 0;
}

static size_t growth(size_t now, size_t then)
{
	return now > then ? now - then : 0;
}

static const char *plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

int qc__heap_delta(qc__heap *base, size_t *leaked_bytes, size_t *leaked_blocks,
		   qc__buf *details)
{
	if (!base || !leaked_bytes || !leaked_blocks)
		return EINVAL;
	if (current_mode() != base->mode)
		return ENOTSUP;
	struct qc__heap now = {.mode = base->mode};
	size_t bytes, blocks;

	if (base->mode == MODE_VALGRIND) {
		valgrind_search(&now);
		bytes = growth(now.bytes, base->bytes);
		blocks = growth(now.blocks, base->blocks);
		if ((bytes || blocks) && details)
			qc__buf_printf(
			    details,
			    "    valgrind: %zu %s in %zu %s definitely or "
			    "indirectly lost since the test began (possibly "
			    "lost, not counted: %+zd bytes); valgrind's leak "
			    "check at exit lists their allocation stacks "
			    "(--leak-check=full)\n",
			    bytes, plural(bytes, "byte", "bytes"), blocks,
			    plural(blocks, "block", "blocks"),
			    (ssize_t)(now.possibly - base->possibly));
		goto done;
	}

	qc__buf report = QC_BUF_INIT;
	lsan_search(&now, &report);
	if (now.known && base->known) {
		bytes = growth(now.bytes, base->bytes);
		blocks = growth(now.blocks, base->blocks);
	} else {
		/* No totals (its report went to log_path): only "none
		 * before, some now" can be told apart. */
		bytes = 0;
		blocks = now.any && !base->any ? 1 : 0;
	}
	if (bytes || blocks) {
		to_stderr(qc__buf_str(&report), report.len);
		if (details && now.known && base->known)
			qc__buf_printf(
			    details,
			    "    LeakSanitizer: %zu %s in %zu %s leaked since "
			    "the test began; its report, with the "
			    "allocation stacks (older leaks included), is "
			    "on stderr\n",
			    bytes, plural(bytes, "byte", "bytes"), blocks,
			    plural(blocks, "allocation", "allocations"));
		else if (details)
			qc__buf_puts(
			    details,
			    "    LeakSanitizer: new leaks since the test "
			    "began; its report, with the allocation "
			    "stacks, is in its log\n");
	}
	qc__buf_free(&report);

done:
	*leaked_bytes = bytes;
	*leaked_blocks = blocks;
	return 0;
}

void qc__heap_free(qc__heap *base)
{
	qc__free(base);
}
