/*
 * fuzz_model.c: libFuzzer target driving the context model checker from
 * bytes: every 4 bytes are one operation (see model.h). A mismatch with the
 * reference model aborts with what differed, so the fuzzer keeps the input.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Iharness \
 *         suites/fuzz_model.c suites/model.c <libquiesce sources>
 *   ./fuzz_model suites/corpus/model -max_total_time=20
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { MAX_OPS = 2048 };
	static model_op ops[MAX_OPS];
	size_t n = size / 4 < MAX_OPS ? size / 4 : MAX_OPS;
	memcpy(ops, data, n * 4);
	char why[256];
	if (!model_run(ops, n, why, sizeof why)) {
		fprintf(stderr, "model mismatch: %s\n", why);
		abort();
	}
	return 0;
}
