/*
 * trace.c: the harness's event trace (a bounded ring of spawns, parks,
 * wakes, cancels, timer firings, exits and verdicts, each with its virtual
 * and real time) and qc_h_write_json, which writes it with the last report.
 *
 * Invariants: the ring is written only under the harness lock; it keeps the
 * last QC_EVENTS events, and the JSON says how many older ones were
 * dropped. qc_h_write_json copies the ring under the lock and writes
 * without it.
 * Lock order: harness lock -> clock lock (qc_now, qc_clock_next_timer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness_impl.h"
#include "stack.h"

/* -------------------------------------------------------------- events */

void qc__h_event_locked(qc_h *h, int kind, const qc__thr *r, const char *what,
			qc_time until)
{
	if (!h->ev)
		return;
	qc__event *e = &h->ev[h->nev % QC_EVENTS];
	h->nev++;
	if (!r)
		r = qc__self_thr;
	memset(e, 0, sizeof *e);
	e->kind = (uint8_t)kind;
	e->tid = r ? atomic_load(&r->tid) : (pid_t)syscall(SYS_gettid);
	if (r && r->name)
		snprintf(e->name, sizeof e->name, "%s", r->name);
	else if (r && r->is_test)
		snprintf(e->name, sizeof e->name, "test");
	e->virt = qc_now(h->clock) - h->start;
	e->real = qc__now_raw() - h->start_real;
	e->until = until == QC_TIME_NEVER ? QC_TIME_NEVER : until - h->start;
	e->what = what;
}

static const char *ev_name(int k)
{
	static const char *const names[] = {"?",     "new",  "spawn",
					    "park",  "wake", "cancel",
					    "timer", "exit", "verdict"};
	return k > 0 && k <= QC_EV_VERDICT ? names[k] : "?";
}

/* ----------------------------------------------------------------- JSON */

static const char *why_word(enum qc__why w)
{
	switch (w) {
	case QC_WHY_GUARD:
		return "guard";
	case QC_WHY_BOUND:
		return "bound";
	case QC_WHY_DEADLOCK:
		return "deadlock";
	case QC_WHY_MANUAL:
		return "manual_time";
	case QC_WHY_REAL:
		return "real_bound";
	default:
		return "none";
	}
}

static void json_ns(qc__buf *b, const char *key, qc_time v)
{
	if (v == QC_TIME_NEVER)
		qc__buf_printf(b, ",\"%s\":null", key);
	else
		qc__buf_printf(b, ",\"%s\":%lld", key, (long long)v);
}

int qc_h_write_json(const qc_h *ch, FILE *out)
{
	if (!ch || !out)
		return EINVAL;
	qc_h *h = (qc_h *)ch;
	qc__buf b = QC_BUF_INIT;
	const qc_site *site = h->site;
	qc__buf_puts(&b, "{\"quiesce\":1,\"created_at\":\"");
	if (site) {
		qc__buf_json_str(&b, site->file);
		qc__buf_printf(&b, ":%d", site->line);
	}
	qc__buf_printf(&b, "\",\"clock\":\"%s\"",
		       qc_clock_is_virtual(h->clock) ? "virtual" : "real");
	json_ns(&b, "start_ns", h->start);
	json_ns(&b, "now_offset_ns", qc_now(h->clock) - h->start);
	qc__buf_printf(&b, ",\"guard_ns\":%lld,\"time_multiplier\":%d",
		       (long long)h->guard, h->multiplier);
	qc__buf_printf(&b, ",\"verdict\":%d,\"why\":\"%s\",\"cancelled\":%s",
		       h->last_verdict, why_word(h->last_why),
		       h->cancelled ? "true" : "false");
	if (h->cancelled)
		json_ns(&b, "cancel_offset_ns", h->cancel_time - h->start);
	qc__buf_puts(&b, ",\"report\":\"");
	qc__buf_json_str(&b, qc__buf_str(&h->report));
	qc__buf_puts(&b, "\",\"threads\":[");

	qc__tsnap *s = NULL;
	size_t n = 0;
	qc__h_lock();
	int e = qc__h_snapshot_locked(h, false, false, &s, &n);
	uint64_t nev = h->nev;
	size_t first = nev > QC_EVENTS ? (size_t)(nev - QC_EVENTS) : 0;
	qc__event *ev = qc__malloc(QC_EVENTS * sizeof *ev);
	if (ev && h->ev)
		memcpy(ev, h->ev, QC_EVENTS * sizeof *ev);
	qc__h_unlock();
	if (e || !ev) {
		qc__h_snapshot_free(s, n);
		qc__free(ev);
		qc__buf_free(&b);
		return ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		char sym[512] = "";
		if (s[i].routine)
			qc__symbol_name(s[i].routine, sym, sizeof sym);
		qc__buf_printf(&b, "%s{\"tid\":%d,\"name\":\"", i ? "," : "",
			       (int)s[i].tid);
		qc__buf_json_str(&b, s[i].name ? s[i].name : "");
		qc__buf_puts(&b, "\",\"start_routine\":\"");
		qc__buf_json_str(&b, sym);
		qc__buf_printf(&b,
			       "\",\"exited\":%s,\"joined\":%s,\"detached\":%s,"
			       "\"spawned\":%s,\"ignored\":%s,\"parked\":%s}",
			       s[i].exited ? "true" : "false",
			       s[i].joined ? "true" : "false",
			       s[i].detached ? "true" : "false",
			       s[i].spawned ? "true" : "false",
			       s[i].ignored ? "true" : "false",
			       s[i].parked ? "true" : "false");
	}
	qc__h_snapshot_free(s, n);
	qc__buf_puts(&b, "],\"events\":[");
	for (uint64_t k = first; k < nev; k++) {
		const qc__event *x = &ev[k % QC_EVENTS];
		qc__buf_printf(&b,
			       "%s{\"seq\":%llu,\"event\":\"%s\",\"tid\":%d",
			       k > first ? "," : "", (unsigned long long)k,
			       ev_name(x->kind), (int)x->tid);
		qc__buf_puts(&b, ",\"thread\":\"");
		qc__buf_json_str(&b, x->name);
		qc__buf_puts(&b, "\"");
		json_ns(&b, "virtual_ns", x->virt);
		json_ns(&b, "real_ns", x->real);
		if (x->what) {
			qc__buf_puts(&b, ",\"what\":\"");
			qc__buf_json_str(&b, x->what);
			qc__buf_puts(&b, "\"");
		}
		if (x->kind == QC_EV_PARK || x->kind == QC_EV_TIMER)
			json_ns(&b, "until_ns", x->until);
		qc__buf_puts(&b, "}");
	}
	qc__free(ev);
	qc__buf_printf(&b, "],\"events_dropped\":%llu}\n",
		       (unsigned long long)first);
	if (b.truncated) {
		qc__buf_free(&b);
		return ENOMEM;
	}
	errno = 0;
	int r = fputs(qc__buf_str(&b), out) < 0 || fflush(out) != 0;
	int we = errno ? errno : EIO;
	qc__buf_free(&b);
	return r ? we : 0;
}
