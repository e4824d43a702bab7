/*
 * json.c: the JSON report: one object with the verdict, the timeline, the
 * counts, the survivors, valgrind's summary, the samples and the thread
 * lifetimes (times in ns since the program started). Strings are always
 * valid UTF-8 (invalid bytes become U+FFFD).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "runner.h"

void qr_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	while (s && *s) {
		unsigned char c = (unsigned char)*s;
		size_t n = qr_utf8_len(s);
		if (n == 0) {
			fputs("\\ufffd", f);
			s++;
		} else if (n > 1) {
			fwrite(s, 1, n, f);
			s += n;
		} else {
			if (c == '"' || c == '\\')
				fprintf(f, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", f);
			else if (c == '\t')
				fputs("\\t", f);
			else if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
			s++;
		}
	}
	fputc('"', f);
}

static void survivors(FILE *f, const struct qr_snapshot *s)
{
	fputs("[", f);
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct qr_snap_proc *p = &s->procs[i];
		fprintf(f, "%s\n    {\"pid\": %d, \"name\": ", i ? "," : "",
			(int)p->info.pid);
		qr_json_str(f, p->info.name);
		fprintf(f,
			", \"state\": \"%c\", \"ppid\": %d, \"pgid\": %d, "
			"\"is_program\": %s, \"threads\": [",
			p->info.state, (int)p->info.ppid, (int)p->info.pgid,
			p->is_main ? "true" : "false");
		for (size_t j = 0; j < p->nthreads; j++) {
			const struct qr_snap_thread *t = &p->threads[j];
			fprintf(f, "%s\n      {\"tid\": %d, \"name\": ",
				j ? "," : "", (int)t->info.tid);
			qr_json_str(f, t->info.name);
			fprintf(f, ", \"state\": \"%c\", \"syscall\": %ld, ",
				t->info.state, t->info.syscall);
			fputs("\"what\": ", f);
			qr_json_str(f, t->what);
			fputs(", \"wchan\": ", f);
			qr_json_str(f, t->info.wchan);
			fputs("}", f);
		}
		fputs("]}", f);
	}
	fputs(s->nprocs ? "\n  ]" : "]", f);
}

static void valgrind(FILE *f, const struct qr_vg *vg)
{
	fprintf(f,
		"{\"parsed\": %s, \"complete\": %s, \"errors\": %ld, "
		"\"definitely_lost\": {\"bytes\": %lld, \"blocks\": %lld}, "
		"\"indirectly_lost\": {\"bytes\": %lld, \"blocks\": %lld}, "
		"\"possibly_lost\": {\"bytes\": %lld, \"blocks\": %lld}, "
		"\"listed\": [",
		vg->parsed ? "true" : "false", vg->complete ? "true" : "false",
		vg->errors, vg->definite_bytes, vg->definite_blocks,
		vg->indirect_bytes, vg->indirect_blocks, vg->possible_bytes,
		vg->possible_blocks);
	for (size_t i = 0; i < vg->nlisted; i++) {
		fputs(i ? ", {\"kind\": " : "{\"kind\": ", f);
		qr_json_str(f, vg->listed[i].kind);
		fputs(", \"what\": ", f);
		qr_json_str(f, vg->listed[i].what);
		fputs(", \"where\": ", f);
		qr_json_str(f, vg->listed[i].where);
		fputs("}", f);
	}
	fputs("]}", f);
}

static void series(FILE *f, const struct qr_run *r)
{
	fputs(",\n  \"samples\": [", f);
	for (size_t i = 0; i < r->nsamples; i++)
		fprintf(f, "%s[%lld, %u, %u]", i ? ", " : "",
			(long long)r->samples[i].t, r->samples[i].threads,
			r->samples[i].procs);
	fputs("],\n  \"thread_lifetimes\": [", f);
	for (size_t i = 0; i < r->nlives; i++) {
		const struct qr_life *l = &r->lives[i];
		fprintf(f, "%s\n    {\"pid\": %d, \"tid\": %d, \"name\": ",
			i ? "," : "", (int)l->pid, (int)l->tid);
		qr_json_str(f, l->name);
		fprintf(f,
			", \"first_ns\": %lld, \"last_ns\": %lld, "
			"\"ended\": %s}",
			(long long)l->first, (long long)l->last,
			l->ended ? "true" : "false");
	}
	fprintf(f, "%s],\n  \"thread_lifetimes_dropped\": %zu",
		r->nlives ? "\n  " : "", r->lives_dropped);
}

int qr_write_json(const struct qr_run *r, const char *path)
{
	char buf[64];
	FILE *f = fopen(path, "w");
	if (!f)
		return errno;
	static const char *const verdicts[] = {"pass", "fail", "error"};
	fprintf(f, "{\n  \"name\": ");
	qr_json_str(f, r->name);
	fputs(",\n  \"program\": ", f);
	qr_json_str(f, r->program);
	fputs(",\n  \"argv\": [", f);
	for (char **a = r->opts->argv; *a; a++) {
		fputs(a == r->opts->argv ? "" : ", ", f);
		qr_json_str(f, *a);
	}
	fprintf(f, "],\n  \"verdict\": \"%s\",\n  \"reasons\": [",
		verdicts[r->verdict]);
	for (int i = 0; i < r->nreasons; i++) {
		fputs(i ? ", " : "", f);
		qr_json_str(f, r->reasons[i]);
	}
	fprintf(f, "],\n  \"pid\": %d,\n  \"signal\": ", (int)r->pid);
	qr_json_str(f, qr_signal_name(r->opts->signal, buf));
	fprintf(f, ",\n  \"status\": ");
	qr_json_str(f, qr_status_text(r, buf, sizeof buf));
	fprintf(f, ",\n  \"exit_code\": %d,\n  \"exit_signal\": %d",
		r->exited && WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1,
		r->exited && WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0);
	fprintf(f,
		",\n  \"bound_ns\": %lld,\n  \"ready_ns\": %lld,\n"
		"  \"signal_ns\": %lld,\n  \"exit_ns\": %lld,\n"
		"  \"end_ns\": %lld,\n  \"overrun\": %s,\n  \"killed\": %s",
		(long long)r->opts->bound, (long long)r->t_ready,
		(long long)r->t_signal, (long long)r->t_exit,
		(long long)r->t_end, r->overrun ? "true" : "false",
		r->killed ? "true" : "false");
	fprintf(f,
		",\n  \"threads\": {\"baseline\": %ld, \"peak\": %ld, "
		"\"peak_ns\": %lld, \"at_signal\": %ld, \"at_exit\": %ld},\n"
		"  \"processes\": {\"peak\": %ld},\n"
		"  \"fds\": {\"before_signal\": %ld, \"at_end\": %ld}",
		r->threads_baseline, r->threads_peak, (long long)r->t_peak,
		r->threads_at_signal, r->threads_at_exit, r->procs_peak,
		r->fds_before_signal, r->fds_at_end);
	fputs(",\n  \"faketime\": ", f);
	if (r->opts->faketime)
		qr_json_str(f, r->opts->faketime);
	else
		fputs("null", f);
	fputs(",\n  \"survivors\": ", f);
	survivors(f, &r->survivors);
	fputs(",\n  \"valgrind\": ", f);
	if (r->opts->valgrind)
		valgrind(f, &r->vg);
	else
		fputs("null", f);
	series(f, r);
	fputs("\n}\n", f);
	int rc = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = errno;
	return rc;
}
