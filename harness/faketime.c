/*
 * faketime.c: libfaketime time specs: parsing, checking, canonical text,
 * and finding the library (quiesce/faketime.h).
 *
 * The parser accepts a strict subset of what libfaketime reads, because
 * libfaketime exits the program on a spec it cannot parse: better to refuse
 * here with a message than to see the program under test die at start.
 * Invariant: qc_faketime_format's output parses back to the same value, and
 * libfaketime reads it as meant (offsets in plain seconds, speeds with at
 * most 9 decimals and no exponent). Pure functions; no shared state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quiesce/faketime.h>

#define ACCEPTED_FORMS                                                       \
	"accepted: '+N' or '-N' seconds, or with one unit s, m, h, d, y "    \
	"(e.g. '+0', '-2d', '+1.5h'), optionally followed by ' xF' with a "  \
	"speed F > 0 (e.g. '+0 x10'); '@YYYY-MM-DD hh:mm:ss' (start there, " \
	"then run; ' xF' allowed); 'YYYY-MM-DD hh:mm:ss' (frozen)"

#define MAX_DECIMALS 9
#define MAX_SPEED    1e9

/* Reports a parse error to err, or to stderr when err is NULL. */
static int parse_error(char *err, size_t errlen, const char *spec,
		       const char *why)
{
	if (err && errlen) {
		snprintf(err, errlen, "bad faketime spec '%s': %s; %s", spec,
			 why, ACCEPTED_FORMS);
	} else {
		fprintf(stderr, "quiesce: bad faketime spec '%s': %s; %s\n",
			spec, why, ACCEPTED_FORMS);
	}
	return EINVAL;
}

/* Reads "digits[.digits]" at *s: the whole part, the fraction's digits as
 * an integer and their count. False if no digit or too many decimals. */
static bool read_decimal(const char **s, uint64_t *whole, uint64_t *frac,
			 int *decimals)
{
	const char *p = *s;
	bool digits = false;
	*whole = *frac = 0;
	*decimals = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits = true) {
		if (*whole > (UINT64_MAX - 9) / 10)
			return false;
		*whole = *whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, digits = true) {
			if (++*decimals > MAX_DECIMALS)
				return false;
			*frac = *frac * 10 + (uint64_t)(*p - '0');
		}
	}
	*s = p;
	return digits;
}

/* Parses an optional " xF" tail into *speed (1 when absent). */
static const char *parse_speed(const char *p, double *speed)
{
	uint64_t whole, frac;
	int decimals;
	*speed = 1.0;
	if (*p == '\0')
		return NULL;
	if (p[0] != ' ' || p[1] != 'x')
		return "expected end of spec or ' xF' after the time";
	p += 2;
	const char *start = p;
	if (!read_decimal(&p, &whole, &frac, &decimals) || *p != '\0')
		return "the speed after 'x' must be a decimal number with at "
		       "most 9 decimals, and end the spec";
	*speed = strtod(start, NULL);
	if (!(*speed > 0))
		return "the speed must be greater than 0";
	if (*speed > MAX_SPEED)
		return "the speed must be at most 1e9";
	return NULL;
}

