/*
 * forker: forks a child that outlives it. The parent dies of SIGTERM (the
 * default action); the child, renamed NAME, ignores SIGTERM and sleeps on.
 *
 * usage: forker NAME [--daemon]
 * With --daemon the child double-forks and calls setsid, as a classic
 * daemon does: the survivor leaves the process group, and only the
 * subreaper link lets quiesce-run find (and kill) it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void linger(const char *name)
{
	signal(SIGTERM, SIG_IGN);
	prctl(PR_SET_NAME, name);
	for (int i = 0; i < 600; i++)
		sleep(1); /* ends on its own after 10 minutes at most */
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: forker NAME [--daemon]\n");
		return 2;
	}
	int daemon = argc > 2 && strcmp(argv[2], "--daemon") == 0;
	pid_t pid = fork();
	if (pid == 0) {
		if (daemon) {
			setsid();
			if (fork() != 0)
				_exit(0);
		}
		linger(argv[1]);
	}
	puts("ready");
	fflush(stdout);
	for (;;)
		pause(); /* SIGTERM's default action ends the parent */
}
