/*
 * check_heap.c: per-test heap-leak deltas (harness/heap.c).
 *
 * The leak is real but temporary: the block's only pointer is kept XORed
 * with a mask (and the dead stack scrubbed of stale copies), so neither
 * memcheck nor LeakSanitizer can find it while the delta is taken; the test
 * then unmasks and frees it, so the process itself ends clean. In a plain build
 * (no valgrind, no LeakSanitizer) the module must say ENOTSUP, and the tests
 * accept exactly that.
 */
/* quiesce-suite: static */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

#include "buf.h"
#include "heap.h"

extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

#define LEAK_SIZE 4096
#define MASK	  ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)

/* The leaked block, hidden from leak checkers. */
static volatile uintptr_t hidden;

/* True when a leak checker is present, so the module must work. */
static bool have_checker(void)
{
	return qc__on_memcheck() || __lsan_do_recoverable_leak_check;
}

static __attribute__((noinline)) void leak_a_block(void)
{
	char *p = malloc(LEAK_SIZE);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x11, LEAK_SIZE);
	hidden = (uintptr_t)p ^ MASK;
	p = NULL;
}

/* Overwrites the dead stack below the caller's frame, where a copy of the
 * block's pointer may linger and later be scanned as part of a live,
 * uninitialized frame. */
static __attribute__((noinline)) void scrub_stack(void)
{
	volatile char junk[16384];
	memset((char *)junk, 0, sizeof junk);
	__asm__ volatile("" : : "r"(junk) : "memory");
}

static __attribute__((noinline)) void unleak_the_block(void)
{
	free((void *)(hidden ^ MASK));
	hidden = 0;
}

START_TEST(test_heap_catches_deliberate_leak)
{
	qc__heap *base = NULL;
	int e = qc__heap_baseline(&base);
	if (!have_checker()) {
		ck_assert_int_eq(e, ENOTSUP);
		ck_assert_ptr_null(base);
		return;
	}
	ck_assert_int_eq(e, 0);

	leak_a_block();
	scrub_stack();
	size_t bytes = 0, blocks = 0;
	qc__buf details = QC_BUF_INIT;
	ck_assert_int_eq(qc__heap_delta(base, &bytes, &blocks, &details), 0);
	unleak_the_block();
	qc__heap_free(base);

	const char *d = qc__buf_str(&details);
	ck_assert_msg(bytes >= LEAK_SIZE, "%zu bytes; details: %s", bytes, d);
	ck_assert_uint_ge(blocks, 1);
	ck_assert_msg(strstr(d, "valgrind: ") || strstr(d, "LeakSanitizer: "),
		      "details: %s", d);
	ck_assert_msg(strstr(d, "since the test began"), "details: %s", d);
	qc__buf_free(&details);
}
END_TEST

START_TEST(test_heap_no_leak_no_finding)
{
	qc__heap *base = NULL;
	int e = qc__heap_baseline(&base);
	if (!have_checker()) {
		ck_assert_int_eq(e, ENOTSUP);
		return;
	}
	ck_assert_int_eq(e, 0);
	void *p = malloc(100);
	free(p);
	size_t bytes = 1, blocks = 1;
	qc__buf details = QC_BUF_INIT;
	ck_assert_int_eq(qc__heap_delta(base, &bytes, &blocks, &details), 0);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_uint_eq(blocks, 0);
	ck_assert_str_eq(qc__buf_str(&details), "");
	qc__heap_free(base);
	qc__buf_free(&details);
}
END_TEST

/* A leak older than the baseline is not this test's. */
START_TEST(test_heap_old_leak_not_blamed)
{
	if (!have_checker())
		return;
	leak_a_block();
	scrub_stack();
	qc__heap *base = NULL;
	ck_assert_int_eq(qc__heap_baseline(&base), 0);
	size_t bytes = 1, blocks = 1;
	ck_assert_int_eq(qc__heap_delta(base, &bytes, &blocks, NULL), 0);
	unleak_the_block();
	qc__heap_free(base);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_uint_eq(blocks, 0);
}
END_TEST

START_TEST(test_heap_bad_arguments)
{
	size_t bytes, blocks;
	ck_assert_int_eq(qc__heap_baseline(NULL), EINVAL);
	ck_assert_int_eq(qc__heap_delta(NULL, &bytes, &blocks, NULL), EINVAL);
	qc__heap_free(NULL);
	qc__heap *base = NULL;
	if (qc__heap_baseline(&base) == 0) {
		ck_assert_int_eq(qc__heap_delta(base, NULL, &blocks, NULL),
				 EINVAL);
		ck_assert_int_eq(qc__heap_delta(base, &bytes, NULL, NULL),
				 EINVAL);
		qc__heap_free(base);
	}
}
END_TEST

static Suite *heap_suite(void)
{
	Suite *s = suite_create("heap");
	TCase *tc = tcase_create("delta");
	/* A leak search under valgrind scans the whole process. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_heap_catches_deliberate_leak);
	tcase_add_test(tc, test_heap_no_leak_no_finding);
	tcase_add_test(tc, test_heap_old_leak_not_blamed);
	tcase_add_test(tc, test_heap_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(heap_suite());
	srunner_run_all(sr, CK_ENV);
	int run = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (run == 0)
		fprintf(stderr, "quiesce: no checks ran\n");
	return failed == 0 && run > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
