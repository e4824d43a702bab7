/*
 * stuck_accept: on SIGTERM the main thread finishes (pthread_exit), but its
 * worker "acceptor" stays blocked in accept() on a listening socket, so the
 * process never exits: quiesce-run must name that thread, its system call
 * and the socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static void *acceptor(void *arg)
{
	int ls = *(int *)arg;
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c >= 0)
			close(c);
	}
	return NULL;
}

int main(void)
{
	static int ls;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	sigset_t set;
	int sig;
	pthread_t t;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) ||
	    listen(ls, 4) || getsockname(ls, (struct sockaddr *)&a, &len)) {
		perror("stuck_accept");
		return 2;
	}
	pthread_create(&t, NULL, acceptor, &ls);
	pthread_setname_np(t, "acceptor");
	printf("listening on 127.0.0.1:%d\nready\n", ntohs(a.sin_port));
	fflush(stdout);
	sigwait(&set, &sig);
	puts("main thread done; the acceptor is not told");
	fflush(stdout);
	pthread_exit(NULL);
}
