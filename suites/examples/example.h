/*
 * example.h: the catalogue of real cancellation bugs (suites/examples/).
 *
 * Each example is a small module of code under test in a BAD and a GOOD
 * version, and a scenario that runs either version inside a harness the way
 * a unit test would. check_examples.c asserts that quiesce catches every BAD
 * version with a report naming the thread, its state, where it was created
 * and the context it ignored, and passes every GOOD version; the demo
 * (tools/demo) prints the same reports and a summary table.
 */
#ifndef QC_EXAMPLE_H
#define QC_EXAMPLE_H

#include <stdbool.h>

#include <quiesce/quiesce.h>

/* What quiesce said about one run. */
typedef struct ex_verdict {
	int quiet;	  /* qc_h_expect_quiet's result (0, ETIMEDOUT...) */
	int leaks;	  /* qc_h_check_leaks's result */
	bool wrong;	  /* the scenario's own check failed (e.g. a deadline
			     that never reached a helper) */
	char *report;	  /* qc_h_report at the verdict (malloc'd) */
	char note[200];	  /* what the scenario itself saw, for the demo */
	qc_duration virt; /* virtual time the run took */
	qc_duration real; /* real time the run took */
} ex_verdict;

typedef struct qc_example {
	const char *name; /* short id: "busy-worker" */
	const char *bug;  /* one line: what goes wrong */
	/* Runs the BAD or GOOD version in h from the test thread and fills
	 * v (quiet, leaks, wrong). Must leave no thread of its own running:
	 * a BAD version is unblocked after the verdict. */
	void (*run)(qc_h *h, bool bad, ex_verdict *v);
	qc_h_opts opts;	       /* harness options for this example */
	const char *expect[6]; /* words the BAD report must contain */
} qc_example;

/* The catalogue, NULL-terminated. */
extern const qc_example *const ex_catalogue[];

/* Runs one version in a fresh harness, timing it, and fills v. Returns
 * true when quiesce caught something (not quiet, leaks, or wrong). */
bool ex_run(const qc_example *ex, bool bad, ex_verdict *v);
void ex_verdict_free(ex_verdict *v);

/* The verdict on h's threads: quiet within bound (from qc_h_cancel, or
 * from the call when nothing was cancelled)? Records the report. */
void ex_quiet(qc_h *h, qc_duration bound, ex_verdict *v);
/* Once quiet and cleaned up as a test would (contexts released, fds
 * closed): what was left behind? Records the report. */
void ex_leaks(qc_h *h, ex_verdict *v);

/* Receives from ch until the harness is quiet (BAD senders blocked on
 * it can then finish); false if that never happens. */
bool ex_drain(qc_h *h, qc_chan *ch);

#endif
