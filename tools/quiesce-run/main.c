/*
 * main.c: quiesce-run: runs a program, cancels it with a signal, and checks
 * that it and everything it started are gone within a bound.
 *
 * Order of work: check every input (options, program, libfaketime,
 * valgrind, output directories) before starting anything, so bad input
 * costs no process; then start the program and hand over to the event loop
 * (loop.c), which returns only when nothing it tracked is alive; then
 * decide and write the reports. Invariants: after qr_spawn succeeds, every
 * exit path goes through the loop (which kills and reaps) or through
 * abandon() (which does the same), so no process is ever orphaned; and
 * quiesce-run is the subreaper of everything the program starts, so
 * double-forked daemons come back to it instead of init.
 */
#include <errno.h>
#include <libgen.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <quiesce/faketime.h>

#include "loop.h"
#include "sample.h"
#include "spawn.h"

/* Everything main owns, released by cleanup(). */
struct ctx {
	struct qr_opts o;
	struct qr_run r;
	regex_t re;
	bool have_re;
	qc_faketime_child *ft;
	char *valgrind;
	char vg_xml[4096];  /* valgrind's XML file; "" when not used */
	char vg_supp[4096]; /* suppressions for libfaketime; "" if none */
	char **argv;	    /* what is exec'd (valgrind's, or the program's) */
	struct qr_sampler *s;
	int sfd;
};

/* Could not start: one line on stderr, exit status 2. */
static int fail_start(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int fail_start(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, QR_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return QR_EXIT_ERROR;
}

/* An output file's directory must be writable before anything starts. */
static int check_output(const char *opt, const char *path)
{
	if (!path)
		return -1;
	char *copy = strdup(path);
	if (!copy)
		return QR_EXIT_ERROR;
	const char *dir = dirname(copy);
	int ok = access(dir, W_OK) == 0;
	int e = errno;
	free(copy);
	if (ok)
		return -1;
	return fail_start("%s: cannot write %s: %s", opt, path, strerror(e));
}

static int setup_faketime(struct ctx *c)
{
	qc_faketime ft;
	char err[1024];
	if (!c->o.faketime)
		return -1;
	if (qc_faketime_parse(c->o.faketime, &ft, err, sizeof err) != 0)
		return fail_start("--faketime: %s", err);
	/* Prints its own "quiesce: ..." line (no libfaketime, bad dir). */
	c->ft = qc_faketime_child_new(&ft, c->r.program, NULL);
	return c->ft ? -1 : QR_EXIT_ERROR;
}

/* Errors valgrind finds inside libfaketime itself (its sleep() reads
 * uninitialised memory) are not the program's: suppressed with --faketime. */
static const char faketime_supp[] =
    "{\n  quiesce-run: libfaketime's own uninitialised reads\n"
    "  Memcheck:Cond\n  ...\n  obj:*/libfaketime*.so*\n  ...\n}\n"
    "{\n  quiesce-run: libfaketime's own uninitialised values\n"
    "  Memcheck:Value8\n  ...\n  obj:*/libfaketime*.so*\n  ...\n}\n"
    "{\n  quiesce-run: libfaketime's own leaks\n  Memcheck:Leak\n"
    "  match-leak-kinds: all\n  ...\n  obj:*/libfaketime*.so*\n  ...\n}\n";

/* Creates a private temporary file holding text into path (PATH_MAX);
 * -1 to go on, else an exit code. */
static int make_temp(char *path, size_t n, const char *text)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, n, "%s/quiesce-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		int e = errno;
		path[0] = '\0';
		return fail_start("--valgrind: cannot create a temporary file: "
				  "%s",
				  strerror(e));
	}
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	return ok ? -1 : fail_start("--valgrind: cannot write %s", path);
}

/* valgrind's part of the command line: memcheck, XML to a private file,
 * forked children silent in it. */
static int valgrind_args(struct ctx *c, size_t *k)
{
	static char xml_opt[4200], supp_opt[4200];
	int err, rc;
	c->valgrind = qr_resolve("valgrind", &err);
	if (!c->valgrind)
		return fail_start("--valgrind: valgrind not found in PATH: "
				  "install the Debian package 'valgrind'");
	if ((rc = make_temp(c->vg_xml, sizeof c->vg_xml, "")) >= 0)
		return rc;
	snprintf(xml_opt, sizeof xml_opt, "--xml-file=%s", c->vg_xml);
	c->argv[(*k)++] = c->valgrind;
	c->argv[(*k)++] = "--tool=memcheck";
	c->argv[(*k)++] = "--xml=yes";
	c->argv[(*k)++] = xml_opt;
	c->argv[(*k)++] = "--leak-check=full";
	c->argv[(*k)++] = "--show-leak-kinds=definite,indirect,possible";
	c->argv[(*k)++] = "--child-silent-after-fork=yes";
	c->argv[(*k)++] = "-q";
	if (c->o.faketime) {
		rc = make_temp(c->vg_supp, sizeof c->vg_supp, faketime_supp);
		if (rc >= 0)
			return rc;
		snprintf(supp_opt, sizeof supp_opt, "--suppressions=%s",
			 c->vg_supp);
		c->argv[(*k)++] = supp_opt;
	}
	return -1;
}

