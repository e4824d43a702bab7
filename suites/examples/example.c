/*
 * example.c: runs catalogue examples in fresh harnesses and records
 * quiesce's verdict (see example.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "example.h"

static qc_duration real_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (qc_duration)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

void ex_quiet(qc_h *h, qc_duration bound, ex_verdict *v)
{
	v->quiet = qc_h_expect_quiet(h, bound);
	free(v->report);
	v->report = strdup(qc_h_report(h));
}

void ex_leaks(qc_h *h, ex_verdict *v)
{
	/* Leaks are judged only once quiet: threads that still run hold
	 * what they use. */
	if (v->quiet != 0)
		return;
	v->leaks = qc_h_check_leaks(h);
	free(v->report);
	v->report = strdup(qc_h_report(h));
}

bool ex_run(const qc_example *ex, bool bad, ex_verdict *v)
{
	memset(v, 0, sizeof *v);
	qc_h *h = qc_h_new(&ex->opts);
	if (!h) {
		v->wrong = true;
		v->report = strdup("quiesce: qc_h_new failed");
		return true;
	}
	qc_time t0 = qc_now(qc_h_clock(h));
	qc_duration r0 = real_now();
	ex->run(h, bad, v);
	v->real = real_now() - r0;
	v->virt = qc_now(qc_h_clock(h)) - t0;
	if (!v->report)
		v->report = strdup(qc_h_report(h));
	int e = qc_h_free(h);
	if (e != 0) {
		fprintf(stderr, "example %s: qc_h_free: %d\n", ex->name, e);
		v->wrong = true;
	}
	return v->quiet != 0 || v->leaks != 0 || v->wrong;
}

void ex_verdict_free(ex_verdict *v)
{
	free(v->report);
	v->report = NULL;
}

bool ex_drain(qc_h *h, qc_chan *ch)
{
	for (int round = 0; round < 1000; round++) {
		while (qc_chan_try_recv(ch, NULL) == 0)
			;
		if (qc_h_expect_quiet(h, 0) == 0)
			return true;
	}
	return false;
}
