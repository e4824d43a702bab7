/*
 * loop.h: the event loop that drives one run from start to verdict data.
 */
#ifndef QR_LOOP_H
#define QR_LOOP_H

#include <regex.h>

#include "runner.h"
#include "sample.h"

/* qr_now: CLOCK_MONOTONIC in ns (quiesce-run itself never runs under
 * libfaketime: only the program does). */
qc_time qr_now(void);

/*
 * qr_loop_run: watches the program r->pid (started at monotonic time t0)
 * through readiness, the signal and the bound, sampling with s, reading
 * its stdout from out_fd (closed here) and matching re (QR_READY_LINE),
 * reaping through the signalfd sfd (SIGCHLD, SIGINT, SIGTERM, SIGHUP
 * blocked by the caller). Fills r's times, counts, status, survivors and
 * reasons. On return the program and every tracked process are gone, or
 * were sent SIGKILL and a reason says which would not die. Every wait is
 * bounded: ready timeout, bound, then 5 s for SIGKILL to take effect.
 * Returns 0, or QR_EXIT_ERROR when the program never became ready or the
 * runner was interrupted (a reason says which).
 */
int qr_loop_run(struct qr_run *r, struct qr_sampler *s, int sfd, int out_fd,
		regex_t *re, qc_time t0);

#endif /* QR_LOOP_H */
