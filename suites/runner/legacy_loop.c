/*
 * legacy_loop: old-style code that knows only sleep() and time(): it warms
 * up for 30 seconds of its own time, says "ready", then loops until
 * SIGTERM. Under quiesce-run --faketime '+0 x100' the warm-up takes 0.3 s
 * of real time; without it, 30 s.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: sleep() returns */
	time_t start = time(NULL);
	while (!stop && time(NULL) - start < 30)
		sleep(1);
	printf("warmed up after %lds\nready\n", (long)(time(NULL) - start));
	fflush(stdout);
	while (!stop)
		sleep(1);
	puts("stopped");
	return 0;
}
