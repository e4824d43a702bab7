/*
 * loop.c: quiesce-run's event loop (loop.h).
 *
 * One ppoll over the signalfd and the program's stdout, with the timeout
 * set to the nearest of: the next sampling tick, the current phase's
 * deadline, the next progress line. Phases run in order:
 *   WAIT_READY -> CANCEL_DELAY -> BOUND -> (KILLING) -> DONE
 * and any of them may jump to KILLING (the program misbehaved, or the
 * runner was interrupted). Invariants: every phase has a deadline, so the
 * loop always ends; the program's exit is seen through SIGCHLD at once
 * (not at the next tick), which keeps the runner's added latency to a
 * fresh census and the reports; DONE is reached only when no tracked
 * process is alive, or after SIGKILL and its 5 s grace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define KILL_GRACE     (5 * QC_SECOND)
#define PROGRESS_EVERY (2 * QC_SECOND)
#define TAIL_KEEP      8192 /* bytes of the program's stdout kept for reports */

enum phase { WAIT_READY, CANCEL_DELAY, BOUND, KILLING, DONE };

struct loop {
	struct qr_run *r;
	const struct qr_opts *o;
	struct qr_sampler *s;
	int sfd, out_fd;
	regex_t *re;
	qc_time t0;
	enum phase phase;
	qc_duration phase_start;   /* since start */
	qc_duration deadline;	   /* of the phase, since start */
	qc_duration next_tick;	   /* since start */
	qc_duration next_progress; /* since start */
	bool reaped;		   /* the program's process is reaped */
	bool line_matched;
	bool sigchld;	   /* a child changed state: reap */
	bool port_accepts; /* at the last tick */
	int rc;
	char line[4096];
	size_t linelen;
	size_t taillen;
};

qc_time qr_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (qc_time)ts.tv_sec * QC_SECOND + ts.tv_nsec;
}

static qc_duration since(const struct loop *l)
{
	return qr_now() - l->t0;
}

/* An event line on stderr (-v only). */
static void event(const struct loop *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void event(const struct loop *l, const char *fmt, ...)
{
	char when[32];
	va_list ap;
	if (l->o->verbosity < 1)
		return;
	fprintf(stderr, QR_NAME ": +%s ", qr_fmt_dur(since(l), when));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Keeps the last TAIL_KEEP bytes of the program's stdout. */
static void keep_tail(struct loop *l, const char *buf, size_t n)
{
	struct qr_run *r = l->r;
	if (!r->out_tail)
		return; /* out of memory at start: nothing is kept */
	if (n >= TAIL_KEEP) {
		buf += n - TAIL_KEEP;
		n = TAIL_KEEP;
	}
	if (l->taillen + n > TAIL_KEEP) {
		size_t drop = l->taillen + n - TAIL_KEEP;
		memmove(r->out_tail, r->out_tail + drop, l->taillen - drop);
		l->taillen -= drop;
	}
	memcpy(r->out_tail + l->taillen, buf, n);
	l->taillen += n;
	r->out_tail[l->taillen] = '\0';
}

static void match_line(struct loop *l)
{
	l->line[l->linelen] = '\0';
	if (l->re && !l->line_matched &&
	    regexec(l->re, l->line, 0, NULL, 0) == 0)
		l->line_matched = true;
	l->linelen = 0;
}

static void read_stdout(struct loop *l)
{
	char buf[8192];
	ssize_t n = read(l->out_fd, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (l->linelen)
			match_line(l);
		close(l->out_fd);
		l->out_fd = -1;
		return;
	}
	if (l->o->verbosity > 0) {
		ssize_t w = write(STDOUT_FILENO, buf, (size_t)n);
		(void)w; /* a closed stdout must not stop the run */
	}
	keep_tail(l, buf, (size_t)n);
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || l->linelen + 1 >= sizeof l->line)
			match_line(l);
		if (buf[i] != '\n')
			l->line[l->linelen++] = buf[i];
	}
}

static void tick(struct loop *l, bool detail);

/* Reaps every exited child: the program, and orphans we adopted. */
static void reap(struct loop *l)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != l->r->pid)
			continue;
		char text[64];
		l->reaped = true;
		l->r->exited = true;
		l->r->status = status;
		l->r->t_exit = since(l);
		event(l, "%s", qr_status_text(l->r, text, sizeof text));
	}
}

/*
 * Processes we killed may still be on their way to becoming zombies when
 * the census already counts them dead. Wait for them (bounded: 200 ms) so
 * that none is left to init, which may be slow to reap inside a container.
 */
static void reap_stragglers(struct loop *l)
{
	siginfo_t si;
	for (int i = 0; i < 200; i++) {
		reap(l);
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
			return; /* ECHILD: no child left */
		if (si.si_pid == 0)
			usleep(1000); /* children, none exited yet */
	}
}

