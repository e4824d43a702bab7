/*
 * clean_server: a small threaded TCP server that shuts down cleanly on
 * SIGTERM or SIGINT: the well-behaved program quiesce-run should pass.
 *
 * usage: clean_server [PORT]   (0 or none: any free port)
 * Prints "listening on 127.0.0.1:PORT" and "ready". Four worker threads
 * take accepted connections from a pipe and answer "hello". Signals are
 * read through a signalfd in the main thread's poll loop; on one, the main
 * thread closes the job pipe (the workers see EOF and return), joins them,
 * closes everything and returns 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKERS 4

static int jobs[2]; /* accepted fds, main -> workers */

static void *worker(void *arg)
{
	int fd;
	(void)arg;
	while (read(jobs[0], &fd, sizeof fd) == (ssize_t)sizeof fd) {
		static const char hello[] = "hello\n";
		ssize_t w = write(fd, hello, sizeof hello - 1);
		(void)w;
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	sigset_t set;
	pthread_t t[WORKERS];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 0));
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by workers */
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sfd < 0 || ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) ||
	    listen(ls, 16) || getsockname(ls, (struct sockaddr *)&a, &len) ||
	    pipe(jobs)) {
		perror("clean_server");
		return 2;
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	printf("listening on 127.0.0.1:%d\nready\n", ntohs(a.sin_port));
	fflush(stdout);

	for (;;) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
				      {.fd = ls, .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents)
			break; /* asked to stop */
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0 && write(jobs[1], &c, sizeof c) != sizeof c)
			close(c);
	}
	close(jobs[1]);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	close(jobs[0]);
	close(ls);
	close(sfd);
	puts("stopped cleanly");
	return 0;
}