static const char *parse_offset(const char *p, qc_faketime *ft)
{
	static const struct {
		char unit;
		uint64_t ns;
	} units[] = {
	    {'s', 1000000000ull},
	    {'m', 60ull * 1000000000},
	    {'h', 3600ull * 1000000000},
	    {'d', 86400ull * 1000000000},
	    {'y', 31536000ull * 1000000000},
	};
	uint64_t whole, frac, scale = 1, unit = 1000000000ull;
	int decimals;
	bool neg = *p++ == '-';
	if (!read_decimal(&p, &whole, &frac, &decimals))
		return "expected a decimal number (at most 9 decimals) after "
		       "the sign";
	if (*p && *p != ' ') {
		size_t i;
		for (i = 0; i < sizeof units / sizeof units[0]; i++)
			if (units[i].unit == *p)
				break;
		if (i == sizeof units / sizeof units[0])
			return "unknown unit (use s, m, h, d or y)";
		unit = units[i].ns;
		p++;
	}
	for (int i = 0; i < decimals; i++)
		scale *= 10;
	if (whole > (uint64_t)INT64_MAX / unit)
		return "offset out of range (about 292 years at most)";
	uint64_t ns = whole * unit;
	/* frac / scale units; scale <= 1e9 and unit <= 3.2e16: split the
	 * product to stay exact for seconds and in range for years. */
	uint64_t part = (unit / scale) * frac + (unit % scale) * frac / scale;
	if (part > (uint64_t)INT64_MAX - ns)
		return "offset out of range (about 292 years at most)";
	ft->offset = neg ? -(qc_duration)(ns + part) : (qc_duration)(ns + part);
	return parse_speed(p, &ft->speed);
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* Reads exactly width digits at *p into *v. */
static bool fixed_digits(const char **p, int width, int *v)
{
	*v = 0;
	for (int i = 0; i < width; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		*v = *v * 10 + (c - '0');
	}
	*p += width;
	return true;
}

static const char *parse_date(const char *p, qc_faketime *ft)
{
	/* "YYYY-MM-DD hh:mm:ss": digits and separators at fixed places. */
	if (!fixed_digits(&p, 4, &ft->year) || *p++ != '-' ||
	    !fixed_digits(&p, 2, &ft->month) || *p++ != '-' ||
	    !fixed_digits(&p, 2, &ft->day) || *p++ != ' ' ||
	    !fixed_digits(&p, 2, &ft->hour) || *p++ != ':' ||
	    !fixed_digits(&p, 2, &ft->minute) || *p++ != ':' ||
	    !fixed_digits(&p, 2, &ft->second))
		return "expected a date and time as 'YYYY-MM-DD hh:mm:ss'";
	if (ft->year < 1900 || ft->month < 1 || ft->month > 12)
		return "no such date (year 1900-9999, month 01-12)";
	if (ft->day < 1 || ft->day > days_in_month(ft->year, ft->month))
		return "no such day in that month";
	if (ft->hour > 23 || ft->minute > 59 || ft->second > 59)
		return "no such time of day (00:00:00 to 23:59:59)";
	if (ft->kind == QC_FAKETIME_FROZEN) {
		ft->speed = 0;
		return *p ? "a frozen time takes no speed (start it with '@' "
			    "to let it run)"
			  : NULL;
	}
	return parse_speed(p, &ft->speed);
}

int qc_faketime_parse(const char *spec, qc_faketime *out, char *err,
		      size_t errlen)
{
	qc_faketime ft;
	const char *why;
	if (!spec || !out)
		return parse_error(err, errlen, spec ? spec : "(null)",
				   "missing argument (NULL)");
	memset(&ft, 0, sizeof ft);
	if (spec[0] == '+' || spec[0] == '-') {
		ft.kind = QC_FAKETIME_OFFSET;
		why = parse_offset(spec, &ft);
	} else if (spec[0] == '@') {
		ft.kind = QC_FAKETIME_START;
		why = parse_date(spec + 1, &ft);
	} else if (spec[0] >= '0' && spec[0] <= '9') {
		ft.kind = QC_FAKETIME_FROZEN;
		why = parse_date(spec, &ft);
	} else {
		why = spec[0] ? "it must start with '+', '-', '@' or a date"
			      : "it is empty";
	}
	if (why)
		return parse_error(err, errlen, spec, why);
	*out = ft;
	return 0;
}

/* Writes v with at most 9 decimals, trailing zeros trimmed ("100", "0.5"). */
static void format_decimal(char *buf, size_t n, uint64_t whole, uint64_t nano)
{
	if (nano == 0) {
		snprintf(buf, n, "%llu", (unsigned long long)whole);
		return;
	}
	int width = 9;
	while (nano % 10 == 0) {
		nano /= 10;
		width--;
	}
	snprintf(buf, n, "%llu.%0*llu", (unsigned long long)whole, width,
		 (unsigned long long)nano);
}

static bool valid(const qc_faketime *ft)
{
	switch (ft->kind) {
	case QC_FAKETIME_OFFSET:
		return ft->speed > 0 && ft->speed <= MAX_SPEED;
	case QC_FAKETIME_START:
		if (!(ft->speed > 0 && ft->speed <= MAX_SPEED))
			return false;
		break;
	case QC_FAKETIME_FROZEN:
		break;
	default:
		return false;
	}
	return ft->year >= 1900 && ft->year <= 9999 && ft->month >= 1 &&
	       ft->month <= 12 && ft->day >= 1 &&
	       ft->day <= days_in_month(ft->year, ft->month) && ft->hour >= 0 &&
	       ft->hour <= 23 && ft->minute >= 0 && ft->minute <= 59 &&
	       ft->second >= 0 && ft->second <= 59;
}

int qc_faketime_format(const qc_faketime *ft, char *buf, size_t n)
{
	char when[48], speed[48] = "";
	if (!ft || !buf || !valid(ft))
		return EINVAL;
	if (ft->kind != QC_FAKETIME_FROZEN && ft->speed != 1.0) {
		/* Rounded to the 9 decimals the parser accepts; no libm. */
		uint64_t whole = (uint64_t)ft->speed;
		uint64_t nano =
		    (uint64_t)((ft->speed - (double)whole) * 1e9 + 0.5);
		if (nano >= 1000000000u) {
			whole += 1;
			nano = 0;
		}
		speed[0] = ' ';
		speed[1] = 'x';
		format_decimal(speed + 2, sizeof speed - 2, whole, nano);
	}
	if (ft->kind == QC_FAKETIME_OFFSET) {
		uint64_t u = ft->offset < 0 ? (uint64_t)0 - (uint64_t)ft->offset
					    : (uint64_t)ft->offset;
		when[0] = ft->offset < 0 ? '-' : '+';
		format_decimal(when + 1, sizeof when - 1, u / 1000000000u,
			       u % 1000000000u);
	} else {
		snprintf(when, sizeof when, "%s%04d-%02d-%02d %02d:%02d:%02d",
			 ft->kind == QC_FAKETIME_START ? "@" : "", ft->year,
			 ft->month, ft->day, ft->hour, ft->minute, ft->second);
	}
	int len = snprintf(buf, n, "%s%s", when, speed);
	if (len < 0 || (size_t)len >= n) {
		if (n)
			buf[0] = '\0';
		return ERANGE;
	}
	return 0;
}

/* Debian's multiarch directory for this build's architecture. */
#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH "i386-linux-gnu"
#else
#define MULTIARCH ""
#endif

int qc_faketime_library(char *path, size_t n)
{
	static const char *const candidates[] = {
	    "/usr/lib/" MULTIARCH "/faketime/libfaketimeMT.so.1",
	    "/usr/lib/faketime/libfaketimeMT.so.1",
	    "/usr/local/lib/faketime/libfaketimeMT.so.1",
	};
	if (!path)
		return EINVAL;
	const char *env = getenv("QC_FAKETIME_LIB");
	const char *found = NULL;
	if (env && *env) {
		if (access(env, R_OK) != 0) {
			int e = errno;
			fprintf(stderr,
				"quiesce: QC_FAKETIME_LIB=%s: %s (unset it to "
				"use the Debian package 'libfaketime')\n",
				env, strerror(e));
			return ENOENT;
		}
		found = env;
	}
	for (size_t i = 0; !found && i < sizeof candidates / sizeof *candidates;
	     i++)
		if (access(candidates[i], R_OK) == 0)
			found = candidates[i];
	if (!found) {
		fprintf(stderr,
			"quiesce: libfaketime not found (looked for %s): "
			"install the Debian package 'libfaketime'\n",
			candidates[0]);
		return ENOENT;
	}
	if ((size_t)snprintf(path, n, "%s", found) >= n)
		return ERANGE;
	return 0;
}
