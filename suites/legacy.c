/*
 * legacy.c: the legacy modules of legacy.h, written the way such code is
 * usually written (time() arithmetic in whole seconds, sleep() loops,
 * flags checked between sleeps). Their tests are in check_timeshim.c.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "legacy.h"

/* ------------------------------------------------------- retry loop */

int legacy_retry(int (*attempt)(void *arg), void *arg, const atomic_int *stop)
{
	time_t start = time(NULL);
	for (;;) {
		if (stop && atomic_load(stop))
			return -2;
		if (attempt(arg) == 0)
			return 0;
		if (time(NULL) - start >= LEGACY_RETRY_GIVE_UP)
			return -1;
		sleep(LEGACY_RETRY_PAUSE);
	}
}

/* ---------------------------------------------------- session cache */

void legacy_cache_init(legacy_cache *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->stop, 0);
	atomic_init(&c->sweeps, 0);
	atomic_init(&c->evicted, 0);
}

void legacy_cache_destroy(legacy_cache *c)
{
	pthread_mutex_destroy(&c->mu);
}

int legacy_cache_login(legacy_cache *c, const char *id)
{
	int r = -1;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < LEGACY_SESSIONS; i++) {
		if (!c->s[i].used) {
			snprintf(c->s[i].id, sizeof c->s[i].id, "%s", id);
			c->s[i].created = time(NULL);
			c->s[i].used = true;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

static bool expired(time_t created, time_t now)
{
	return now - created >= LEGACY_SESSION_TTL;
}

bool legacy_cache_valid(legacy_cache *c, const char *id)
{
	bool ok = false;
	pthread_mutex_lock(&c->mu);
	time_t now = time(NULL);
	for (int i = 0; i < LEGACY_SESSIONS; i++) {
		if (!c->s[i].used || strcmp(c->s[i].id, id) != 0)
			continue;
		if (expired(c->s[i].created, now))
			c->s[i].used = false;
		else
			ok = true;
		break;
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
}

int legacy_cache_sweep(legacy_cache *c)
{
	int n = 0;
	pthread_mutex_lock(&c->mu);
	time_t now = time(NULL);
	for (int i = 0; i < LEGACY_SESSIONS; i++) {
		if (c->s[i].used && expired(c->s[i].created, now)) {
			c->s[i].used = false;
			n++;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

void *legacy_cache_janitor(void *arg)
{
	legacy_cache *c = arg;
	while (!atomic_load(&c->stop)) {
		sleep(LEGACY_SWEEP_EVERY);
		atomic_fetch_add(&c->evicted, legacy_cache_sweep(c));
		atomic_fetch_add(&c->sweeps, 1);
	}
	return NULL;
}

/* ---------------------------------------------------- shutdown drain */

void legacy_server_init(legacy_server *s)
{
	atomic_init(&s->inflight, 0);
	atomic_init(&s->stopping, 0);
	atomic_init(&s->polls, 0);
}

int legacy_server_handle(legacy_server *s, unsigned ms)
{
	if (atomic_load(&s->stopping))
		return -1;
	atomic_fetch_add(&s->inflight, 1);
	usleep((useconds_t)ms * 1000);
	atomic_fetch_sub(&s->inflight, 1);
	return 0;
}

int legacy_server_shutdown(legacy_server *s)
{
	atomic_store(&s->stopping, 1);
	atomic_store(&s->polls, 0);
	time_t start = time(NULL);
	while (atomic_load(&s->inflight) > 0) {
		if (time(NULL) - start >= LEGACY_DRAIN_LIMIT)
			return -1;
		sleep(1);
		atomic_fetch_add(&s->polls, 1);
	}
	return 0;
}
