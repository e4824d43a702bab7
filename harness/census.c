/*
 * census.c: the /proc census of threads and processes (quiesce/census.h).
 *
 * Cheap paths list one directory with getdents64 into a stack buffer and
 * parse names without allocating; expensive paths (thread details, the
 * process tree) read one small file per thread or process. Nothing is
 * cached, so every answer is a fresh snapshot and there is no shared state:
 * no locks. Invariant: a /proc entry that vanishes between listing and
 * reading means the thread or process is gone, reported as ESRCH (or simply
 * skipped by the whole-tree scans), never as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include <quiesce/census.h>

#include "alloc.h"
#include "census_impl.h"

_Static_assert(sizeof(pid_t) == sizeof(int), "pid_t lists share int code");

/* Descriptors valgrind keeps for itself above the limit it reports
 * (N_RESERVED_FDS in valgrind's m_main.c; checked on 3.19). */
#define VALGRIND_RESERVED_FDS 12

void qc__proc_path(char *buf, pid_t pid, const char *rest)
{
	if (pid == 0)
		snprintf(buf, QC__PROC_PATH_MAX, "/proc/self%s", rest);
	else
		snprintf(buf, QC__PROC_PATH_MAX, "/proc/%d%s", (int)pid, rest);
}

ssize_t qc__read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len + 1 < n) {
		size_t want = n - 1 - len;
		ssize_t r = read(fd, buf + len, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		len += (size_t)r;
		/* /proc files produce their whole text in one read when it
		 * fits: a short read is the end, and saves a syscall. */
		if ((size_t)r < want)
			break;
	}
	buf[len] = '\0';
	close(fd);
	return (ssize_t)len;
}

int qc__census_sched(pid_t tid, uint64_t *run, char *state)
{
	char path[QC__PROC_PATH_MAX], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
	ssize_t len = qc__read_small(path, buf, sizeof buf);
	if (len < 0)
		return (int)-len;
	unsigned long long r;
	if (sscanf(buf, "%llu", &r) != 1)
		return ENOENT;
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	len = qc__read_small(path, buf, sizeof buf);
	if (len < 0)
		return (int)-len;
	/* "tid (comm) S ...": comm may hold spaces and parentheses. */
	const char *close = strrchr(buf, ')');
	if (!close || close[1] != ' ' || !close[2])
		return ENOENT;
	*run = r;
	*state = close[2];
	return 0;
}

