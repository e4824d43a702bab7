/*
 * report.c: quiesce-run's text report, and the small formatting helpers
 * the other writers share.
 *
 * The report's words are stable (tests and people grep them): the first
 * line starts with "quiesce-run: PASS", "quiesce-run: FAIL" or
 * "quiesce-run: ERROR"; survivors are listed as "process <pid> ..." and
 * "thread <tid> "<name>" <state>" with the census's state words ("running",
 * "blocked in <syscall>(fd N: ...)").
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "runner.h"

#define TAIL_LINES 10 /* stdout lines shown in a failure report */

void qr_reason(struct qr_run *r, const char *fmt, ...)
{
	va_list ap;
	if (r->nreasons >= QR_MAX_REASONS)
		return;
	va_start(ap, fmt);
	vsnprintf(r->reasons[r->nreasons++], sizeof r->reasons[0], fmt, ap);
	va_end(ap);
}

const char *qr_fmt_dur(qc_duration d, char buf[32])
{
	/* Sampling is no finer than a millisecond or so: round what people
	 * read to 4-6 significant digits ("1.518ms", "2.501s"). */
	qc_duration unit = d >= QC_SECOND || d <= -QC_SECOND ? QC_MILLISECOND
			   : d >= QC_MILLISECOND || d <= -QC_MILLISECOND
			       ? QC_MICROSECOND
			       : 1;
	qc_duration half = d < 0 ? -unit / 2 : unit / 2;
	return qc_duration_format((d + half) / unit * unit, buf, 32);
}

const char *qr_status_text(const struct qr_run *r, char *buf, size_t n)
{
	char name[16];
	if (!r->exited)
		snprintf(buf, n, "still running");
	else if (WIFEXITED(r->status))
		snprintf(buf, n, "exited with status %d",
			 WEXITSTATUS(r->status));
	else if (WIFSIGNALED(r->status))
		snprintf(buf, n, "killed by %s%s",
			 qr_signal_name(WTERMSIG(r->status), name),
			 WCOREDUMP(r->status) ? " (core dumped)" : "");
	else
		snprintf(buf, n, "ended with wait status 0x%x", r->status);
	return buf;
}

static const char *verdict_word(enum qr_verdict v)
{
	return v == QR_PASS ? "PASS" : v == QR_FAIL ? "FAIL" : "ERROR";
}

static void headline(const struct qr_run *r, FILE *out)
{
	char st[64], a[32], b[32], sig[16];
	fprintf(out, QR_NAME ": %s %s: ", verdict_word(r->verdict), r->name);
	if (r->nreasons > 0) {
		fprintf(out, "%s\n", r->reasons[0]);
	} else if (r->t_signal >= 0 && r->t_exit >= 0) {
		fprintf(out, "%s %s after %s (bound %s)\n",
			qr_status_text(r, st, sizeof st),
			qr_fmt_dur(r->t_exit - r->t_signal, a),
			qr_signal_name(r->opts->signal, sig),
			qr_fmt_dur(r->opts->bound, b));
	} else {
		fprintf(out, "%s\n", qr_status_text(r, st, sizeof st));
	}
	for (int i = 1; i < r->nreasons; i++)
		fprintf(out, "  also: %s\n", r->reasons[i]);
}

static void timeline(const struct qr_run *r, FILE *out)
{
	char a[32], sig[16], st[64];
	fprintf(out, "  timeline:");
	if (r->t_ready >= 0)
		fprintf(out, " ready +%s,", qr_fmt_dur(r->t_ready, a));
	else
		fprintf(out, " never ready,");
	if (r->t_signal >= 0)
		fprintf(out, " %s +%s,", qr_signal_name(r->opts->signal, sig),
			qr_fmt_dur(r->t_signal, a));
	if (r->t_exit >= 0)
		fprintf(out, " exit +%s (%s)", qr_fmt_dur(r->t_exit, a),
			qr_status_text(r, st, sizeof st));
	else
		fprintf(out, " no exit seen");
	fprintf(out, "; run %s\n", qr_fmt_dur(r->t_end, a));
}

