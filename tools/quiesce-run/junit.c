/*
 * junit.c: the JUnit XML report, in the Ant/Jenkins shape that CI systems
 * read (testsuites > testsuite > properties, testcase > failure|error,
 * system-out). One run is one test case; its failure text is the full
 * text report, and system-out holds the program's last stdout lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

size_t qr_utf8_len(const char *p)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t n;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong 3/4-byte forms, surrogates and > U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

void qr_xml_text(FILE *f, const char *s)
{
	while (s && *s) {
		unsigned char c = (unsigned char)*s;
		size_t n = qr_utf8_len(s);
		if (n == 0) {
			fputc('?', f); /* not UTF-8: the file must stay XML */
			s++;
			continue;
		}
		if (n > 1) {
			fwrite(s, 1, n, f);
			s += n;
			continue;
		}
		s++;
		switch (c) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			/* XML 1.0 allows only tab, LF and CR below 0x20. */
			if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
				fputc(c, f);
		}
	}
}

char *qr_report_string(const struct qr_run *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m)
		return NULL;
	qr_report_text(r, m);
	if (fclose(m) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void property(FILE *f, const char *name, const char *value)
{
	fprintf(f, "      <property name=\"%s\" value=\"", name);
	qr_xml_text(f, value);
	fputs("\"/>\n", f);
}

static void property_long(FILE *f, const char *name, long value)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%ld", value);
	property(f, name, buf);
}

static void properties(FILE *f, const struct qr_run *r)
{
	char buf[64];
	fputs("    <properties>\n", f);
	property(f, "program", r->program);
	property(f, "signal", qr_signal_name(r->opts->signal, buf));
	property(f, "bound", qr_fmt_dur(r->opts->bound, buf));
	property(f, "status", qr_status_text(r, buf, sizeof buf));
	property_long(f, "threads.baseline", r->threads_baseline);
	property_long(f, "threads.peak", r->threads_peak);
	property_long(f, "threads.at_signal", r->threads_at_signal);
	property_long(f, "threads.at_exit", r->threads_at_exit);
	property_long(f, "processes.peak", r->procs_peak);
	property_long(f, "fds.before_signal", r->fds_before_signal);
	property_long(f, "fds.at_end", r->fds_at_end);
	if (r->opts->faketime)
		property(f, "faketime", r->opts->faketime);
	if (r->opts->valgrind && r->vg.parsed) {
		property_long(f, "valgrind.errors", r->vg.errors);
		property_long(f, "valgrind.definitely_lost_bytes",
			      (long)r->vg.definite_bytes);
		property_long(f, "valgrind.indirectly_lost_bytes",
			      (long)r->vg.indirect_bytes);
	}
	fputs("    </properties>\n", f);
}

int qr_write_junit(const struct qr_run *r, const char *path)
{
	char stamp[32], host[256] = "localhost";
	FILE *f = fopen(path, "w");
	if (!f)
		return errno;
	char *report = qr_report_string(r);
	int failures = r->verdict == QR_FAIL, errors = r->verdict == QR_ERROR;
	double secs = (double)r->t_end / 1e9;
	time_t start = (time_t)r->wall_start;
	struct tm tm;
	gmtime_r(&start, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	gethostname(host, sizeof host - 1);

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
	fprintf(f,
		"<testsuites name=\"" QR_NAME "\" tests=\"1\" failures=\"%d\" "
		"errors=\"%d\" skipped=\"0\" time=\"%.3f\">\n",
		failures, errors, secs);
	fprintf(f,
		"  <testsuite name=\"" QR_NAME "\" tests=\"1\" failures=\"%d\" "
		"errors=\"%d\" skipped=\"0\" time=\"%.3f\" timestamp=\"%s\" "
		"hostname=\"",
		failures, errors, secs, stamp);
	qr_xml_text(f, host);
	fputs("\">\n", f);
	properties(f, r);
	fputs("    <testcase classname=\"" QR_NAME "\" name=\"", f);
	qr_xml_text(f, r->name);
	fprintf(f, "\" time=\"%.3f\">\n", secs);
	if (r->verdict != QR_PASS) {
		fprintf(f, "      <%s message=\"",
			failures ? "failure" : "error");
		qr_xml_text(f, r->nreasons ? r->reasons[0] : "failed");
		fprintf(f, "\" type=\"%s\">",
			failures ? "quiesce.fail" : "quiesce.error");
		qr_xml_text(f, report);
		fprintf(f, "</%s>\n", failures ? "failure" : "error");
	}
	fputs("      <system-out>", f);
	qr_xml_text(f, r->out_tail);
	fputs("</system-out>\n      <system-err>", f);
	qr_xml_text(f, report);
	fputs("</system-err>\n    </testcase>\n  </testsuite>\n"
	      "</testsuites>\n",
	      f);
	free(report);
	int rc = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = errno;
	return rc;
}
