/*
 * svg.c: the SVG timeline: the thread count (and process count) over time
 * with marks for ready, the signal, the bound and the exit, then one bar per
 * thread lifetime. Plain SVG 1.1 with inline attributes only, so any viewer
 * (and rsvg-convert, which the tests use) renders it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runner.h"

#define W	  960
#define X0	  190 /* left edge of the time axis: bar labels fit left of it */
#define X1	  (W - 20)
#define CHART_TOP 50
#define CHART_H	  180
#define BARS_TOP  (CHART_TOP + CHART_H + 60)
#define BAR_H	  10
#define BAR_STEP  14
#define MAX_BARS  300

struct scale {
	qc_duration tmax;
	long ymax;
};

static double xpos(const struct scale *s, qc_duration t)
{
	if (t < 0)
		t = 0;
	return X0 + (double)(X1 - X0) * (double)t / (double)s->tmax;
}

static double ypos(const struct scale *s, long v)
{
	return CHART_TOP + CHART_H -
	       (double)CHART_H * (double)v / (double)s->ymax;
}

static void mark(FILE *f, const struct scale *s, qc_duration t,
		 const char *color, const char *label, int row, bool dashed,
		 int height)
{
	char d[32];
	double x = xpos(s, t);
	fprintf(f,
		"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
		"stroke=\"%s\" stroke-width=\"1.5\"%s/>\n",
		x, CHART_TOP - 4, x, height - 30, color,
		dashed ? " stroke-dasharray=\"6,4\"" : "");
	fprintf(f,
		"<text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"%s\" "
		"text-anchor=\"%s\">%s +%s</text>\n",
		x + (x > W - 160 ? -4 : 4), CHART_TOP + 12 + 13 * row, color,
		x > W - 160 ? "end" : "start", label, qr_fmt_dur(t, d));
}

static void axes(FILE *f, const struct scale *s)
{
	char d[32];
	fprintf(f,
		"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"#f7f7f7\" stroke=\"#999\"/>\n",
		X0, CHART_TOP, X1 - X0, CHART_H);
	/* Ticks at a round step (1, 2 or 5 times a power of ten) giving
	 * four to ten labels. */
	qc_duration step = 1;
	for (qc_duration base = 1; s->tmax / step > 10; base *= 10)
		for (int m = 1; m <= 5 && s->tmax / step > 10;
		     m += m == 1 ? 1 : 3)
			step = base * m;
	for (qc_duration t = 0; t <= s->tmax; t += step) {
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
			"text-anchor=\"middle\" fill=\"#333\">+%s</text>\n",
			xpos(s, t), CHART_TOP + CHART_H + 16, qr_fmt_dur(t, d));
	}
	fprintf(
	    f,
	    "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" "
	    "fill=\"#333\">%ld</text>\n",
	    X0 - 6, ypos(s, s->ymax) + 4, s->ymax);
	fprintf(
	    f,
	    "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" "
	    "fill=\"#333\">0</text>\n",
	    X0 - 6, ypos(s, 0) + 4);
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\" "
		"fill=\"#1f4e9c\">threads</text>\n"
		"<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\" "
		"fill=\"#8e44ad\">processes</text>\n",
		X0 - 30, CHART_TOP + 60, X0 - 30, CHART_TOP + 76);
}

/* A step line through the samples: field 0 threads, 1 processes. */
/*
 * A step line through the samples: field 0 threads, 1 processes. A long
 * run has far more samples than pixels: samples falling in one pixel
 * column are merged, keeping the column's highest value (a peak must
 * show), so the file stays small.
 */
static void series(FILE *f, const struct qr_run *r, const struct scale *s,
		   int field, const char *color)
{
	if (r->nsamples == 0)
		return;
	fprintf(f,
		"<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" "
		"points=\"",
		color, field ? "1" : "2");
	long prev = -1;
	for (size_t i = 0; i < r->nsamples;) {
		double x = xpos(s, r->samples[i].t);
		long v = -1;
		for (; i < r->nsamples && xpos(s, r->samples[i].t) < x + 1;
		     i++) {
			const struct qr_sample *smp = &r->samples[i];
			long sv = field ? (long)smp->procs : (long)smp->threads;
			if (sv > v)
				v = sv;
		}
		if (prev >= 0)
			fprintf(f, "%.1f,%.1f ", x, ypos(s, prev));
		fprintf(f, "%.1f,%.1f ", x, ypos(s, v));
		prev = v;
	}
	fprintf(f, "%.1f,%.1f\"/>\n", xpos(s, r->t_end), ypos(s, prev));
}

