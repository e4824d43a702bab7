/*
 * quiesce/census.h: a census of processes, threads and file descriptors
 * from Linux /proc.
 *
 * The cheap questions (how many threads, which thread ids, which fds, which
 * processes) list one /proc directory with getdents64 and read nothing
 * else, so a harness or a runner can ask them every few milliseconds. The
 * expensive ones (what a thread is doing, what an fd is) read a few small
 * files each and are meant for reports, on demand.
 *
 * Everything here is a snapshot: a thread or process may be gone by the time
 * the caller looks at the answer. A pid of 0 means the calling process.
 * Reading another process's syscall, wchan or fd targets needs the same
 * rights as ptrace (the parent, the same user under Yama scope 0 or 1 for a
 * descendant, or root).
 *
 * Thread safety: every function is thread-safe (no shared state) and none
 * blocks beyond reading /proc.
 */
#ifndef QUIESCE_CENSUS_H
#define QUIESCE_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <quiesce/api.h>

QC_BEGIN_DECLS

/* qc_thread_info.syscall when the thread is on a CPU or runnable. */
#define QC_SYSCALL_RUNNING (-1L)
/* qc_thread_info.syscall when the thread is blocked outside a system call
 * (a page fault, a ptrace stop) or /proc would not tell (no permission). */
#define QC_SYSCALL_UNKNOWN (-2L)

/* qc_thread_info: what one thread is doing, from /proc/<pid>/task/<tid>. */
typedef struct qc_thread_info {
	pid_t tid;
	char name[16];	       /* comm: the OS thread name, NUL-terminated */
	char state;	       /* stat's state: R S D T t Z X I; '?' unknown */
	long syscall;	       /* blocked system call number, or one of
				  QC_SYSCALL_RUNNING, QC_SYSCALL_UNKNOWN */
	unsigned long args[6]; /* its arguments (valid when syscall >= 0) */
	char wchan[64];	       /* kernel wait channel; "" when none/hidden */
} qc_thread_info;

/* qc_proc_info: one process, from /proc/<pid>/stat. */
typedef struct qc_proc_info {
	pid_t pid;
	pid_t ppid;
	pid_t pgid;
	pid_t sid;
	char state;			/* R S D T t Z X I; 'Z' is a zombie,
					   or a live process whose main thread
					   exited (then threads > 1) */
	char name[16];			/* comm */
	long threads;			/* num_threads */
	unsigned long long start_ticks; /* start time, clock ticks after
					   boot: with pid, identifies it */
	unsigned long long cpu_ticks;	/* utime + stime, clock ticks */
} qc_proc_info;

/*
 * qc_census_count: the number of threads of process pid (0: the caller)
 * into *count (not NULL), by listing /proc/<pid>/task. Returns 0, ESRCH (no
 * such process), EINVAL (count NULL or pid < 0), or the errno of
 * open/getdents64. A census of 1,000 threads takes well under a millisecond.
 * Thread safety: safe; does not block.
 */
QC_API int qc_census_count(pid_t pid, size_t *count);

/*
 * qc_census_tids: lists the thread ids of pid (0: the caller) into tids
 * (caller storage, cap entries; may be NULL when cap is 0), in /proc's
 * order (ascending), and writes the number found to *n (not NULL). Returns
 * 0; ERANGE if more than cap threads were found (then, as an exception to
 * the out-parameter rule, the first cap entries are filled and *n is the
 * full count, so the caller can grow its array and retry); ESRCH, EINVAL,
 * or the errno of open/getdents64. Thread safety: safe; does not block.
 */
QC_API int qc_census_tids(pid_t pid, pid_t *tids, size_t cap, size_t *n);

/*
 * qc_census_tids_alloc: like qc_census_tids into an array it allocates:
 * *tids (caller frees with qc_census_free) and *n, written only on success.
 * Returns 0, ENOMEM, ESRCH, EINVAL, or the errno of open/getdents64.
 * Thread safety: safe; does not block.
 */