/* Parses an all-digit name; -1 for anything else ("self", "net", ...). */
static int numeric_name(const char *s)
{
	long v = 0;
	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT32_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return (int)v;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int qc__list_numeric(const char *path, int skip_own_fd, int *out, size_t cap,
		     size_t *n)
{
	/* 16 KiB holds ~680 entries: a 1,000-thread census is two calls. */
	_Alignas(struct dirent64) char buf[16384];
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? ESRCH : errno;
	size_t count = 0;
	bool sorted = true;
	int last = -1;
	for (;;) {
		ssize_t got = getdents64(dfd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			close(dfd);
			/* A task directory whose process just exited. */
			return e == ENOENT ? ESRCH : e;
		}
		if (got == 0)
			break;
		for (ssize_t off = 0; off < got;) {
			const struct dirent64 *d =
			    (const struct dirent64 *)(buf + off);
			off += d->d_reclen;
			int v = numeric_name(d->d_name);
			if (v < 0 || (skip_own_fd && v == dfd))
				continue;
			if (count < cap) {
				out[count] = v;
				if (v < last)
					sorted = false;
				last = v;
			}
			count++;
		}
	}
	close(dfd);
	if (!sorted)
		qsort(out, count < cap ? count : cap, sizeof *out, cmp_int);
	*n = count;
	return count > cap ? ERANGE : 0;
}

/* ---------------------------------------------------------------- threads */

int qc_census_count(pid_t pid, size_t *count)
{
	char path[QC__PROC_PATH_MAX];
	size_t n;
	if (!count || pid < 0)
		return EINVAL;
	qc__proc_path(path, pid, "/task");
	int rc = qc__list_numeric(path, 0, NULL, 0, &n);
	if (rc != 0 && rc != ERANGE)
		return rc;
	*count = n;
	return 0;
}

int qc_census_tids(pid_t pid, pid_t *tids, size_t cap, size_t *n)
{
	char path[QC__PROC_PATH_MAX];
	if (!n || pid < 0 || (!tids && cap))
		return EINVAL;
	qc__proc_path(path, pid, "/task");
	return qc__list_numeric(path, 0, tids, cap, n);
}

/* Lists path into a growing heap array; shared by the _alloc forms. */
static int list_alloc(const char *path, int skip_own_fd, int **out, size_t *n)
{
	size_t cap = 64, got;
	for (;;) {
		int *arr = qc__malloc(cap * sizeof *arr);
		if (!arr)
			return ENOMEM;
		int rc = qc__list_numeric(path, skip_own_fd, arr, cap, &got);
		if (rc == 0) {
			*out = arr;
			*n = got;
			return 0;
		}
		qc__free(arr);
		if (rc != ERANGE)
			return rc;
		/* Threads may be born between the two listings: headroom. */
		cap = got + got / 4 + 16;
	}
}

int qc_census_tids_alloc(pid_t pid, pid_t **tids, size_t *n)
{
	char path[QC__PROC_PATH_MAX];
	if (!tids || !n || pid < 0)
		return EINVAL;
	qc__proc_path(path, pid, "/task");
	return list_alloc(path, 0, tids, n);
}

void qc_census_free(void *array)
{
	qc__free(array);
}

/*
 * Splits a stat line "pid (comm) S f1 f2 ..." into comm (copied into name,
 * 16 bytes) and a pointer to the state field. The name may hold spaces and
 * parentheses, so it ends at the last ')'. Returns NULL when malformed.
 */
static const char *split_stat(const char *line, char name[16])
{
	const char *open = strchr(line, '(');
	const char *close = strrchr(line, ')');
	if (!open || !close || close < open || close[1] != ' ')
		return NULL;
	size_t len = (size_t)(close - open - 1);
	if (len > 15)
		len = 15;
	memcpy(name, open + 1, len);
	name[len] = '\0';
	return close + 2;
}

/* Parses a task's syscall file into info->syscall and info->args. */
static void parse_syscall(const char *s, qc_thread_info *info)
{
	if (strncmp(s, "running", 7) == 0) {
		info->syscall = QC_SYSCALL_RUNNING;
		return;
	}
	char *end;
	long nr = strtol(s, &end, 10);
	if (end == s || nr < 0) {
		/* "-1 sp pc": blocked, but not in a system call. */
		info->syscall = QC_SYSCALL_UNKNOWN;
		return;
	}
	info->syscall = nr;
	for (int i = 0; i < 6; i++) {
		s = end;
		info->args[i] = strtoul(s, &end, 16);
		if (end == s)
			break;
	}
}

int qc_census_thread(pid_t pid, pid_t tid, qc_thread_info *info)
{
	char path[QC__PROC_PATH_MAX], rest[48], buf[512];
	qc_thread_info t;
	if (!info || pid < 0 || tid <= 0)
		return EINVAL;
	memset(&t, 0, sizeof t);
	t.tid = tid;
	t.state = '?';
	t.syscall = QC_SYSCALL_UNKNOWN;

	snprintf(rest, sizeof rest, "/task/%d/stat", (int)tid);
	qc__proc_path(path, pid, rest);
	ssize_t len = qc__read_small(path, buf, sizeof buf);
	if (len < 0)
		return -len == ENOENT ? ESRCH : (int)-len;
	const char *st = split_stat(buf, t.name);
	if (st)
		t.state = st[0];

	/* syscall and wchan need ptrace rights: leave them unknown without.
	 * The calling thread would see itself in the read of this very file:
	 * it is running. */
	snprintf(rest, sizeof rest, "/task/%d/syscall", (int)tid);
	qc__proc_path(path, pid, rest);
	if ((pid == 0 || pid == getpid()) && tid == gettid())
		t.syscall = QC_SYSCALL_RUNNING;
	else if (qc__read_small(path, buf, sizeof buf) > 0)
		parse_syscall(buf, &t);
	snprintf(rest, sizeof rest, "/task/%d/wchan", (int)tid);
	qc__proc_path(path, pid, rest);
	if (qc__read_small(path, buf, sizeof buf) > 0 && strcmp(buf, "0") != 0)
		snprintf(t.wchan, sizeof t.wchan, "%.63s", buf);

	*info = t;
	return 0;
}

int qc_census_thread_name(pid_t pid, pid_t tid, char name[16])
{
	char path[QC__PROC_PATH_MAX], rest[48], buf[32];
	if (!name || pid < 0 || tid <= 0)
		return EINVAL;
	snprintf(rest, sizeof rest, "/task/%d/comm", (int)tid);
	qc__proc_path(path, pid, rest);
	ssize_t len = qc__read_small(path, buf, sizeof buf);
	if (len < 0)
		return -len == ENOENT ? ESRCH : (int)-len;
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(name, 16, "%.15s", buf);
	return 0;
}

int qc_census_thread_describe(pid_t pid, const qc_thread_info *info, char *buf,
			      size_t n)
{
	if (!info || !buf || n == 0)
		return EINVAL;
	switch (info->state) {
	case 'T':
	case 't':
		snprintf(buf, n, "stopped");
		return 0;
	case 'Z':
		snprintf(buf, n, "zombie");
		return 0;
	case 'X':
		snprintf(buf, n, "exiting");
		return 0;
	default:
		break;
	}
	if (info->syscall == QC_SYSCALL_RUNNING || info->state == 'R') {
		snprintf(buf, n, "running");
		return 0;
	}
	if (info->syscall == QC_SYSCALL_UNKNOWN) {
		snprintf(buf, n, "blocked (state %c)", info->state);
		return 0;
	}
	const char *name = qc_syscall_name(info->syscall);
	if (!name) {
		snprintf(buf, n, "blocked in syscall %ld", info->syscall);
		return 0;
	}
	if (!qc_syscall_takes_fd(info->syscall)) {
		snprintf(buf, n, "blocked in %s", name);
		return 0;
	}
	int fd = (int)info->args[0];
	if (strcmp(name, "read") == 0 && qc_census_is_valgrind_fd_of(pid, fd)) {
		/* Under valgrind only one thread runs at a time; the others
		 * wait on its lock pipe. That is not the program's state. */
		snprintf(buf, n, "waiting for valgrind's scheduler");
		return 0;
	}
	char what[256];
	if (qc_fd_describe(pid, fd, what, sizeof what) != 0)
		snprintf(what, sizeof what, "closed");
	snprintf(buf, n, "blocked in %s(fd %d: %s)", name, fd, what);
	return 0;
}

/* -------------------------------------------------------------- processes */

int qc_census_proc(pid_t pid, qc_proc_info *info)
{
	char path[QC__PROC_PATH_MAX], buf[1024];
	qc_proc_info p;
	if (!info || pid < 0)
		return EINVAL;
	qc__proc_path(path, pid, "/stat");
	ssize_t len = qc__read_small(path, buf, sizeof buf);
	if (len < 0)
		return -len == ENOENT ? ESRCH : (int)-len;
	memset(&p, 0, sizeof p);
	const char *s = split_stat(buf, p.name);
	if (!s)
		return EIO;
	p.pid = (pid_t)strtol(buf, NULL, 10);
	p.state = s[0];
	/* Fields after the state, numbered as in proc(5) minus 3. */
	unsigned long long f[20] = {0};
	char *end;
	s++;
	for (int i = 0; i < 20; i++) {
		f[i] = strtoull(s, &end, 10);
		if (end == s)
			return EIO;
		s = end;
	}
	p.ppid = (pid_t)f[0];
	p.pgid = (pid_t)f[1];
	p.sid = (pid_t)f[2];
	p.cpu_ticks = f[10] + f[11];
	p.threads = (long)f[16];
	p.start_ticks = f[18];
	*info = p;
	return 0;
}

int qc_census_pids(pid_t *pids, size_t cap, size_t *n)
{
	if (!n || (!pids && cap))
		return EINVAL;
	return qc__list_numeric("/proc", 0, pids, cap, n);
}

int qc_census_last_pid(pid_t *pid)
{
	char buf[128];
	if (!pid)
		return EINVAL;
	ssize_t len = qc__read_small("/proc/loadavg", buf, sizeof buf);
	if (len < 0)
		return (int)-len;
	/* "0.12 0.34 0.56 2/345 6789": the last pid ends the line. */
	char *last = strrchr(buf, ' ');
	if (!last || last[1] < '0' || last[1] > '9')
		return EIO;
	*pid = (pid_t)strtol(last + 1, NULL, 10);
	return 0;
}

/* Every process's pid, ppid and pgid, from one pass over /proc. */
struct proc_row {
	pid_t pid, ppid, pgid;
	bool mark;
};

static int scan_tree(struct proc_row **rows, size_t *n)
{
	pid_t *pids;
	size_t count, k = 0;
	int rc = list_alloc("/proc", 0, &pids, &count);
	if (rc != 0)
		return rc;
	struct proc_row *r = qc__calloc(count ? count : 1, sizeof *r);
	if (!r) {
		qc__free(pids);
		return ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		qc_proc_info p;
		if (qc_census_proc(pids[i], &p) != 0)
			continue; /* gone since the listing */
		r[k].pid = p.pid;
		r[k].ppid = p.ppid;
		r[k].pgid = p.pgid;
		k++;
	}
	qc__free(pids);
	*rows = r;
	*n = k;
	return 0;
}

/* Writes the marked rows' pids to out, qc_census_tids-style. */
static int emit_marked(const struct proc_row *r, size_t count, pid_t *out,
		       size_t cap, size_t *n)
{
	size_t k = 0;
	for (size_t i = 0; i < count; i++) {
		if (!r[i].mark)
			continue;
		if (k < cap)
			out[k] = r[i].pid;
		k++;
	}
	*n = k;
	return k > cap ? ERANGE : 0;
}

/* Whether this process has any child, running or zombie, without reaping
 * one: waitid fails with ECHILD only when there is none. It spares the
 * harness a read of every /proc/<pid>/stat on the machine per test (most
 * tests start no process). __WALL counts clone children too. */
static bool has_children(void)
{
	siginfo_t si;
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) ==
		   0 ||
	       errno != ECHILD;
}

