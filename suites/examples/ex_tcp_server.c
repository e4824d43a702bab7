/*
 * ex_tcp_server.c: a loopback TCP server with graceful shutdown.
 *
 * The bug: the accept loop watches the server's context (qc_poll with the
 * done fd), so shutdown stops accepting; but each connection handler reads
 * requests with plain read(), so an idle keep-alive client pins its handler
 * in the kernel and shutdown never finishes. quiesce reports the handler
 * blocked in read on a socket. The fix: handlers read with the request
 * context (qc_read), so shutdown ends them within the bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "example.h"

static int listen_fd;
static bool server_bad;
static qc_h *server_h;

static int handler(qc_ctx *ctx, void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];
	for (;;) {
		ssize_t n = server_bad ? read(fd, buf, sizeof buf)
				       : qc_read(ctx, fd, buf, sizeof buf);
		if (n <= 0)
			break;
		if (write(fd, buf, (size_t)n) != n) /* echo */
			break;
	}
	close(fd);
	return 0;
}

static int accept_loop(qc_ctx *ctx, void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = {.fd = listen_fd, .events = POLLIN};
		if (qc_poll(ctx, &p, 1, -1) <= 0)
			return qc_err(ctx);
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		qc_ctx *req = qc_with_cancel(ctx);
		qc_ctx_set_name(req, "conn");
		qc_h_spawn(server_h, req, "handler", handler,
			   (void *)(intptr_t)fd);
		qc_release(req); /* the handler's thread holds it */
	}
}

static void run(qc_h *h, bool bad, ex_verdict *v)
{
	server_bad = bad;
	server_h = h;
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(listen_fd, 8) != 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&a, &alen) != 0) {
		v->wrong = true;
		close(listen_fd);
		return;
	}
	qc_ctx *srv = qc_with_cancel(qc_h_ctx(h));
	qc_ctx_set_name(srv, "server");
	qc_h_spawn(h, srv, "acceptor", accept_loop, NULL);
	/* An idle keep-alive client: connects, says hello, stays. */
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char echo[5] = "";
	if (connect(client, (struct sockaddr *)&a, sizeof a) != 0 ||
	    write(client, "hello", 5) != 5 || read(client, echo, 5) != 5)
		v->wrong = true;
	snprintf(v->note, sizeof v->note,
		 "client got \"%.5s\" back, stays idle", echo);
	qc_release(srv);
	qc_h_cancel(h); /* graceful shutdown */
	ex_quiet(h, 500 * QC_MILLISECOND, v);
	close(client); /* EOF ends the BAD handler */
	qc_h_expect_quiet(h, QC_SECOND);
	close(listen_fd);
	ex_leaks(h, v);
}

const qc_example ex_tcp_server = {
    .name = "tcp-server",
    .bug = "handler read() ignores shutdown",
    .run = run,
    .opts = {.guard = 300 * QC_MILLISECOND},
    .expect = {"\"handler\"", "blocked in read", "socket", "\"conn\""},
};