QC_API int qc_census_tids_alloc(pid_t pid, pid_t **tids, size_t *n);

/* qc_census_free: frees an array returned by a qc_census_*_alloc function.
 * Accepts NULL. Thread safety: safe. */
QC_API void qc_census_free(void *array);

/*
 * qc_census_thread: fills *info (not NULL) for thread tid of pid (0: the
 * caller): name and state from stat, the blocked system call and its
 * arguments from syscall, and wchan. Fields /proc refuses to show (syscall
 * and wchan need ptrace rights) are left QC_SYSCALL_UNKNOWN and "".
 * Returns 0, ESRCH (no such thread), EINVAL (info NULL, pid or tid < 0 or
 * tid 0), or the errno of open/read. *info is written only on success.
 * Thread safety: safe; does not block.
 */
QC_API int qc_census_thread(pid_t pid, pid_t tid, qc_thread_info *info);

/*
 * qc_census_thread_name: the OS name (comm) of thread tid of pid (0: the
 * caller) into name (16 bytes), reading one file: cheaper than
 * qc_census_thread when only the name is wanted. Returns 0, ESRCH, EINVAL
 * (NULL name, pid < 0, tid <= 0), or the errno of open/read. name is
 * written only on success. Thread safety: safe; does not block.
 */
QC_API int qc_census_thread_name(pid_t pid, pid_t tid, char name[16]);

/*
 * qc_syscall_name: the name of system call nr on this architecture
 * ("read", "futex", "epoll_wait", ...) for the calls a blocked thread is
 * commonly found in and the usual others, or NULL when not in the table.
 * Thread safety: safe; returns a static string.
 */
QC_API const char *qc_syscall_name(long nr);

/* qc_syscall_takes_fd: true when system call nr's first argument is a file
 * descriptor (read, write, recvmsg, accept, epoll_wait, flock, ...), so a
 * report can describe what the thread is blocked on. Thread safety: safe. */
QC_API bool qc_syscall_takes_fd(long nr);

/*
 * qc_census_thread_describe: writes what the thread in *info (of pid, 0:
 * the caller) is doing, in the report's stable words, into buf (size n,
 * always NUL-terminated when n > 0, truncated to fit):
 *   "running"                             on a CPU or runnable
 *   "blocked in read(fd 7: pipe:[88123])"  an fd-taking call, fd described
 *   "blocked in futex"                     other known calls
 *   "blocked in syscall 999"               calls not in the table
 *   "blocked (state D)"                    blocked outside a system call
 *   "stopped", "zombie", "exiting"         states T/t, Z, X
 *   "waiting for valgrind's scheduler"     a read on one of valgrind's fds
 * Returns 0, or EINVAL for NULL info or buf, or n == 0.
 * Thread safety: safe; reads /proc for the fd description.
 */
QC_API int qc_census_thread_describe(pid_t pid, const qc_thread_info *info,
				     char *buf, size_t n);

/*
 * qc_census_fd_count / qc_census_fds: the open file descriptors of pid (0:
 * the caller), from /proc/<pid>/fd, ascending. For the caller, the
 * descriptor used to list the directory is left out. qc_census_fds follows
 * qc_census_tids's contract (ERANGE with the full count in *n).
 * Returns 0, ESRCH, EACCES (no ptrace rights), EINVAL, or the errno of
 * open/getdents64. Thread safety: safe; does not block.
 */
QC_API int qc_census_fd_count(pid_t pid, size_t *count);
QC_API int qc_census_fds(pid_t pid, int *fds, size_t cap, size_t *n);

