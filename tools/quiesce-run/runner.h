/*
 * runner.h: quiesce-run's shared types: the options, what one run
 * observed, and the writers that turn it into reports.
 *
 * quiesce-run is single-threaded: one event loop (main.c) owns every
 * structure here, so nothing is locked.
 */
#ifndef QR_RUNNER_H
#define QR_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <quiesce/census.h>
#include <quiesce/time.h>

#define QR_NAME "quiesce-run"

/* Exit codes: the contract with CI scripts. */
enum { QR_EXIT_PASS = 0, QR_EXIT_FAIL = 1, QR_EXIT_ERROR = 2 };

enum qr_ready_kind { QR_READY_AFTER, QR_READY_LINE, QR_READY_PORT };

struct qr_opts {
	enum qr_ready_kind ready_kind;
	qc_duration ready_after;   /* QR_READY_AFTER: from start */
	const char *ready_line;	   /* QR_READY_LINE: POSIX extended regex */
	int ready_port;		   /* QR_READY_PORT: TCP on 127.0.0.1 */
	qc_duration ready_timeout; /* line/port: give up after this */
	int signal;		   /* sent to the program's process */
	qc_duration cancel_after;  /* from ready to the signal */
	qc_duration bound;	   /* from the signal: all must be gone */
	const char *faketime;	   /* libfaketime spec, or NULL */
	bool valgrind;
	long max_threads;     /* 0: no limit */
	qc_duration interval; /* sampling period */
	const char *junit;    /* output files, or NULL */
	const char *json;
	const char *svg;
	const char *name; /* test case name; default: program basename */
	int verbosity;	  /* -1 quiet, 0 normal, 1 verbose */
	char **argv;	  /* PROGRAM ARGS..., NULL-terminated */
};

/* qr_opts_parse: fills *o from the command line. Returns -1 to go on, or an
 * exit code (0 after --help, QR_EXIT_ERROR after a usage message). */
int qr_opts_parse(int argc, char **argv, struct qr_opts *o);

/* qr_signal_name: "SIGTERM" for SIGTERM, "SIG37" style for the unnamed. */
const char *qr_signal_name(int sig, char buf[16]);

/* ------------------------------------------------------------ samples */

/* One sampling tick: totals over the program and its descendants. */
struct qr_sample {
	qc_duration t;	  /* since start */
	uint32_t threads; /* threads of every live tracked process */
	uint32_t procs;	  /* live tracked processes (zombies excluded) */
};

/* One thread's life as the sampler saw it. */
struct qr_life {
	pid_t pid, tid;
	char name[16];
	qc_duration first, last; /* first and last tick it was seen at */
	bool ended;		 /* gone by the tick after last */
};

/* A thread and process seen in a snapshot (at the bound, for survivors). */
struct qr_snap_thread {
	qc_thread_info info;
	char what[384]; /* qc_census_thread_describe's text */
};

struct qr_snap_proc {
	qc_proc_info info;
	bool is_main;
	bool in_group; /* in the program's process group */
	size_t nthreads;
	struct qr_snap_thread *threads;
};

struct qr_snapshot {
	qc_duration t;
	size_t nprocs;
	struct qr_snap_proc *procs;
};

/* ------------------------------------------------------------ valgrind */

struct qr_vg_error {
	char kind[48];	 /* InvalidRead, Leak_DefinitelyLost, ... */
	char what[256];	 /* valgrind's one-line description */
	char where[256]; /* first frame outside valgrind: fn (file:line) */
};

struct qr_vg {
	bool parsed;   /* the XML file was read */
	bool complete; /* it ends with </valgrindoutput> */
	long errors;   /* non-leak errors */
	long long definite_bytes, definite_blocks;
	long long indirect_bytes, indirect_blocks;
	long long possible_bytes, possible_blocks;
	size_t nlisted;
	struct qr_vg_error listed[16]; /* first errors and leaks, in order */
};

/* qr_vg_parse: reads valgrind's --xml-file output into *vg. Returns 0 or
 * errno (the file could not be read). */
int qr_vg_parse(const char *path, struct qr_vg *vg);

/* ------------------------------------------------------------- the run */

enum qr_verdict { QR_PASS, QR_FAIL, QR_ERROR };

#define QR_MAX_REASONS 8

struct qr_run {
	const struct qr_opts *opts;
	const char *name;      /* test case name */
	char *program;	       /* resolved path of PROGRAM */
	pid_t pid;	       /* the program's process (and group) */
	int64_t wall_start;    /* Unix seconds, for JUnit's timestamp */
	qc_duration t_ready;   /* since start; -1: never */
	qc_duration t_signal;  /* -1: not sent */
	qc_duration t_exit;    /* the program's process reaped; -1: not */
	qc_duration t_end;     /* the run ended */
	bool exited;	       /* status is valid */
	int status;	       /* waitpid status of the program */
	bool overrun;	       /* something survived the bound */
	bool killed;	       /* we sent SIGKILL to the group */
	bool interrupted;      /* quiesce-run itself got a signal */
	long threads_baseline; /* first sample */
	long threads_peak;
	qc_duration t_peak;
	long threads_at_signal; /* -1: no signal */
	long threads_at_exit;	/* last sample before the program exited */
	long procs_peak;
	long fds_before_signal; /* -1: unknown */
	long fds_at_end;	/* last count while the program ran */
	bool max_threads_exceeded;
	qc_duration t_max_threads;    /* when it was first exceeded */
	struct qr_snapshot survivors; /* at the bound; nprocs 0 if none */
	struct qr_vg vg;
	const struct qr_sample *samples;
	size_t nsamples;
	const struct qr_life *lives;
	size_t nlives;
	size_t lives_dropped; /* threads seen past the recording cap */
	char *out_tail;	      /* the program's last stdout lines */
	enum qr_verdict verdict;
	int nreasons;
	char reasons[QR_MAX_REASONS][320];
};

/* qr_reason: appends a printf-formatted reason for the verdict. */
void qr_reason(struct qr_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The writers. Each returns 0 or errno; report goes to out. */
void qr_report_text(const struct qr_run *r, FILE *out);
int qr_write_junit(const struct qr_run *r, const char *path);
int qr_write_json(const struct qr_run *r, const char *path);
int qr_write_svg(const struct qr_run *r, const char *path);

/* qr_xml_text: writes s to f escaped for XML text and attribute values,
 * dropping the control characters XML 1.0 forbids. */
void qr_xml_text(FILE *f, const char *s);

/* qr_utf8_len: the length of the valid UTF-8 sequence at p (1 for ASCII,
 * including NUL), or 0 when the byte at p starts none. */
size_t qr_utf8_len(const char *p);

/* qr_json_str: writes s to f as a JSON string literal, quotes included. */
void qr_json_str(FILE *f, const char *s);

/* qr_report_string: the text report as a malloc'd string (NULL on ENOMEM). */
char *qr_report_string(const struct qr_run *r);

/* qr_fmt_dur: Go-style duration text in a small static-free buffer. */
const char *qr_fmt_dur(qc_duration d, char buf[32]);

/* qr_status_text: "exited with status 0" / "killed by SIGTERM". */
const char *qr_status_text(const struct qr_run *r, char *buf, size_t n);

#endif /* QR_RUNNER_H */
