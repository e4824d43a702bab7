/*
 * legacy.h: code under test written the way much C code is: it knows only
 * time(), sleep() and usleep(), no clocks or contexts. check_timeshim
 * drives it on virtual time (qc_h_opts.intercept_time). Plain libc and
 * pthreads, no quiesce, so a black-box program can use it as it is.
 */
#ifndef QC_SUITES_LEGACY_H
#define QC_SUITES_LEGACY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

/* ------------------------------------------------------- retry loop */

#define LEGACY_RETRY_PAUSE   30	 /* seconds between attempts */
#define LEGACY_RETRY_GIVE_UP 300 /* seconds after the first attempt */

/*
 * legacy_retry: calls attempt(arg) until it returns 0, sleeping (sleep())
 * LEGACY_RETRY_PAUSE seconds between attempts, and gives up once
 * LEGACY_RETRY_GIVE_UP seconds of time() have passed since the first one:
 * attempts at +0, +30 s, ..., +5 min, eleven in all. *stop, when not NULL,
 * is looked at before each attempt only (the usual shape: a sleeping
 * retry loop does not notice it). Returns 0, -1 (gave up) or -2 (stopped).
 */
int legacy_retry(int (*attempt)(void *arg), void *arg, const atomic_int *stop);

/* ---------------------------------------------------- session cache */

#define LEGACY_SESSION_TTL 600 /* seconds a session lives after login */
#define LEGACY_SESSIONS	   8
#define LEGACY_SWEEP_EVERY 60 /* seconds between the janitor's sweeps */

typedef struct legacy_cache {
	pthread_mutex_t mu;
	struct {
		char id[32];
		time_t created; /* time() at login */
		bool used;
	} s[LEGACY_SESSIONS];
	atomic_int stop;    /* the janitor's exit flag */
	atomic_int sweeps;  /* sweeps the janitor made */
	atomic_int evicted; /* sessions the janitor evicted */
} legacy_cache;

void legacy_cache_init(legacy_cache *c);
void legacy_cache_destroy(legacy_cache *c);
/* Adds a session (id copied, truncated to 31 bytes). 0, or -1 when full. */
int legacy_cache_login(legacy_cache *c, const char *id);
/* True if id has a session younger than LEGACY_SESSION_TTL (an older one
 * is evicted on the spot). */
bool legacy_cache_valid(legacy_cache *c, const char *id);
/* Evicts every expired session; returns how many. */
int legacy_cache_sweep(legacy_cache *c);
/* The janitor: a pthread start routine (arg: the cache) that sweeps every
 * LEGACY_SWEEP_EVERY seconds with sleep() until c->stop is set; it notices
 * the flag only between sleeps. */
void *legacy_cache_janitor(void *arg);

/* ---------------------------------------------------- shutdown drain */

#define LEGACY_DRAIN_LIMIT 20 /* seconds shutdown waits for requests */

typedef struct legacy_server {
	atomic_int inflight; /* requests being handled */
	atomic_int stopping; /* set by shutdown: refuse new requests */
	atomic_int polls;    /* sleep(1) calls the last shutdown made */
} legacy_server;

void legacy_server_init(legacy_server *s);
/* Handles one request that takes ms milliseconds (usleep). 0, or -1 when
 * the server is stopping (refused). */
int legacy_server_handle(legacy_server *s, unsigned ms);
/* Stops taking requests and drains: polls the in-flight count once a
 * second (sleep(1)) until it is 0 or LEGACY_DRAIN_LIMIT seconds of time()
 * have passed. Returns 0 (drained) or -1 (gave up with requests running). */
int legacy_server_shutdown(legacy_server *s);

#endif /* QC_SUITES_LEGACY_H */
