/*
 * quiesce/faketime.h: running a child process under libfaketime.
 *
 * quiesce cannot move the clock of a program it does not link into, so for
 * those (quiesce-run --faketime, the CTest faketime variant) it preloads
 * libfaketime with a time spec. This module parses and checks the spec,
 * writes it where libfaketime reads it, and builds the child's environment.
 *
 * Verified behaviour of libfaketime 0.9.10 on Debian 12, which callers must
 * design around:
 *   - "+0 x100" (the "+0" matters) makes nanosleep, clock_nanosleep, usleep,
 *     sleep, poll and pthread_cond_timedwait run 100 times faster, from the
 *     start of the process;
 *   - the faked CLOCK_MONOTONIC starts near wall-clock-like values, so
 *     pthread_cond_clockwait/sem_clockwait on it can hang; sem_timedwait
 *     scales the wrong way; timer_settime is not intercepted (glibc >= 2.34);
 *   - FAKETIME_DONT_FAKE_MONOTONIC=1 breaks monotonic timed waits, so the
 *     child's environment never carries it;
 *   - an ASan program needs libasan ahead of libfaketime in LD_PRELOAD;
 *   - a FAKETIME variable wins over the timestamp file, so the child's
 *     environment never carries one;
 *   - libfaketime exits the program on a spec it cannot parse (hence the
 *     parser here, which accepts a subset that libfaketime surely reads);
 *   - a child killed by a signal leaves /dev/shm/faketime_shm_<pid> and
 *     /dev/shm/sem.faketime_sem_<pid> behind (qc_faketime_cleanup_pid).
 *
 * Thread safety: qc_faketime_parse, _format, _library, _asan_runtime and
 * _cleanup_pid are thread-safe; a qc_faketime_child is used by one thread at
 * a time. qc_faketime_child_new reads the process environment: do not
 * change it concurrently.
 */
#ifndef QUIESCE_FAKETIME_H
#define QUIESCE_FAKETIME_H

#include <stddef.h>
#include <sys/types.h>

#include <quiesce/api.h>
#include <quiesce/time.h>

QC_BEGIN_DECLS

/* The three forms of a spec quiesce accepts. */
typedef enum qc_faketime_kind {
	QC_FAKETIME_OFFSET = 1, /* "+N[smhdy]" / "-N[smhdy]" [" xF"]: the
				   real time plus an offset, at speed F */
	QC_FAKETIME_START,	/* "@YYYY-MM-DD hh:mm:ss" [" xF"]: starts
				   there when the process starts, then runs */
	QC_FAKETIME_FROZEN,	/* "YYYY-MM-DD hh:mm:ss": stands still */
} qc_faketime_kind;

/* qc_faketime: a parsed spec. Plain value; zero is not a valid spec. */
typedef struct qc_faketime {
	qc_faketime_kind kind;
	qc_duration offset; /* OFFSET: added to the real time, ns (signed) */
	int year, month, day, hour, minute, second; /* START, FROZEN: the
					   faked wall time as libfaketime reads
					   it (local time); month 1-12 */
	double speed; /* OFFSET, START: clock rate, > 0 (1: real speed);
			 FROZEN: 0 */
} qc_faketime;

/*
 * qc_faketime_parse: parses spec into *out (written only on success).
 * Accepted: "+N" or "-N" with N a decimal number of seconds, or followed by
 * one unit of s, m, h, d, y (365 days), e.g. "+0", "-2d", "+1.5h"; either
 * optionally followed by one space and "xF" with F a decimal > 0 ("+0 x10",
 * "+1d x0.5"); "@YYYY-MM-DD hh:mm:ss" optionally followed by " xF"; and
 * "YYYY-MM-DD hh:mm:ss" (frozen). Dates must exist (no February 30).
 * Returns 0, or EINVAL for NULL spec/out or a malformed spec: then a
 * one-line message naming the problem and listing the accepted forms goes
 * to err (size errlen, NUL-terminated) if err is not NULL, else to stderr as
 * "quiesce: ...". Thread safety: safe; does not block.
 */
QC_API int qc_faketime_parse(const char *spec, qc_faketime *out, char *err,
			     size_t errlen);

/*
 * qc_faketime_format: the canonical libfaketime string for *ft into buf
 * (size n): "+0 x100", "-172800", "+5400.5", "@2020-01-01 00:00:00 x2",
 * "2020-01-01 00:00:00". Offsets are written in seconds; a speed of 1 is
 * left out. Parsing the result gives back *ft. Returns 0, EINVAL (NULL, or
 * *ft not valid), or ERANGE (buf too small; buf then holds "" if n > 0).
 * Thread safety: safe; does not block.
 */