/* The command line that is exec'd: the program's, or valgrind's around
 * it. */
static int setup_argv(struct ctx *c)
{
	size_t n = 0, k = 0;
	int rc;
	while (c->o.argv[n])
		n++;
	c->argv = calloc(n + 12, sizeof *c->argv);
	if (!c->argv)
		return fail_start("out of memory");
	if (c->o.valgrind && (rc = valgrind_args(c, &k)) >= 0)
		return rc;
	c->argv[k++] = c->r.program;
	for (size_t i = 1; i < n; i++)
		c->argv[k++] = c->o.argv[i];
	return -1;
}

/* Signals arrive through a signalfd; the child unblocks them. */
static int setup_signals(struct ctx *c)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not orphan */
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (c->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return fail_start("cannot set up signals: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return fail_start("cannot become a subreaper: %s",
				  strerror(errno));
	return -1;
}

/* Checks and prepares everything; -1 to go on, else an exit code. */
static int prepare(struct ctx *c, int argc, char **argv)
{
	int rc = qr_opts_parse(argc, argv, &c->o);
	if (rc >= 0)
		return rc;
	c->r.opts = &c->o;
	if (c->o.ready_kind == QR_READY_LINE) {
		if (regcomp(&c->re, c->o.ready_line, REG_EXTENDED | REG_NOSUB))
			return fail_start("--ready-line: '%s' is not a valid "
					  "POSIX extended regex",
					  c->o.ready_line);
		c->have_re = true;
	}
	int err;
	c->r.program = qr_resolve(c->o.argv[0], &err);
	if (!c->r.program)
		return fail_start("%s: %s", c->o.argv[0],
				  err == EACCES ? "not an executable file"
				  : err == ENOENT
				      ? "not found (no such file, or not "
					"in PATH)"
				      : strerror(err));
	char *base = strrchr(c->o.argv[0], '/');
	c->r.name = c->o.name ? c->o.name : base ? base + 1 : c->o.argv[0];
	if ((rc = check_output("--junit", c->o.junit)) >= 0 ||
	    (rc = check_output("--json", c->o.json)) >= 0 ||
	    (rc = check_output("--svg", c->o.svg)) >= 0 ||
	    (rc = setup_faketime(c)) >= 0 || (rc = setup_argv(c)) >= 0 ||
	    (rc = setup_signals(c)) >= 0)
		return rc;
	return -1;
}

static void init_run(struct qr_run *r)
{
	r->t_ready = r->t_signal = r->t_exit = -1;
	r->threads_baseline = -1;
	r->threads_at_signal = r->threads_at_exit = -1;
	r->fds_before_signal = r->fds_at_end = -1;
}

/* Puts reason text first: the headline is the most important finding. */
static void reason_first(struct qr_run *r, const char *text)
{
	int n = r->nreasons < QR_MAX_REASONS ? r->nreasons : QR_MAX_REASONS - 1;
	memmove(r->reasons[1], r->reasons[0], (size_t)n * sizeof r->reasons[0]);
	snprintf(r->reasons[0], sizeof r->reasons[0], "%s", text);
	r->nreasons = n + 1;
}

