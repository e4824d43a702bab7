/*
 * census_fd.c: file descriptors in the /proc census (quiesce/census.h):
 * listing a process's fds and saying what one of them is.
 *
 * A socket's /proc/<pid>/fd link names only its inode; its addresses come
 * from the tables in /proc/<pid>/net (the process's own network namespace),
 * matched by inode. That costs a read of up to five tables, so it happens
 * only when a report asks. Nothing is cached; no shared state, no locks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quiesce/census.h>

#include "census_impl.h"

/*
 * When a process's main thread has exited (pthread_exit) while others run,
 * the leader is a zombie and /proc/<pid>/fd is empty: the fd table is seen
 * only through a live thread. Writes "/proc/<pid>/task/<tid>" of the first
 * live thread into base; false when there is none.
 */
static bool live_thread_base(pid_t pid, char base[QC__PROC_PATH_MAX])
{
	char path[QC__PROC_PATH_MAX], stat[512], rest[48];
	int tids[64];
	size_t n;
	qc__proc_path(path, pid, "/stat");
	if (qc__read_small(path, stat, sizeof stat) <= 0 ||
	    !strrchr(stat, ')') || strrchr(stat, ')')[2] != 'Z')
		return false;
	qc__proc_path(path, pid, "/task");
	int rc = qc__list_numeric(path, 0, tids, 64, &n);
	if (rc != 0 && rc != ERANGE)
		return false;
	for (size_t i = 0; i < n && i < 64; i++) {
		snprintf(rest, sizeof rest, "/task/%d/stat", tids[i]);
		qc__proc_path(path, pid, rest);
		if (qc__read_small(path, stat, sizeof stat) > 0 &&
		    strrchr(stat, ')') && strrchr(stat, ')')[2] != 'Z') {
			snprintf(rest, sizeof rest, "/task/%d", tids[i]);
			qc__proc_path(base, pid, rest);
			return true;
		}
	}
	return false;
}

/* Lists the fds of pid, through a live thread if the leader has exited. */
static int list_fds(pid_t pid, int *fds, size_t cap, size_t *n)
{
	char path[QC__PROC_PATH_MAX + 8], base[QC__PROC_PATH_MAX];
	bool self = pid == 0 || pid == getpid();
	qc__proc_path(path, pid, "/fd");
	int rc = qc__list_numeric(path, self, fds, cap, n);
	if (rc != 0 || *n != 0 || self || !live_thread_base(pid, base))
		return rc;
	snprintf(path, sizeof path, "%s/fd", base);
	return qc__list_numeric(path, 0, fds, cap, n);
}

int qc_census_fd_count(pid_t pid, size_t *count)
{
	size_t n;
	if (!count || pid < 0)
		return EINVAL;
	int rc = list_fds(pid, NULL, 0, &n);
	if (rc != 0 && rc != ERANGE)
		return rc;
	*count = n;
	return 0;
}

int qc_census_fds(pid_t pid, int *fds, size_t cap, size_t *n)
{
	if (!n || pid < 0 || (!fds && cap))
		return EINVAL;
	return list_fds(pid, fds, cap, n);
}

static const char *tcp_state(unsigned st)
{
	static const char *const names[] = {
	    "?",
	    "ESTABLISHED",
	    "SYN_SENT",
	    "SYN_RECV",
	    "FIN_WAIT1",
	    "FIN_WAIT2",
	    "TIME_WAIT",
	    "CLOSE",
	    "CLOSE_WAIT",
	    "LAST_ACK",
	    "LISTEN",
	    "CLOSING",
	    "NEW_SYN_RECV",
	};
	return st < sizeof names / sizeof names[0] ? names[st] : "?";
}

/* Formats a /proc/net address "0100007F:1F90" (IPv4) or 32 hex digits and
 * a port (IPv6) as "127.0.0.1:8080" / "[::1]:8080". */
static bool format_addr(const char *hex, bool v6, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN];
	const char *colon = strchr(hex, ':');
	if (!colon)
		return false;
	unsigned port = (unsigned)strtoul(colon + 1, NULL, 16);
	if (!v6) {
		struct in_addr a;
		/* The kernel prints the raw 32-bit word in host order. */
		a.s_addr = (in_addr_t)strtoul(hex, NULL, 16);
		inet_ntop(AF_INET, &a, ip, sizeof ip);
		snprintf(out, n, "%s:%u", ip, port);
		return true;
	}
	if (colon - hex != 32)
		return false;
	struct in6_addr a;
	for (int i = 0; i < 4; i++) {
		char word[9];
		memcpy(word, hex + 8 * i, 8);
		word[8] = '\0';
		uint32_t w = (uint32_t)strtoul(word, NULL, 16);
		memcpy(&a.s6_addr[4 * i], &w, 4);
	}
	inet_ntop(AF_INET6, &a, ip, sizeof ip);
	snprintf(out, n, "[%s]:%u", ip, port);
	return true;
}