int qc_census_children(pid_t pid, pid_t *out, size_t cap, size_t *n)
{
	struct proc_row *r;
	size_t count;
	if (!n || pid < 0 || (!out && cap))
		return EINVAL;
	if (pid == 0)
		pid = getpid();
	if (pid == getpid() && !has_children()) {
		*n = 0;
		return 0;
	}
	int rc = scan_tree(&r, &count);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < count; i++)
		r[i].mark = r[i].ppid == pid;
	rc = emit_marked(r, count, out, cap, n);
	qc__free(r);
	return rc;
}

int qc_census_descendants(pid_t pid, pid_t pgid, pid_t *out, size_t cap,
			  size_t *n)
{
	struct proc_row *r;
	size_t count;
	if (!n || pid < 0 || pgid < 0 || (!out && cap))
		return EINVAL;
	if (pid == 0)
		pid = getpid();
	int rc = scan_tree(&r, &count);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < count; i++)
		r[i].mark = r[i].pid != pid &&
			    (r[i].ppid == pid || (pgid && r[i].pgid == pgid));
	/* Spread marks down parent links until nothing changes; the depth
	 * of a process tree bounds the passes. */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < count; i++) {
			if (!r[i].mark)
				continue;
			for (size_t j = 0; j < count; j++) {
				if (!r[j].mark && r[j].ppid == r[i].pid &&
				    r[j].pid != pid) {
					r[j].mark = true;
					changed = true;
				}
			}
		}
	}
	rc = emit_marked(r, count, out, cap, n);
	qc__free(r);
	return rc;
}

