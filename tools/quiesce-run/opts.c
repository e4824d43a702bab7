/*
 * opts.c: quiesce-run's command line.
 *
 * Everything is checked here, before anything starts: a bad option, a
 * missing "--", a malformed duration or signal name ends the run with a
 * message and exit status 2, never with a half-started program.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runner.h"

static const char usage_text[] =
    "usage: " QR_NAME " [options] -- PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM in its own process group, waits until it is ready, "
    "sends it a\n"
    "signal, and checks that it, all its threads and all its descendant "
    "processes\n"
    "are gone within a bound. Exit status: 0 pass, 1 fail (with a "
    "report),\n"
    "2 usage error or could not start.\n"
    "\n"
    "  --ready-after DUR    ready DUR after start (default 500ms)\n"
    "  --ready-line REGEX   ready at the first stdout line matching the "
    "POSIX\n"
    "                       extended REGEX\n"
    "  --ready-port PORT    ready once TCP 127.0.0.1:PORT accepts a "
    "connection\n"
    "  --ready-timeout DUR  give up waiting for a line or port (default "
    "10s, 60s\n"
    "                       with --valgrind): 'never became ready', exit 2\n"
    "  --signal NAME        the cancelling signal, sent to the program's "
    "process:\n"
    "                       TERM (default), INT, HUP, QUIT, USR1, USR2, "
    "... or a number\n"
    "  --cancel-after DUR   run this long once ready before the signal "
    "(default 0)\n"
    "  --bound DUR          everything must be gone this long after the "
    "signal\n"
    "                       (default 5s, 20s with --valgrind); real time, "
    "even with\n"
    "                       --faketime\n"
    "  --faketime SPEC      run under libfaketime, e.g. '+0 x10' (see "
    "quiesce/faketime.h)\n"
    "  --valgrind           run under memcheck; errors and definite or "
    "indirect leaks\n"
    "                       fail the run\n"
    "  --max-threads N      fail if the program and its descendants ever "
    "have more\n"
    "                       than N threads together\n"
    "  --interval DUR       sampling interval (default 10ms)\n"
    "  --junit FILE --json FILE --svg FILE   reports to write\n"
    "  --name NAME          test case name in reports (default: PROGRAM's "
    "basename)\n"
    "  -q, --quiet          print the report only when the run fails\n"
    "  -v, --verbose        echo PROGRAM's stdout and every event\n"
    "  -h, --help           this text\n"
    "\n"
    "Durations are Go-style: 250ms, 1.5s, 2m. Descendants are found by "
    "process group\n"
    "and by parent links (quiesce-run is their subreaper, so a "
    "double-forking daemon\n"
    "that leaves the group is still found). What escapes: processes "
    "started on the\n"
    "program's behalf by another service (systemd, D-Bus activation, at, "
    "ssh-agent\n"
    "sockets) and processes in another PID namespace. A descendant living "
    "shorter\n"
    "than five sampling intervals may be missing from the counts, never "
    "from the\n"
    "final check.\n"
    "\n"
    "Verdict: exit status 0, or death by the signal sent, passes; any "
    "other status or\n"
    "signal, a survivor after the bound, going over --max-threads, or a "
    "valgrind\n"
    "error or leak fails. The report goes to stdout, progress lines to "
    "stderr.\n"
    "Thread counts are sampled every interval; each survivor's threads, "
    "states and\n"
    "blocked system calls are read at the bound, then the whole tree is "
    "killed.\n";

enum {
	OPT_READY_AFTER = 256,
	OPT_READY_LINE,
	OPT_READY_PORT,
	OPT_READY_TIMEOUT,
	OPT_SIGNAL,
	OPT_CANCEL_AFTER,
	OPT_BOUND,
	OPT_FAKETIME,
	OPT_VALGRIND,
	OPT_MAX_THREADS,
	OPT_INTERVAL,
	OPT_JUNIT,
	OPT_JSON,
	OPT_SVG,
	OPT_NAME,
};

static const struct option long_opts[] = {
    {"ready-after", required_argument, NULL, OPT_READY_AFTER},
    {"ready-line", required_argument, NULL, OPT_READY_LINE},
    {"ready-port", required_argument, NULL, OPT_READY_PORT},
    {"ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT},
    {"signal", required_argument, NULL, OPT_SIGNAL},
    {"cancel-after", required_argument, NULL, OPT_CANCEL_AFTER},
    {"bound", required_argument, NULL, OPT_BOUND},
    {"faketime", required_argument, NULL, OPT_FAKETIME},
    {"valgrind", no_argument, NULL, OPT_VALGRIND},
    {"max-threads", required_argument, NULL, OPT_MAX_THREADS},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"json", required_argument, NULL, OPT_JSON},
    {"svg", required_argument, NULL, OPT_SVG},
    {"name", required_argument, NULL, OPT_NAME},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, QR_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nrun '" QR_NAME " --help' for the options\n");
	return QR_EXIT_ERROR;
}

const char *qr_signal_name(int sig, char buf[16])
{
	const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
	if (abbrev)
		snprintf(buf, 16, "SIG%s", abbrev);
	else
		snprintf(buf, 16, "SIG%d", sig);
	return buf;
}

/* "TERM", "SIGTERM", "term", "15", "RTMIN+3" -> signal number, or 0. */
static int parse_signal(const char *s)
{
	char *end;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	if (isdigit((unsigned char)s[0])) {
		long v = strtol(s, &end, 10);
		return *end == '\0' && v > 0 && v < NSIG ? (int)v : 0;
	}
	if (strncasecmp(s, "RTMIN", 5) == 0) {
		long off = s[5] == '+' ? strtol(s + 6, &end, 10) : 0;
		if ((s[5] && s[5] != '+') || (s[5] == '+' && *end) || off < 0 ||
		    SIGRTMIN + off > SIGRTMAX)
			return 0;
		return SIGRTMIN + (int)off;
	}
	for (int sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strcasecmp(abbrev, s) == 0)
			return sig;
	}
	return 0;
}