static void counts(const struct qr_run *r, FILE *out)
{
	char a[32];
	if (r->threads_baseline < 0) {
		fprintf(out, "  threads: not sampled (gone before the first "
			     "tick)\n");
	} else {
		fprintf(out, "  threads: baseline %ld, peak %ld at +%s, ",
			r->threads_baseline, r->threads_peak,
			qr_fmt_dur(r->t_peak, a));
		if (r->threads_at_signal >= 0)
			fprintf(out, "at signal %ld, ", r->threads_at_signal);
		if (r->threads_at_exit >= 0)
			fprintf(out, "at exit %ld; ", r->threads_at_exit);
		fprintf(out, "processes: peak %ld\n", r->procs_peak);
	}
	fprintf(out, "  fds: ");
	if (r->fds_before_signal >= 0)
		fprintf(out, "%ld before the signal, ", r->fds_before_signal);
	if (r->fds_at_end >= 0)
		fprintf(out, "%ld at the end\n", r->fds_at_end);
	else
		fprintf(out, "not counted\n");
}

static void survivors(const struct qr_run *r, FILE *out)
{
	char a[32], b[32], sig[16];
	const struct qr_snapshot *s = &r->survivors;
	if (!r->overrun)
		return;
	fprintf(out, "  survivors at +%s (%s after %s):\n", qr_fmt_dur(s->t, a),
		qr_fmt_dur(s->t - r->t_signal, b),
		qr_signal_name(r->opts->signal, sig));
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct qr_snap_proc *p = &s->procs[i];
		fprintf(out,
			"    process %d \"%s\" (%s), state %c%s, %zu "
			"thread%s\n",
			(int)p->info.pid, p->info.name,
			p->is_main    ? "the program"
			: p->in_group ? "in the program's process group"
				      : "a descendant that left the group",
			p->info.state,
			p->info.state == 'Z' ? " (its main thread exited)" : "",
			p->nthreads, p->nthreads == 1 ? "" : "s");
		for (size_t j = 0; j < p->nthreads; j++) {
			const struct qr_snap_thread *t = &p->threads[j];
			fprintf(out, "      thread %d \"%s\" %s%s%s\n",
				(int)t->info.tid, t->info.name, t->what,
				t->info.wchan[0] ? ", wchan " : "",
				t->info.wchan);
		}
	}
	if (r->killed)
		fprintf(out,
			"  killed: SIGKILL sent to process group %d and "
			"to every tracked process\n",
			(int)r->pid);
}

static void list_vg_errors(const struct qr_vg *vg, FILE *out)
{
	for (size_t i = 0; i < vg->nlisted; i++)
		fprintf(out, "    %s: %s%s%s\n", vg->listed[i].kind,
			vg->listed[i].what,
			vg->listed[i].where[0] ? " at " : "",
			vg->listed[i].where);
}

static void valgrind(const struct qr_run *r, FILE *out)
{
	const struct qr_vg *vg = &r->vg;
	if (!r->opts->valgrind)
		return;
	if (!vg->parsed) {
		fprintf(out, "  valgrind: no XML report was read\n");
		return;
	}
	if (!vg->complete) {
		/* Killed: memcheck never reached its leak check. */
		fprintf(out,
			"  valgrind: killed before its leak check (no leak "
			"summary); %ld error%s reported until then\n",
			vg->errors, vg->errors == 1 ? "" : "s");
		list_vg_errors(vg, out);
		return;
	}
	fprintf(out,
		"  valgrind: %ld error%s; definitely lost %lld B in %lld "
		"blocks; indirectly lost %lld B in %lld blocks; possibly lost "
		"%lld B in %lld blocks\n",
		vg->errors, vg->errors == 1 ? "" : "s", vg->definite_bytes,
		vg->definite_blocks, vg->indirect_bytes, vg->indirect_blocks,
		vg->possible_bytes, vg->possible_blocks);
	list_vg_errors(vg, out);
}

static void stdout_tail(const struct qr_run *r, FILE *out)
{
	if (r->verdict == QR_PASS || !r->out_tail || !r->out_tail[0])
		return;
	const char *p = r->out_tail + strlen(r->out_tail);
	int lines = 0;
	if (p > r->out_tail && p[-1] == '\n')
		p--;
	while (p > r->out_tail && lines < TAIL_LINES)
		if (*--p == '\n')
			lines++;
	if (*p == '\n')
		p++;
	fprintf(out, "  stdout (last lines):\n");
	while (*p) {
		size_t len = strcspn(p, "\n");
		fprintf(out, "    | %.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
}

void qr_report_text(const struct qr_run *r, FILE *out)
{
	headline(r, out);
	timeline(r, out);
	counts(r, out);
	survivors(r, out);
	valgrind(r, out);
	if (r->opts->faketime)
		fprintf(out,
			"  faketime: '%s' (the bound and all times above "
			"are real time)\n",
			r->opts->faketime);
	stdout_tail(r, out);
}