/* --------------------------------------------------------------- valgrind */

bool qc_census_is_valgrind_fd(int fd)
{
	struct rlimit rl;
	if (fd < 0 || !RUNNING_ON_VALGRIND)
		return false;
	/* Under valgrind, getrlimit reports the program's share. */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return false;
	return (rlim_t)fd >= rl.rlim_cur;
}

/* True when pid's executable is one of valgrind's tools, which live in
 * valgrind's libexec directory as <tool>-<arch>-linux. */
static bool runs_valgrind(pid_t pid)
{
	char path[QC__PROC_PATH_MAX], exe[512];
	qc__proc_path(path, pid, "/exe");
	ssize_t len = readlink(path, exe, sizeof exe - 1);
	if (len <= 0)
		return false;
	exe[len] = '\0';
	const char *base = strrchr(exe, '/');
	return strstr(exe, "/valgrind/") && base && len > 6 &&
	       strcmp(exe + len - 6, "-linux") == 0;
}

bool qc_census_is_valgrind_fd_of(pid_t pid, int fd)
{
	char path[QC__PROC_PATH_MAX], buf[2048];
	if (fd < 0 || pid < 0)
		return false;
	if (pid == 0 || pid == getpid())
		return qc_census_is_valgrind_fd(fd);
	if (!runs_valgrind(pid))
		return false;
	qc__proc_path(path, pid, "/limits");
	if (qc__read_small(path, buf, sizeof buf) <= 0)
		return false;
	const char *line = strstr(buf, "Max open files");
	if (!line)
		return false;
	/* Valgrind raised the real soft limit by its reserve (when the hard
	 * limit allowed) and keeps the top 12 for itself. */
	long soft = strtol(line + strlen("Max open files"), NULL, 10);
	return soft > VALGRIND_RESERVED_FDS &&
	       fd >= soft - VALGRIND_RESERVED_FDS;
}
