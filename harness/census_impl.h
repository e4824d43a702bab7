/*
 * census_impl.h: helpers shared by census.c and census_fd.c (never
 * installed).
 */
#ifndef QC_CENSUS_IMPL_H
#define QC_CENSUS_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest /proc path the census builds ("/proc/2147483647/task/..."). */
#define QC__PROC_PATH_MAX 96

/*
 * qc__proc_path: "/proc/<pid><rest>" into buf (QC__PROC_PATH_MAX bytes),
 * with "self" for pid 0 so that callers need not know their own pid.
 */
void qc__proc_path(char *buf, pid_t pid, const char *rest);

/*
 * qc__read_small: reads the whole (small) file at path into buf, size n,
 * NUL-terminated and truncated to n - 1 bytes. Returns the length, or
 * -errno (ENOENT for a vanished /proc entry, EACCES without rights).
 */
ssize_t qc__read_small(const char *path, char *buf, size_t n);

/*
 * qc__list_numeric: lists the all-digit entry names of directory path
 * (/proc, /proc/<pid>/task, /proc/<pid>/fd) into out[0..cap) and the total
 * into *n, sorted ascending; skip_own_fd leaves out the fd used for the
 * listing (for /proc/self/fd). Returns 0, ERANGE (more than cap; out holds
 * the first cap), ESRCH (path vanished: the process is gone), or errno.
 */
int qc__list_numeric(const char *path, int skip_own_fd, int *out, size_t cap,
		     size_t *n);

/*
 * qc__census_sched: thread tid's (of this process) time on a CPU in ns
 * (/proc/self/task/<tid>/schedstat) and its state letter ('R' running or
 * runnable, 'S', 'D', ...). Returns 0, ENOENT (no such thread, or a kernel
 * without schedstat), or another errno.
 */
int qc__census_sched(pid_t tid, uint64_t *run, char *state);

#endif /* QC_CENSUS_IMPL_H */
