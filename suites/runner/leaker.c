/*
 * leaker: shuts down on SIGTERM with status 0 but leaks memory at exit: one
 * block definitely lost that points to another (indirectly lost). Run by
 * quiesce-run --valgrind, which must fail it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next;
	char payload[56];
};

static struct node *volatile root; /* volatile: the leak is not optimized */

int main(void)
{
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	root = calloc(1, sizeof *root);
	root->next = calloc(1, sizeof *root->next);
	strcpy(root->payload, "lost");
	puts("ready");
	fflush(stdout);
	sigwait(&set, &sig);
	root = NULL; /* the only pointer to both blocks */
	puts("exiting with a leak");
	return 0;
}