static void read_signals(struct loop *l)
{
	struct signalfd_siginfo si;
	char name[16];
	while (read(l->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			l->sigchld = true;
			continue;
		}
		if (!l->r->interrupted)
			qr_reason(l->r, "interrupted: " QR_NAME " got %s",
				  qr_signal_name((int)si.ssi_signo, name));
		l->r->interrupted = true;
	}
}

/* True once TCP 127.0.0.1:port accepts a connection. */
static bool port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (!ok && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof err;
		ok = poll(&p, 1, 5) == 1 &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
		     err == 0;
	}
	close(fd);
	return ok;
}

/* One sampling tick, folded into the run's counters; detail: a full one
 * (every thread listed, fds counted), as at the signal. */
static void tick(struct loop *l, bool detail)
{
	struct qr_run *r = l->r;
	qc_duration t = since(l);
	const struct qr_sample *smp = qr_sampler_tick(l->s, t, detail);
	if (!smp)
		return;
	if (r->threads_baseline < 0 && smp->procs > 0)
		r->threads_baseline = smp->threads;
	if ((long)smp->threads > r->threads_peak) {
		r->threads_peak = smp->threads;
		r->t_peak = t;
	}
	if ((long)smp->procs > r->procs_peak)
		r->procs_peak = smp->procs;
	if (!l->reaped && smp->procs > 0)
		r->threads_at_exit = smp->threads;
	if (l->phase == WAIT_READY && l->o->ready_kind == QR_READY_PORT)
		l->port_accepts = port_open(l->o->ready_port);
	long fds = qr_sampler_fds(l->s);
	if (fds >= 0)
		r->fds_at_end = fds;
	if (l->o->max_threads && (long)smp->threads > l->o->max_threads &&
	    !r->max_threads_exceeded) {
		char when[32];
		r->max_threads_exceeded = true;
		r->t_max_threads = t;
		qr_reason(r, "%u threads at +%s exceeded --max-threads %ld",
			  smp->threads, qr_fmt_dur(t, when), l->o->max_threads);
	}
}

static void enter(struct loop *l, enum phase p, qc_duration deadline)
{
	l->phase = p;
	l->phase_start = since(l);
	l->deadline = deadline;
	l->next_progress = since(l) + PROGRESS_EVERY;
}

/* Sends SIGKILL to everything and waits (bounded) in KILLING. */
static void kill_all(struct loop *l)
{
	l->r->killed = true;
	qr_sampler_kill(l->s, SIGKILL);
	event(l, "sent SIGKILL to process group %d and its strays",
	      (int)l->r->pid);
	enter(l, KILLING, since(l) + KILL_GRACE);
}

static bool ready_now(struct loop *l, qc_duration t)
{
	switch (l->o->ready_kind) {
	case QR_READY_AFTER:
		return t >= l->o->ready_after;
	case QR_READY_LINE:
		return l->line_matched;
	case QR_READY_PORT:
		return l->port_accepts;
	}
	return false;
}

static void send_signal(struct loop *l)
{
	struct qr_run *r = l->r;
	char name[16];
	tick(l, true); /* the at-signal counts are fresh */
	r->threads_at_signal = r->threads_at_exit;
	r->fds_before_signal = qr_sampler_fds(l->s);
	r->t_signal = since(l);
	kill(r->pid, l->o->signal);
	event(l, "sent %s to pid %d", qr_signal_name(l->o->signal, name),
	      (int)r->pid);
	enter(l, BOUND, r->t_signal + l->o->bound);
}

static void step_wait_ready(struct loop *l, qc_duration t)
{
	struct qr_run *r = l->r;
	char text[64], d[32];
	/* Ready first: a program that says "ready" and exits at once was
	 * ready, and then exited before the signal. */
	if (ready_now(l, t)) {
		r->t_ready = t;
		event(l, "ready");
		enter(l, CANCEL_DELAY, t + l->o->cancel_after);
	} else if (l->reaped) {
		qr_reason(r, "exited before it became ready (%s)",
			  qr_status_text(r, text, sizeof text));
		kill_all(l);
	} else if (l->o->ready_kind != QR_READY_AFTER && t >= l->deadline) {
		qr_reason(r, "never became ready within %s (%s)",
			  qr_fmt_dur(l->o->ready_timeout, d),
			  l->o->ready_kind == QR_READY_LINE
			      ? "no stdout line matched --ready-line"
			      : "nothing accepted on --ready-port");
		l->rc = QR_EXIT_ERROR;
		kill_all(l);
	}
}

/*
 * True when the program is reaped and nothing it started is alive, judged
 * on a fresh, full census: a sampled one may predate a double fork whose
 * middle process already died, and the grandchild must not escape.
 */
static bool all_gone(struct loop *l)
{
	if (!l->reaped || qr_sampler_live(l->s) != 0)
		return false;
	tick(l, true);
	if (qr_sampler_live(l->s) != 0)
		return false;
	/* Dead descendants re-parented to us are zombies until reaped: reap
	 * them now rather than leave them to init when we exit. */
	reap(l);
	return true;
}

