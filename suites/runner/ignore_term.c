/*
 * ignore_term: ignores SIGTERM and waits forever: the program quiesce-run
 * must report as a survivor and kill.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	signal(SIGTERM, SIG_IGN);
	puts("ready");
	fflush(stdout);
	for (;;)
		pause();
}
