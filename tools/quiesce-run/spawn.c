/*
 * spawn.c: starting the program: resolving it like execvp, and fork+exec
 * into its own process group with its stdout on a pipe.
 *
 * fork+exec rather than posix_spawn because the child must also ask for
 * SIGKILL when quiesce-run dies (PR_SET_PDEATHSIG), so that even a runner
 * killed with SIGKILL leaves no program behind. Exec failures come back
 * through a close-on-exec pipe as the child's errno, so "not found" and
 * "not executable" are reported as such, before anything is counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"

char *qr_resolve(const char *program, int *err)
{
	struct stat st;
	*err = ENOENT;
	if (strchr(program, '/')) {
		if (stat(program, &st) != 0) {
			*err = errno;
			return NULL;
		}
		if (!S_ISREG(st.st_mode) || access(program, X_OK) != 0) {
			*err = EACCES;
			return NULL;
		}
		return strdup(program);
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t dlen = strcspn(path, ":");
		size_t n = dlen + strlen(program) + 3;
		char *cand = malloc(n);
		if (!cand) {
			*err = ENOMEM;
			return NULL;
		}
		snprintf(cand, n, "%.*s/%s", (int)dlen, dlen ? path : ".",
			 program);
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0)
				return cand;
			*err = EACCES; /* keep looking, as execvp does */
		}
		free(cand);
		path += dlen + (path[dlen] == ':');
	}
	return NULL;
}

/* In the child: everything between fork and exec. Only async-signal-safe
 * calls. Never returns. */
static void child_exec(const char *path, char *const argv[], char *const envp[],
		       int out_w, int err_w, pid_t parent)
{
	sigset_t none;
	sigemptyset(&none);
	setpgid(0, 0);
	/* Die with the runner; the race with its death is closed by
	 * checking the parent after arming. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (out_w >= 0 && out_w != STDOUT_FILENO) {
		dup2(out_w, STDOUT_FILENO);
		close(out_w);
	}
	execve(path, argv, envp);
	int e = errno;
	ssize_t w = write(err_w, &e, sizeof e);
	(void)w;
	_exit(127);
}

int qr_spawn(const char *path, char *const argv[], char *const envp[],
	     struct qr_child *c)
{
	int out[2], errp[2];
	if (pipe2(out, O_CLOEXEC) != 0)
		return errno;
	if (pipe2(errp, O_CLOEXEC) != 0) {
		int e = errno;
		close(out[0]);
		close(out[1]);
		return e;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(out[0]);
		close(out[1]);
		close(errp[0]);
		close(errp[1]);
		return e;
	}
	if (pid == 0) {
		close(out[0]);
		close(errp[0]);
		/* dup2 clears close-on-exec on the copy that becomes 1. */
		child_exec(path, argv, envp, out[1], errp[1], parent);
	}
	/* Both sides set the group, so neither order of running loses. */
	setpgid(pid, pid);
	close(out[1]);
	close(errp[1]);
	int child_errno = 0;
	ssize_t got;
	do {
		got = read(errp[0], &child_errno, sizeof child_errno);
	} while (got < 0 && errno == EINTR);
	close(errp[0]);
	if (got == (ssize_t)sizeof child_errno) {
		/* exec failed: the child has exited (or is about to). */
		waitpid(pid, NULL, 0);
		close(out[0]);
		return child_errno ? child_errno : ENOEXEC;
	}
	c->pid = pid;
	c->out_fd = out[0];
	return 0;
}