/* A duration option; min is the smallest value allowed. */
static int parse_dur(const char *opt, const char *s, qc_duration min,
		     qc_duration *out)
{
	char d[32];
	if (qc_duration_parse(s, out) != 0)
		return usage_error("%s: malformed duration '%s' (use e.g. "
				   "250ms, 1.5s, 2m)",
				   opt, s);
	if (*out < min)
		return usage_error("%s: duration '%s' is below %s", opt, s,
				   qc_duration_format(min, d, sizeof d));
	return -1;
}

static int parse_long(const char *opt, const char *s, long min, long max,
		      long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return usage_error("%s: '%s' is not a number from %ld to %ld",
				   opt, s, min, max);
	*out = v;
	return -1;
}

/* Handles one option; -1 to go on, else an exit code. */
static int apply(int c, const char *arg, struct qr_opts *o, int *readies,
		 bool *bound_set, bool *timeout_set)
{
	long v = 0;
	int rc = -1;
	switch (c) {
	case OPT_READY_AFTER:
		o->ready_kind = QR_READY_AFTER;
		++*readies;
		return parse_dur("--ready-after", arg, 0, &o->ready_after);
	case OPT_READY_LINE:
		o->ready_kind = QR_READY_LINE;
		o->ready_line = arg;
		++*readies;
		return -1;
	case OPT_READY_PORT:
		o->ready_kind = QR_READY_PORT;
		++*readies;
		rc = parse_long("--ready-port", arg, 1, 65535, &v);
		o->ready_port = (int)v;
		return rc;
	case OPT_READY_TIMEOUT:
		*timeout_set = true;
		return parse_dur("--ready-timeout", arg, QC_MILLISECOND,
				 &o->ready_timeout);
	case OPT_SIGNAL:
		o->signal = parse_signal(arg);
		return o->signal ? -1
				 : usage_error("--signal: unknown signal '%s' "
					       "(use TERM, INT, HUP, QUIT, "
					       "USR1, ... or a number)",
					       arg);
	case OPT_CANCEL_AFTER:
		return parse_dur("--cancel-after", arg, 0, &o->cancel_after);
	case OPT_BOUND:
		*bound_set = true;
		return parse_dur("--bound", arg, 0, &o->bound);
	case OPT_FAKETIME:
		o->faketime = arg;
		return -1;
	case OPT_VALGRIND:
		o->valgrind = true;
		return -1;
	case OPT_MAX_THREADS:
		return parse_long("--max-threads", arg, 1, 1000000,
				  &o->max_threads);
	case OPT_INTERVAL:
		return parse_dur("--interval", arg, QC_MILLISECOND,
				 &o->interval);
	case OPT_JUNIT:
		o->junit = arg;
		return -1;
	case OPT_JSON:
		o->json = arg;
		return -1;
	case OPT_SVG:
		o->svg = arg;
		return -1;
	case OPT_NAME:
		o->name = arg;
		return -1;
	case 'q':
		o->verbosity = -1;
		return -1;
	case 'v':
		o->verbosity = 1;
		return -1;
	case 'h':
		fputs(usage_text, stdout);
		return QR_EXIT_PASS;
	default:
		/* getopt printed what was wrong. */
		fprintf(stderr, "run '" QR_NAME " --help' for the options\n");
		return QR_EXIT_ERROR;
	}
}

int qr_opts_parse(int argc, char **argv, struct qr_opts *o)
{
	int readies = 0, c, rc;
	bool bound_set = false, timeout_set = false;
	memset(o, 0, sizeof *o);
	o->ready_kind = QR_READY_AFTER;
	o->ready_after = 500 * QC_MILLISECOND;
	o->signal = SIGTERM;
	o->bound = 5 * QC_SECOND;
	o->ready_timeout = 10 * QC_SECOND;
	o->interval = 10 * QC_MILLISECOND;

	/* '+': stop at the first non-option, so PROGRAM's own options are
	 * never taken for ours. */
	while ((c = getopt_long(argc, argv, "+qvh", long_opts, NULL)) != -1) {
		rc = apply(c, optarg, o, &readies, &bound_set, &timeout_set);
		if (rc >= 0)
			return rc;
	}
	if (readies > 1)
		return usage_error("%s", "give at most one of --ready-after, "
					 "--ready-line, --ready-port");
	if (optind >= argc || strcmp(argv[optind - 1], "--") != 0) {
		if (optind < argc)
			return usage_error("missing '--' before the program "
					   "('%s')",
					   argv[optind]);
		return usage_error("%s", "missing '-- PROGRAM [ARGS...]'");
	}
	if (o->valgrind && !bound_set)
		o->bound = 20 * QC_SECOND;
	if (o->valgrind && !timeout_set)
		o->ready_timeout = 60 * QC_SECOND;
	o->argv = argv + optind;
	return -1;
}
