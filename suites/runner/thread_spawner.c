/*
 * thread_spawner: starts N threads (default 8) that wait on a pipe, then
 * shuts down cleanly on SIGTERM (closes the pipe, joins them, returns 0).
 * Run with --max-threads below N + 1, quiesce-run must fail it.
 *
 * usage: thread_spawner [N]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int gate[2];

static void *waiter(void *arg)
{
	char c;
	(void)arg;
	while (read(gate[0], &c, 1) > 0)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;
	sigset_t set;
	int sig;
	if (n < 1 || n > 10000 || pipe(gate) != 0)
		return 2;
	pthread_t *t = calloc((size_t)n, sizeof *t);
	if (!t)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, waiter, NULL);
	printf("%d threads started\nready\n", n);
	fflush(stdout);
	sigwait(&set, &sig);
	close(gate[1]);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	return 0;
}
