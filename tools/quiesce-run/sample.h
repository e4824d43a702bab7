/*
 * sample.h: the sampler: which processes belong to the program, how many
 * threads they have, and each thread's lifetime, tick by tick.
 */
#ifndef QR_SAMPLE_H
#define QR_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runner.h"

struct qr_sampler;

/* qr_sampler_new: tracks main_pid (also its process group id), its
 * descendants, and processes re-parented to this process (the subreaper).
 * valgrind: main_pid runs under valgrind, whose fds are not counted.
 * NULL on ENOMEM. */
struct qr_sampler *qr_sampler_new(pid_t main_pid, bool valgrind);
void qr_sampler_free(struct qr_sampler *s);

/* qr_sampler_tick: one census at time t (since start); records and returns
 * the sample, or NULL when out of memory (the tick is then lost). Every
 * tick counts processes and threads; with detail (forced every few ticks)
 * it also lists every thread and counts the program's fds. */
const struct qr_sample *qr_sampler_tick(struct qr_sampler *s, qc_duration t,
					bool detail);

/* qr_sampler_live: live tracked processes (zombies excluded) at the last
 * tick. */
size_t qr_sampler_live(const struct qr_sampler *s);

/* qr_sampler_fds: the program's open fds at the last tick it was alive
 * (valgrind's own excluded); -1 if never counted. */
long qr_sampler_fds(const struct qr_sampler *s);

/* qr_sampler_snapshot: every live tracked process with each thread's state
 * and blocked call, read now. Returns 0 or ENOMEM. */
int qr_sampler_snapshot(struct qr_sampler *s, qc_duration t,
			struct qr_snapshot *out);
void qr_snapshot_free(struct qr_snapshot *snap);

/* qr_sampler_kill: sends sig to the program's process group and to every
 * live tracked process (those that left the group). Returns how many
 * kill() calls succeeded. */
size_t qr_sampler_kill(struct qr_sampler *s, int sig);

/* The recorded data, valid until qr_sampler_free. */
const struct qr_sample *qr_sampler_samples(const struct qr_sampler *s,
					   size_t *n);
const struct qr_life *qr_sampler_lives(const struct qr_sampler *s, size_t *n,
				       size_t *dropped);

/* qr_sampler_pids: every pid ever tracked (for libfaketime's leftovers). */
const pid_t *qr_sampler_pids(const struct qr_sampler *s, size_t *n);

#endif /* QR_SAMPLE_H */