static void bars(FILE *f, const struct qr_run *r, const struct scale *s,
		 size_t shown)
{
	fprintf(f,
		"<text x=\"10\" y=\"%d\" font-size=\"12\" fill=\"#333\">thread "
		"lifetimes (red: still alive at the bound)</text>\n",
		BARS_TOP - 10);
	for (size_t i = 0; i < shown; i++) {
		const struct qr_life *l = &r->lives[i];
		int y = BARS_TOP + (int)i * BAR_STEP;
		/* Seen at or after the survivors' snapshot: outlived it. */
		bool survivor =
		    r->overrun && l->last >= r->survivors.t - r->opts->interval;
		double x = xpos(s, l->first), xe = xpos(s, l->last);
		if (xe - x < 2)
			xe = x + 2;
		fprintf(f,
			"<text x=\"%d\" y=\"%d\" font-size=\"10\" "
			"text-anchor=\"end\" fill=\"#333\">%d ",
			X0 - 6, y + BAR_H - 1, (int)l->tid);
		qr_xml_text(f, l->name);
		fprintf(f,
			"</text>\n<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
			"height=\"%d\" fill=\"%s\"/>\n",
			x, y, xe - x, BAR_H, survivor ? "#c0392b" : "#4a7fc1");
	}
	if (r->nlives > shown || r->lives_dropped)
		fprintf(f,
			"<text x=\"10\" y=\"%d\" font-size=\"11\" "
			"fill=\"#333\">+%zu more threads not shown</text>\n",
			BARS_TOP + (int)shown * BAR_STEP + 12,
			r->nlives - shown + r->lives_dropped);
}

int qr_write_svg(const struct qr_run *r, const char *path)
{
	char sig[16];
	struct scale s = {.tmax = r->t_end > 0 ? r->t_end : QC_MILLISECOND,
			  .ymax = r->threads_peak > 0 ? r->threads_peak : 1};
	if (r->opts->max_threads > s.ymax && r->opts->max_threads < 4 * s.ymax)
		s.ymax = r->opts->max_threads;
	size_t shown = r->nlives < MAX_BARS ? r->nlives : MAX_BARS;
	int height = BARS_TOP + (int)shown * BAR_STEP + 40;
	FILE *f = fopen(path, "w");
	if (!f)
		return errno;
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"10\" y=\"24\" font-size=\"15\" fill=\"#000\">",
		W, height, W, height);
	qr_xml_text(f, QR_NAME ": ");
	qr_xml_text(f, r->verdict == QR_PASS   ? "PASS "
		       : r->verdict == QR_FAIL ? "FAIL "
					       : "ERROR ");
	qr_xml_text(f, r->name);
	fputs("</text>\n", f);
	axes(f, &s);
	if (r->opts->max_threads)
		fprintf(f,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
			"stroke=\"#c0392b\" stroke-dasharray=\"2,3\"/>\n",
			X0, ypos(&s, r->opts->max_threads), X1,
			ypos(&s, r->opts->max_threads));
	series(f, r, &s, 1, "#8e44ad");
	series(f, r, &s, 0, "#1f4e9c");
	if (r->t_ready >= 0)
		mark(f, &s, r->t_ready, "#2a9d3f", "ready", 0, false, height);
	if (r->t_signal >= 0) {
		mark(f, &s, r->t_signal, "#e67e22",
		     qr_signal_name(r->opts->signal, sig), 1, false, height);
		if (r->t_signal + r->opts->bound <= s.tmax)
			mark(f, &s, r->t_signal + r->opts->bound, "#c0392b",
			     "bound", 2, true, height);
	}
	if (r->t_exit >= 0)
		mark(f, &s, r->t_exit, "#2c6fbb", "exit", 3, false, height);
	bars(f, r, &s, shown);
	fputs("</svg>\n", f);
	int rc = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = errno;
	return rc;
}
