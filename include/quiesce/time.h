/*
 * quiesce/time.h: points in time and durations, in nanoseconds.
 *
 * A qc_time is a point on one clock's timeline. On the real clock it is
 * CLOCK_MONOTONIC; on a virtual clock it counts from the Unix epoch, so that
 * it can be shown to code under test as wall time. A qc_duration is a signed
 * span of nanoseconds. Plain values: thread-safe by nature.
 */
#ifndef QUIESCE_TIME_H
#define QUIESCE_TIME_H

#include <stddef.h>
#include <stdint.h>

#include <quiesce/api.h>

QC_BEGIN_DECLS

typedef int64_t qc_time;     /* nanoseconds on a clock's timeline */
typedef int64_t qc_duration; /* nanoseconds; negative where documented */

#define QC_NANOSECOND  ((qc_duration)1)
#define QC_MICROSECOND ((qc_duration)1000)
#define QC_MILLISECOND ((qc_duration)1000000)
#define QC_SECOND      ((qc_duration)1000000000)
#define QC_MINUTE      (60 * QC_SECOND)
#define QC_HOUR	       (60 * QC_MINUTE)

/* QC_TIME_NEVER: no deadline; later than every other qc_time. */
#define QC_TIME_NEVER ((qc_time)INT64_MAX)

/* QC_VIRTUAL_EPOCH: 2000-01-01T00:00:00Z in ns since the Unix epoch, the
 * default start of a virtual clock. */
#define QC_VIRTUAL_EPOCH ((qc_time)946684800 * QC_SECOND)

/*
 * qc_time_add: t + d, saturating at QC_TIME_NEVER on overflow and at
 * INT64_MIN on underflow. QC_TIME_NEVER + anything stays QC_TIME_NEVER.
 */
static inline qc_time qc_time_add(qc_time t, qc_duration d)
{
	if (t == QC_TIME_NEVER)
		return QC_TIME_NEVER;
	if (d > 0 && t > INT64_MAX - d)
		return QC_TIME_NEVER;
	if (d < 0 && t < INT64_MIN - d)
		return INT64_MIN;
	return t + d;
}

/*
 * qc_duration_format: writes d in Go's time.Duration form ("1h0m0.5s",
 * "100ms", "1.5us", "0s") into buf of size n, always NUL-terminated.
 * Returns buf. Thread safety: safe; does not block.
 */
QC_API char *qc_duration_format(qc_duration d, char *buf, size_t n);

/*
 * qc_duration_parse: parses a Go-style duration ("1h30m", "250ms", "1.5s",
 * "-2us"; units ns, us, ms, s, m, h; a bare "0" is allowed) into *out.
 * Returns 0, or EINVAL for NULL arguments, a malformed string or a missing
 * unit, ERANGE on overflow. *out is written only on success.
 * Thread safety: safe; does not block.
 */
QC_API int qc_duration_parse(const char *s, qc_duration *out);

QC_END_DECLS

#endif /* QUIESCE_TIME_H */