/*
 * qc_fd_describe: what fd of pid (0: the caller) is, into buf (size n,
 * always NUL-terminated, truncated to fit): the /proc/<pid>/fd link
 * ("pipe:[123]", "anon_inode:[eventfd]", "/path/to/file"), and for a socket
 * found in the process's network namespace, its protocol and addresses:
 * "socket:[456] (TCP 127.0.0.1:8080 LISTEN)",
 * "socket:[457] (TCP 127.0.0.1:40000 -> 127.0.0.1:8080 ESTABLISHED)",
 * "socket:[458] (UDP 0.0.0.0:53)", "socket:[459] (UNIX /run/x.sock)".
 * Returns 0, ENOENT (no such fd), ESRCH (no such process), EACCES, EINVAL
 * (NULL buf, n == 0, fd < 0). Thread safety: safe; reads up to five
 * /proc/<pid>/net tables for a socket, so it is for reports, not loops.
 */
QC_API int qc_fd_describe(pid_t pid, int fd, char *buf, size_t n);

/*
 * qc_census_proc: fills *info (not NULL) from /proc/<pid>/stat (0: the
 * caller). A zombie has state 'Z'. Returns 0, ESRCH (no such process,
 * including one already reaped), EINVAL, or the errno of open/read. *info is
 * written only on success. Thread safety: safe; does not block.
 */
QC_API int qc_census_proc(pid_t pid, qc_proc_info *info);

/*
 * qc_census_pids: lists every process id visible in /proc, ascending,
 * following qc_census_tids's contract. Returns 0, ERANGE, EINVAL, or the
 * errno of open/getdents64. Thread safety: safe; does not block.
 */
QC_API int qc_census_pids(pid_t *pids, size_t cap, size_t *n);

/*
 * qc_census_last_pid: the process or thread id most recently allocated in
 * the caller's pid namespace (the last field of /proc/loadavg) into *pid.
 * While it stays the same, no process or thread was created anywhere, so a
 * sampler can skip listing /proc. Returns 0, EINVAL (NULL), or the errno
 * of reading /proc/loadavg (EIO if it cannot be parsed).
 * Thread safety: safe; does not block.
 */
QC_API int qc_census_last_pid(pid_t *pid);

/*
 * qc_census_children: the processes whose parent is pid (0: the caller),
 * found by reading every /proc/<pid>/stat (about 10 us per process on the
 * machine), following qc_census_tids's contract. Zombies are included.
 * Returns 0, ERANGE, EINVAL, or the errno of listing /proc.
 * Thread safety: safe; does not block.
 */
QC_API int qc_census_children(pid_t pid, pid_t *out, size_t cap, size_t *n);

/*
 * qc_census_descendants: every process below pid (0: the caller) by parent
 * links, plus every member of process group pgid (0: no group), excluding
 * pid itself, ascending, following qc_census_tids's contract. A process
 * whose parent died was re-parented (to init or the nearest subreaper) and
 * is found only through pgid, or through the subreaper if that is pid.
 * Returns 0, ERANGE, ENOMEM, EINVAL, or the errno of listing /proc.
 * Thread safety: safe; does not block.
 */
QC_API int qc_census_descendants(pid_t pid, pid_t pgid, pid_t *out, size_t cap,
				 size_t *n);

/*
 * qc_census_is_valgrind_fd: true when fd belongs to valgrind rather than to
 * the program, in the calling process: under valgrind, its own descriptors
 * (the scheduler's lock pipe, log and xml files) live at or above the soft
 * RLIMIT_NOFILE it reports to the program (it keeps 12 at the top of the
 * real limit). Always false when not running under valgrind.
 * Thread safety: safe; does not block.
 */
QC_API bool qc_census_is_valgrind_fd(int fd);

/*
 * qc_census_is_valgrind_fd_of: the same question about process pid (0: the
 * caller), which may run under valgrind while the caller does not: true
 * when pid's executable is a valgrind tool and fd is at or above its real
 * soft RLIMIT_NOFILE minus valgrind's 12 reserved descriptors.
 * Thread safety: safe; reads /proc/<pid>/exe and limits.
 */
QC_API bool qc_census_is_valgrind_fd_of(pid_t pid, int fd);

QC_END_DECLS

#endif /* QUIESCE_CENSUS_H */