static void step(struct loop *l)
{
	struct qr_run *r = l->r;
	qc_duration t = since(l);
	char text[64];
	if (r->interrupted && l->phase < KILLING) {
		l->rc = QR_EXIT_ERROR;
		kill_all(l);
		return;
	}
	switch (l->phase) {
	case WAIT_READY:
		step_wait_ready(l, t);
		if (l->phase != CANCEL_DELAY)
			break;
		__attribute__((fallthrough)); /* a zero delay: signal now */
	case CANCEL_DELAY:
		if (l->reaped) {
			qr_reason(r, "exited before the signal was sent (%s)",
				  qr_status_text(r, text, sizeof text));
			kill_all(l);
		} else if (t >= l->deadline) {
			send_signal(l);
		}
		break;
	case BOUND:
		if (all_gone(l)) {
			enter(l, DONE, t);
		} else if (t >= l->deadline) {
			r->overrun = true;
			qr_sampler_snapshot(l->s, t, &r->survivors);
			kill_all(l);
		}
		break;
	case KILLING:
		if (all_gone(l)) {
			enter(l, DONE, t);
		} else if (t >= l->deadline) {
			qr_reason(r,
				  "%zu processes still alive %s after "
				  "SIGKILL (stuck in the kernel?)",
				  qr_sampler_live(l->s),
				  qr_fmt_dur(KILL_GRACE, text));
			enter(l, DONE, t);
		}
		break;
	case DONE:
		break;
	}
}

static void progress(struct loop *l, qc_duration t)
{
	char a[32], b[32];
	const char *what = l->phase == WAIT_READY ? "become ready"
			   : l->phase == BOUND	  ? "exit"
						  : "die after SIGKILL";
	if (t < l->next_progress)
		return;
	/* Always move the next progress time on: it is also a ppoll
	 * deadline, and one left in the past would make the loop spin. */
	l->next_progress = t + PROGRESS_EVERY;
	if (l->o->verbosity < 0 || l->phase == CANCEL_DELAY || l->phase == DONE)
		return;
	fprintf(stderr, QR_NAME ": waiting for %s to %s (%s of %s)\n",
		l->r->name, what, qr_fmt_dur(t - l->phase_start, a),
		qr_fmt_dur(l->deadline - l->phase_start, b));
}

/* The nearest deadline, as a ppoll timeout. */
static struct timespec timeout(const struct loop *l)
{
	qc_duration t = since(l), next = l->next_tick;
	if (l->deadline < next)
		next = l->deadline;
	if (l->next_progress < next)
		next = l->next_progress;
	qc_duration wait = next > t ? next - t : 0;
	return (struct timespec){.tv_sec = wait / QC_SECOND,
				 .tv_nsec = wait % QC_SECOND};
}

int qr_loop_run(struct qr_run *r, struct qr_sampler *s, int sfd, int out_fd,
		regex_t *re, qc_time t0)
{
	struct loop l = {.r = r,
			 .o = r->opts,
			 .s = s,
			 .sfd = sfd,
			 .out_fd = out_fd,
			 .re = re,
			 .t0 = t0};
	r->out_tail = calloc(1, TAIL_KEEP + 1);
	if (!r->out_tail) {
		qr_reason(r, "out of memory");
		l.rc = QR_EXIT_ERROR;
		kill_all(&l);
	} else {
		enter(&l, WAIT_READY,
		      r->opts->ready_kind == QR_READY_AFTER
			  ? r->opts->ready_after
			  : r->opts->ready_timeout);
	}
	tick(&l, true);
	l.next_tick = r->opts->interval;
	while (l.phase != DONE) {
		struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN},
					{.fd = l.out_fd, .events = POLLIN}};
		struct timespec to = timeout(&l);
		int n = ppoll(fds, l.out_fd >= 0 ? 2 : 1, &to, NULL);
		if (n > 0 && fds[0].revents)
			read_signals(&l);
		if (n > 0 && l.out_fd >= 0 && fds[1].revents)
			read_stdout(&l);
		bool was_reaped = l.reaped;
		if (l.sigchld) {
			l.sigchld = false;
			reap(&l);
		}
		qc_duration t = since(&l);
		/* The program's exit asks for a fresh census at once: are
		 * its descendants gone too? */
		if (t >= l.next_tick || l.reaped != was_reaped) {
			tick(&l, l.reaped != was_reaped);
			l.next_tick = t + r->opts->interval;
		}
		step(&l);
		progress(&l, since(&l));
	}
	if (l.out_fd >= 0) {
		/* Drain what is already there; never wait for EOF (a stray
		 * may hold the pipe open). */
		struct pollfd p = {.fd = l.out_fd, .events = POLLIN};
		for (int i = 0; i < 64 && l.out_fd >= 0 && poll(&p, 1, 0) == 1;
		     i++)
			read_stdout(&l);
		if (l.out_fd >= 0)
			close(l.out_fd);
	}
	reap_stragglers(&l);
	r->t_end = since(&l);
	return l.rc;
}