static void decide(struct qr_run *r, int loop_rc)
{
	char text[320], st[64], a[32], sig[16];
	if (loop_rc == QR_EXIT_ERROR) {
		r->verdict = QR_ERROR;
		return;
	}
	bool explained = r->nreasons > 0 && !r->max_threads_exceeded;
	if (r->overrun) {
		size_t threads = 0;
		for (size_t i = 0; i < r->survivors.nprocs; i++)
			threads += r->survivors.procs[i].nthreads;
		snprintf(text, sizeof text,
			 "%zu process%s with %zu thread%s still alive %s after "
			 "%s (the bound)",
			 r->survivors.nprocs,
			 r->survivors.nprocs == 1 ? "" : "es", threads,
			 threads == 1 ? "" : "s", qr_fmt_dur(r->opts->bound, a),
			 qr_signal_name(r->opts->signal, sig));
		reason_first(r, text);
	} else if (r->exited && !explained) {
		bool ok =
		    (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) ||
		    (WIFSIGNALED(r->status) &&
		     WTERMSIG(r->status) == r->opts->signal);
		if (!ok)
			qr_reason(r,
				  "%s after %s (wanted status 0 or death "
				  "by %s)",
				  qr_status_text(r, st, sizeof st),
				  qr_signal_name(r->opts->signal, sig), sig);
	}
	if (r->opts->valgrind) {
		const struct qr_vg *vg = &r->vg;
		if (!vg->parsed)
			qr_reason(r, "valgrind wrote no XML report");
		if (vg->errors)
			qr_reason(r, "valgrind found %ld error%s", vg->errors,
				  vg->errors == 1 ? "" : "s");
		if (vg->definite_bytes || vg->indirect_bytes)
			qr_reason(r,
				  "valgrind: %lld bytes definitely lost, "
				  "%lld bytes indirectly lost",
				  vg->definite_bytes, vg->indirect_bytes);
	}
	r->verdict = r->nreasons ? QR_FAIL : QR_PASS;
}

static int write_outputs(const struct ctx *c)
{
	int rc = 0, e;
	if (c->o.junit && (e = qr_write_junit(&c->r, c->o.junit)) != 0)
		rc = fail_start("--junit %s: %s", c->o.junit, strerror(e));
	if (c->o.json && (e = qr_write_json(&c->r, c->o.json)) != 0)
		rc = fail_start("--json %s: %s", c->o.json, strerror(e));
	if (c->o.svg && (e = qr_write_svg(&c->r, c->o.svg)) != 0)
		rc = fail_start("--svg %s: %s", c->o.svg, strerror(e));
	return rc;
}

static void cleanup(struct ctx *c)
{
	if (c->s && c->ft) {
		size_t n;
		const pid_t *pids = qr_sampler_pids(c->s, &n);
		for (size_t i = 0; i < n; i++)
			qc_faketime_cleanup_pid(pids[i]);
	}
	qc_faketime_child_free(c->ft);
	if (c->vg_xml[0])
		unlink(c->vg_xml);
	if (c->vg_supp[0])
		unlink(c->vg_supp);
	qr_snapshot_free(&c->r.survivors);
	qr_sampler_free(c->s);
	if (c->have_re)
		regfree(&c->re);
	free(c->r.out_tail);
	free(c->r.program);
	free(c->valgrind);
	free(c->argv);
	if (c->sfd > 0)
		close(c->sfd);
}

/* The sampler could not be made: kill what was started, reap, give up. */
static int abandon(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return fail_start("out of memory");
}

int main(int argc, char **argv)
{
	static struct ctx c;
	struct qr_child child;
	c.sfd = -1;
	init_run(&c.r);
	int rc = prepare(&c, argc, argv);
	if (rc >= 0) {
		cleanup(&c);
		return rc;
	}
	extern char **environ;
	char *const *envp = c.ft ? qc_faketime_child_envp(c.ft) : environ;
	qc_time t0 = qr_now();
	c.r.wall_start = (int64_t)time(NULL);
	int e = qr_spawn(c.argv[0], c.argv, envp, &child);
	if (e != 0) {
		rc = fail_start("cannot run %s: %s", c.argv[0], strerror(e));
		cleanup(&c);
		return rc;
	}
	c.r.pid = child.pid;
	c.s = qr_sampler_new(child.pid, c.o.valgrind);
	if (!c.s) {
		close(child.out_fd);
		rc = abandon(child.pid);
		cleanup(&c);
		return rc;
	}
	if (c.o.verbosity > 0)
		fprintf(stderr, QR_NAME ": started %s as pid %d\n", c.r.name,
			(int)child.pid);
	int loop_rc = qr_loop_run(&c.r, c.s, c.sfd, child.out_fd,
				  c.have_re ? &c.re : NULL, t0);
	c.r.samples = qr_sampler_samples(c.s, &c.r.nsamples);
	c.r.lives = qr_sampler_lives(c.s, &c.r.nlives, &c.r.lives_dropped);
	if (c.o.valgrind)
		qr_vg_parse(c.vg_xml, &c.r.vg);
	decide(&c.r, loop_rc);
	if (c.o.verbosity >= 0 || c.r.verdict != QR_PASS)
		qr_report_text(&c.r, stdout);
	fflush(stdout);
	rc = c.r.verdict == QR_PASS   ? QR_EXIT_PASS
	     : c.r.verdict == QR_FAIL ? QR_EXIT_FAIL
				      : QR_EXIT_ERROR;
	if (write_outputs(&c) != 0)
		rc = QR_EXIT_ERROR;
	cleanup(&c);
	return rc;
}
