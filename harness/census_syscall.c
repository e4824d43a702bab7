/*
 * census_syscall.c: system call numbers to names for the census's reports
 * (qc_syscall_name, qc_syscall_takes_fd in quiesce/census.h).
 *
 * The table covers the calls a blocked thread is found in, and the common
 * others; numbers come from <sys/syscall.h>, so it is right on every
 * architecture, and a call an architecture lacks is simply left out. The
 * table is constant: no state, thread-safe.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/syscall.h>

#include <quiesce/census.h>

/* One known system call: its number, its name, and whether its first
 * argument is a file descriptor worth describing in a report. */
struct syscall_entry {
	long nr;
	const char *name;
	bool takes_fd;
};

static const struct syscall_entry table[] = {
#ifdef SYS_read
    {SYS_read, "read", true},
#endif
#ifdef SYS_write
    {SYS_write, "write", true},
#endif
#ifdef SYS_open
    {SYS_open, "open", false},
#endif
#ifdef SYS_close
    {SYS_close, "close", false},
#endif
#ifdef SYS_stat
    {SYS_stat, "stat", false},
#endif
#ifdef SYS_fstat
    {SYS_fstat, "fstat", true},
#endif
#ifdef SYS_lstat
    {SYS_lstat, "lstat", false},
#endif
#ifdef SYS_poll
    {SYS_poll, "poll", false},
#endif
#ifdef SYS_lseek
    {SYS_lseek, "lseek", true},
#endif
#ifdef SYS_mmap
    {SYS_mmap, "mmap", false},
#endif
#ifdef SYS_mprotect
    {SYS_mprotect, "mprotect", false},
#endif
#ifdef SYS_munmap
    {SYS_munmap, "munmap", false},
#endif
#ifdef SYS_brk
    {SYS_brk, "brk", false},
#endif
#ifdef SYS_rt_sigaction
    {SYS_rt_sigaction, "rt_sigaction", false},
#endif
#ifdef SYS_rt_sigprocmask
    {SYS_rt_sigprocmask, "rt_sigprocmask", false},
#endif
#ifdef SYS_rt_sigreturn
    {SYS_rt_sigreturn, "rt_sigreturn", false},
#endif
#ifdef SYS_ioctl
    {SYS_ioctl, "ioctl", true},
#endif
#ifdef SYS_pread64
    {SYS_pread64, "pread64", true},
#endif
#ifdef SYS_pwrite64
    {SYS_pwrite64, "pwrite64", true},
#endif
#ifdef SYS_readv
    {SYS_readv, "readv", true},
#endif
#ifdef SYS_writev
    {SYS_writev, "writev", true},
#endif
#ifdef SYS_access
    {SYS_access, "access", false},
#endif
#ifdef SYS_pipe
    {SYS_pipe, "pipe", false},
#endif
#ifdef SYS_select
    {SYS_select, "select", false},
#endif
#ifdef SYS_sched_yield
    {SYS_sched_yield, "sched_yield", false},
#endif
#ifdef SYS_mremap
    {SYS_mremap, "mremap", false},
#endif
#ifdef SYS_msync
    {SYS_msync, "msync", false},
#endif
#ifdef SYS_madvise
    {SYS_madvise, "madvise", false},
#endif
#ifdef SYS_dup
    {SYS_dup, "dup", true},
#endif
#ifdef SYS_dup2
    {SYS_dup2, "dup2", true},
#endif
#ifdef SYS_pause
    {SYS_pause, "pause", false},
#endif
#ifdef SYS_nanosleep
    {SYS_nanosleep, "nanosleep", false},
#endif
#ifdef SYS_getpid
    {SYS_getpid, "getpid", false},
#endif
#ifdef SYS_sendfile
    {SYS_sendfile, "sendfile", true},
#endif
#ifdef SYS_socket
    {SYS_socket, "socket", false},
#endif
#ifdef SYS_connect
    {SYS_connect, "connect", true},
#endif
#ifdef SYS_accept
    {SYS_accept, "accept", true},
#endif
#ifdef SYS_sendto
    {SYS_sendto, "sendto", true},
#endif
#ifdef SYS_recvfrom
    {SYS_recvfrom, "recvfrom", true},
#endif
#ifdef SYS_sendmsg
    {SYS_sendmsg, "sendmsg", true},
#endif
#ifdef SYS_recvmsg
    {SYS_recvmsg, "recvmsg", true},
#endif
#ifdef SYS_shutdown
    {SYS_shutdown, "shutdown", true},
#endif
#ifdef SYS_bind
    {SYS_bind, "bind", true},
#endif
#ifdef SYS_listen
    {SYS_listen, "listen", true},
#endif
#ifdef SYS_socketpair
    {SYS_socketpair, "socketpair", false},
#endif
#ifdef SYS_clone
    {SYS_clone, "clone", false},
#endif
#ifdef SYS_fork
    {SYS_fork, "fork", false},
#endif
#ifdef SYS_vfork
    {SYS_vfork, "vfork", false},
#endif
#ifdef SYS_execve
    {SYS_execve, "execve", false},
#endif
#ifdef SYS_exit
    {SYS_exit, "exit", false},
#endif
#ifdef SYS_wait4
    {SYS_wait4, "wait4", false},
#endif
#ifdef SYS_kill
    {SYS_kill, "kill", false},
#endif
#ifdef SYS_uname
    {SYS_uname, "uname", false},
#endif
#ifdef SYS_semop
    {SYS_semop, "semop", false},
#endif
#ifdef SYS_msgsnd
    {SYS_msgsnd, "msgsnd", false},
#endif
#ifdef SYS_msgrcv
    {SYS_msgrcv, "msgrcv", false},
#endif
#ifdef SYS_fcntl
    {SYS_fcntl, "fcntl", true},
#endif
#ifdef SYS_flock
    {SYS_flock, "flock", true},
#endif
#ifdef SYS_fsync
    {SYS_fsync, "fsync", true},
#endif
#ifdef SYS_fdatasync
    {SYS_fdatasync, "fdatasync", true},
#endif
#ifdef SYS_getdents64
    {SYS_getdents64, "getdents64", true},
#endif
#ifdef SYS_ptrace
    {SYS_ptrace, "ptrace", false},
#endif
#ifdef SYS_rt_sigpending
    {SYS_rt_sigpending, "rt_sigpending", false},
#endif
#ifdef SYS_rt_sigtimedwait
    {SYS_rt_sigtimedwait, "rt_sigtimedwait", false},
#endif
#ifdef SYS_rt_sigsuspend
    {SYS_rt_sigsuspend, "rt_sigsuspend", false},
#endif
#ifdef SYS_sigaltstack
    {SYS_sigaltstack, "sigaltstack", false},
#endif
#ifdef SYS_prctl
    {SYS_prctl, "prctl", false},
#endif
#ifdef SYS_gettid
    {SYS_gettid, "gettid", false},
#endif
#ifdef SYS_tkill
    {SYS_tkill, "tkill", false},
#endif
#ifdef SYS_tgkill
    {SYS_tgkill, "tgkill", false},
#endif
#ifdef SYS_futex
    {SYS_futex, "futex", false},
#endif
#ifdef SYS_io_getevents
    {SYS_io_getevents, "io_getevents", false},
#endif
#ifdef SYS_io_submit
    {SYS_io_submit, "io_submit", false},
#endif
#ifdef SYS_epoll_create
    {SYS_epoll_create, "epoll_create", false},
#endif
#ifdef SYS_epoll_create1
    {SYS_epoll_create1, "epoll_create1", false},
#endif
#ifdef SYS_epoll_ctl
    {SYS_epoll_ctl, "epoll_ctl", true},
#endif
#ifdef SYS_epoll_wait
    {SYS_epoll_wait, "epoll_wait", true},
#endif
#ifdef SYS_epoll_pwait
    {SYS_epoll_pwait, "epoll_pwait", true},
#endif
#ifdef SYS_epoll_pwait2
    {SYS_epoll_pwait2, "epoll_pwait2", true},
#endif
#ifdef SYS_clock_gettime
    {SYS_clock_gettime, "clock_gettime", false},
#endif
#ifdef SYS_clock_nanosleep
    {SYS_clock_nanosleep, "clock_nanosleep", false},
#endif
#ifdef SYS_exit_group
    {SYS_exit_group, "exit_group", false},
#endif
#ifdef SYS_waitid
    {SYS_waitid, "waitid", false},
#endif
#ifdef SYS_openat
    {SYS_openat, "openat", false},
#endif
#ifdef SYS_newfstatat
    {SYS_newfstatat, "newfstatat", false},
#endif
#ifdef SYS_pselect6
    {SYS_pselect6, "pselect6", false},
#endif
#ifdef SYS_ppoll
    {SYS_ppoll, "ppoll", false},
#endif
#ifdef SYS_splice
    {SYS_splice, "splice", true},
#endif
#ifdef SYS_tee
    {SYS_tee, "tee", true},
#endif
#ifdef SYS_accept4
    {SYS_accept4, "accept4", true},
#endif
#ifdef SYS_signalfd4
    {SYS_signalfd4, "signalfd4", true},
#endif
#ifdef SYS_eventfd2
    {SYS_eventfd2, "eventfd2", false},
#endif
#ifdef SYS_timerfd_create
    {SYS_timerfd_create, "timerfd_create", false},
#endif
#ifdef SYS_timerfd_settime
    {SYS_timerfd_settime, "timerfd_settime", true},
#endif
#ifdef SYS_inotify_init1
    {SYS_inotify_init1, "inotify_init1", false},
#endif
#ifdef SYS_pipe2
    {SYS_pipe2, "pipe2", false},
#endif
#ifdef SYS_recvmmsg
    {SYS_recvmmsg, "recvmmsg", true},
#endif
#ifdef SYS_sendmmsg
    {SYS_sendmmsg, "sendmmsg", true},
#endif
#ifdef SYS_semtimedop
    {SYS_semtimedop, "semtimedop", false},
#endif
#ifdef SYS_mq_timedsend
    {SYS_mq_timedsend, "mq_timedsend", true},
#endif
#ifdef SYS_mq_timedreceive
    {SYS_mq_timedreceive, "mq_timedreceive", true},
#endif
#ifdef SYS_getrandom
    {SYS_getrandom, "getrandom", false},
#endif
#ifdef SYS_memfd_create
    {SYS_memfd_create, "memfd_create", false},
#endif
#ifdef SYS_statx
    {SYS_statx, "statx", false},
#endif
#ifdef SYS_io_uring_enter
    {SYS_io_uring_enter, "io_uring_enter", true},
#endif
#ifdef SYS_pidfd_open
    {SYS_pidfd_open, "pidfd_open", false},
#endif
#ifdef SYS_pidfd_send_signal
    {SYS_pidfd_send_signal, "pidfd_send_signal", true},
#endif
#ifdef SYS_clone3
    {SYS_clone3, "clone3", false},
#endif
#ifdef SYS_close_range
    {SYS_close_range, "close_range", false},
#endif
#ifdef SYS_futex_waitv
    {SYS_futex_waitv, "futex_waitv", false},
#endif
#ifdef SYS_membarrier
    {SYS_membarrier, "membarrier", false},
#endif
#ifdef SYS_sched_getaffinity
    {SYS_sched_getaffinity, "sched_getaffinity", false},
#endif
#ifdef SYS_set_robust_list
    {SYS_set_robust_list, "set_robust_list", false},
#endif
#ifdef SYS_rseq
    {SYS_rseq, "rseq", false},
#endif
#ifdef SYS_getrlimit
    {SYS_getrlimit, "getrlimit", false},
#endif
#ifdef SYS_prlimit64
    {SYS_prlimit64, "prlimit64", false},
#endif
#ifdef SYS_setrlimit
    {SYS_setrlimit, "setrlimit", false},
#endif
};

static const struct syscall_entry *lookup(long nr)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].nr == nr)
			return &table[i];
	return NULL;
}

const char *qc_syscall_name(long nr)
{
	const struct syscall_entry *e = lookup(nr);
	return e ? e->name : NULL;
}

bool qc_syscall_takes_fd(long nr)
{
	const struct syscall_entry *e = lookup(nr);
	return e && e->takes_fd;
}