QC_API int qc_faketime_format(const qc_faketime *ft, char *buf, size_t n);

/*
 * qc_faketime_library: the path of libfaketimeMT.so.1 (the thread-safe
 * variant) into path (size n): $QC_FAKETIME_LIB if set, else the Debian
 * location /usr/lib/<multiarch>/faketime/. Returns 0; ENOENT when it is not
 * there (one line on stderr: install the Debian package 'libfaketime');
 * EINVAL for NULL path; ERANGE when n is too small.
 * Thread safety: safe; does not block.
 */
QC_API int qc_faketime_library(char *path, size_t n);

/*
 * qc_faketime_asan_runtime: whether the ELF file program needs an
 * AddressSanitizer runtime (a DT_NEEDED entry libasan.so.N or
 * libclang_rt.asan-*.so); if so its name goes into soname (size n).
 * Returns 0 (needed; soname written), ENOENT (not needed, or no file),
 * ENOEXEC (not an ELF file: a script), EINVAL, ERANGE, or the errno of
 * open. Thread safety: safe; does not block.
 */
QC_API int qc_faketime_asan_runtime(const char *program, char *soname,
				    size_t n);

typedef struct qc_faketime_child qc_faketime_child;

/*
 * qc_faketime_child_new: prepares to run one child process under *ft:
 * finds libfaketime, writes the canonical spec to a timestamp file of its
 * own in dir (NULL: $TMPDIR, else /tmp) atomically (a temporary file in the
 * same directory, then rename), and builds the child's environment: the
 * current environment without FAKETIME and FAKETIME_DONT_FAKE_MONOTONIC,
 * with FAKETIME_TIMESTAMP_FILE=<file>, FAKETIME_NO_CACHE=1 (the child
 * re-reads the file, so qc_faketime_child_update reaches it), and
 * LD_PRELOAD=[asan runtime:]<libfaketime>[:the previous LD_PRELOAD]. The
 * asan runtime comes first when program (resolved through PATH when it has
 * no '/'; may be NULL) needs one, or when the previous LD_PRELOAD had it.
 * Returns the handle (caller frees with qc_faketime_child_free), or NULL
 * with errno, after one line "quiesce: ..." on stderr: ENOENT (libfaketime
 * missing; dir missing), EACCES/EROFS/ENOTDIR/... (dir not writable: never
 * a silent fallback elsewhere), EINVAL (NULL or invalid ft), ENOMEM.
 * Thread safety: see the header comment.
 */
QC_API qc_faketime_child *qc_faketime_child_new(const qc_faketime *ft,
						const char *program,
						const char *dir);

/* qc_faketime_child_envp: the child's environment, NULL-terminated, for
 * execve/posix_spawn (borrowed; valid until qc_faketime_child_free). NULL
 * for NULL. */
QC_API char *const *qc_faketime_child_envp(const qc_faketime_child *c);

/* qc_faketime_child_file: the timestamp file's path (borrowed), or NULL
 * for NULL. */
QC_API const char *qc_faketime_child_file(const qc_faketime_child *c);

/*
 * qc_faketime_child_update: atomically replaces the spec in the timestamp
 * file; a running child picks it up on its next clock read. libfaketime
 * keeps the start of a speed-up at process start. Returns 0, EINVAL, or
 * the errno of writing the file. Thread safety: one thread per handle.
 */
QC_API int qc_faketime_child_update(qc_faketime_child *c,
				    const qc_faketime *ft);

/*
 * qc_faketime_child_free: removes the timestamp file and frees c. Accepts
 * NULL (returns 0). Returns 0, or the errno of unlink (other than ENOENT);
 * c is freed either way. Thread safety: one thread per handle.
 */
QC_API int qc_faketime_child_free(qc_faketime_child *c);

/*
 * qc_faketime_cleanup_pid: removes /dev/shm/faketime_shm_<pid> and
 * /dev/shm/sem.faketime_sem_<pid>, which libfaketime leaves behind when the
 * process with that pid dies by a signal. Call it only once that process is
 * gone (the pid might otherwise be reused by a live faketime process).
 * Returns 0 (also when there was nothing to remove), EINVAL (pid <= 0), or
 * the errno of unlink. Thread safety: safe; does not block.
 */
QC_API int qc_faketime_cleanup_pid(pid_t pid);

QC_END_DECLS

#endif /* QUIESCE_FAKETIME_H */
