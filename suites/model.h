/*
 * model.h: a model-based checker for contexts. An interpreter applies a
 * sequence of operations to real contexts on a virtual clock and, after
 * every step, compares them with a small reference model of what Go's
 * semantics say they must be. Shared by check_model.c (fixed seeds and
 * shrinking) and fuzz_model.c (libFuzzer drives the bytes).
 */
#ifndef QC_SUITES_MODEL_H
#define QC_SUITES_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One operation, decoded from 4 bytes. */
typedef struct model_op {
	uint8_t code, a, b, c;
} model_op;

/* Runs ops[0..n) on a fresh virtual clock; returns true when every step
 * matched the model. On a mismatch writes what differed (and at which step)
 * into why and returns false. Frees everything it made either way. */
bool model_run(const model_op *ops, size_t n, char *why, size_t why_len);

/* Set by a test of the shrinker: the model forgets causes. */
extern bool model_plant_bug;

/* Formats op i for a reproduction listing. */
void model_op_format(const model_op *op, char *buf, size_t n);

#endif