static bool all_zero_addr(const char *hex)
{
	for (; *hex && *hex != ':'; hex++)
		if (*hex != '0')
			return false;
	return true;
}

/* Looks inode up in /proc/<pid>/net/<table> (tcp, tcp6, udp, udp6) and
 * writes "TCP 127.0.0.1:8080 LISTEN" style text. */
static bool find_inet(const char *base, const char *table, unsigned long inode,
		      char *out, size_t n)
{
	char path[QC__PROC_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/net/%s", base, table);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool v6 = strchr(table, '6') != NULL, tcp = table[0] == 't';
	char line[512], loc[80], rem[80], la[64], ra[64];
	bool found = false;
	unsigned st;
	unsigned long ino;
	while (!found && fgets(line, sizeof line, f)) {
		if (sscanf(line, " %*s %79s %79s %x %*s %*s %*s %*u %*u %lu",
			   loc, rem, &st, &ino) != 4 ||
		    ino != inode)
			continue;
		found = format_addr(loc, v6, la, sizeof la) &&
			format_addr(rem, v6, ra, sizeof ra);
		if (!found)
			break;
		const char *proto = tcp ? "TCP" : "UDP";
		if (tcp && st == 10) /* LISTEN */
			snprintf(out, n, "%s %s LISTEN", proto, la);
		else if (tcp)
			snprintf(out, n, "%s %s -> %s %s", proto, la, ra,
				 tcp_state(st));
		else if (all_zero_addr(rem))
			snprintf(out, n, "%s %s", proto, la);
		else
			snprintf(out, n, "%s %s -> %s", proto, la, ra);
	}
	fclose(f);
	return found;
}

/* Looks inode up in /proc/<pid>/net/unix: "UNIX STREAM /run/x.sock". */
static bool find_unix(const char *base, unsigned long inode, char *out,
		      size_t n)
{
	char path[QC__PROC_PATH_MAX + 16], line[512], name[256];
	snprintf(path, sizeof path, "%s/net/unix", base);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool found = false;
	unsigned type;
	unsigned long ino;
	while (!found && fgets(line, sizeof line, f)) {
		name[0] = '\0';
		if (sscanf(line, "%*s %*s %*s %*s %x %*s %lu %255s", &type,
			   &ino, name) < 2 ||
		    ino != inode)
			continue;
		const char *kind = type == 1   ? "STREAM"
				   : type == 2 ? "DGRAM"
				   : type == 5 ? "SEQPACKET"
					       : "?";
		snprintf(out, n, "UNIX %s%s%s", kind, name[0] ? " " : "", name);
		found = true;
	}
	fclose(f);
	return found;
}

int qc_fd_describe(pid_t pid, int fd, char *buf, size_t n)
{
	char base[QC__PROC_PATH_MAX], path[QC__PROC_PATH_MAX + 16];
	char target[512], sock[256];
	if (!buf || n == 0 || fd < 0 || pid < 0)
		return EINVAL;
	qc__proc_path(base, pid, "");
	snprintf(path, sizeof path, "%s/fd/%d", base, fd);
	ssize_t len = readlink(path, target, sizeof target - 1);
	if (len < 0 && errno == ENOENT && live_thread_base(pid, base)) {
		snprintf(path, sizeof path, "%s/fd/%d", base, fd);
		len = readlink(path, target, sizeof target - 1);
	}
	if (len < 0) {
		int e = errno;
		if (e != ENOENT)
			return e;
		qc__proc_path(path, pid, "");
		return access(path, F_OK) == 0 ? ENOENT : ESRCH;
	}
	target[len] = '\0';
	unsigned long inode;
	if (sscanf(target, "socket:[%lu]", &inode) == 1 &&
	    (find_inet(base, "tcp", inode, sock, sizeof sock) ||
	     find_inet(base, "tcp6", inode, sock, sizeof sock) ||
	     find_inet(base, "udp", inode, sock, sizeof sock) ||
	     find_inet(base, "udp6", inode, sock, sizeof sock) ||
	     find_unix(base, inode, sock, sizeof sock))) {
		snprintf(buf, n, "%s (%s)", target, sock);
		return 0;
	}
	snprintf(buf, n, "%s", target);
	return 0;
}
