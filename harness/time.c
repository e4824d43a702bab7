/*
 * time.c: Go-style duration text, both ways.
 *
 * The format matches Go's time.Duration.String() so that reports read the
 * same as Go's: "1h0m0.5s", "100ms", "1.5us", "0s". The parser accepts what
 * time.ParseDuration accepts (a sequence of decimal numbers with units).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <quiesce/time.h>

/* Writes v / 10^prec with trailing zeros trimmed ("1.5", "2", "0.001"). */
static int fmt_frac(char *buf, size_t n, uint64_t v, int prec)
{
	uint64_t scale = 1;
	for (int i = 0; i < prec; i++)
		scale *= 10;
	uint64_t whole = v / scale, frac = v % scale;
	if (frac == 0)
		return snprintf(buf, n, "%llu", (unsigned long long)whole);
	while (frac % 10 == 0) {
		frac /= 10;
		prec--;
	}
	return snprintf(buf, n, "%llu.%0*llu", (unsigned long long)whole, prec,
			(unsigned long long)frac);
}

char *qc_duration_format(qc_duration d, char *buf, size_t n)
{
	if (!buf || n == 0)
		return buf;
	const char *sign = d < 0 ? "-" : "";
	uint64_t u = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
	char num[48];

	if (u == 0) {
		snprintf(buf, n, "0s");
	} else if (u < 1000) {
		snprintf(buf, n, "%s%lluns", sign, (unsigned long long)u);
	} else if (u < 1000000) {
		fmt_frac(num, sizeof num, u, 3);
		snprintf(buf, n, "%s%sus", sign, num);
	} else if (u < 1000000000) {
		fmt_frac(num, sizeof num, u, 6);
		snprintf(buf, n, "%s%sms", sign, num);
	} else {
		uint64_t s = u / 1000000000, ns = u % 1000000000;
		uint64_t h = s / 3600, m = s / 60 % 60;
		fmt_frac(num, sizeof num, (s % 60) * 1000000000 + ns, 9);
		if (h)
			snprintf(buf, n, "%s%lluh%llum%ss", sign,
				 (unsigned long long)h, (unsigned long long)m,
				 num);
		else if (m)
			snprintf(buf, n, "%s%llum%ss", sign,
				 (unsigned long long)m, num);
		else
			snprintf(buf, n, "%s%ss", sign, num);
	}
	return buf;
}

static const struct unit {
	const char *name;
	uint64_t ns;
} units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign, as Go accepts */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", 60ull * 1000000000},
    {"h", 3600ull * 1000000000},
};

int qc_duration_parse(const char *s, qc_duration *out)
{
	if (!s || !out)
		return EINVAL;
	bool neg = false;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*s == '\0')
		return EINVAL;

	uint64_t total = 0;
	while (*s) {
		uint64_t whole = 0, frac = 0, fscale = 1;
		bool digits = false;
		while (*s >= '0' && *s <= '9') {
			if (whole > (UINT64_MAX - 9) / 10)
				return ERANGE;
			whole = whole * 10 + (uint64_t)(*s++ - '0');
			digits = true;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				if (fscale < 1000000000000000000ull) {
					frac = frac * 10 + (uint64_t)(*s - '0');
					fscale *= 10;
				}
				s++;
				digits = true;
			}
		}
		if (!digits)
			return EINVAL;
		const struct unit *u = NULL;
		size_t best = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t len = strlen(units[i].name);
			if (len > best && strncmp(s, units[i].name, len) == 0) {
				u = &units[i];
				best = len;
			}
		}
		if (!u)
			return EINVAL;
		s += best;
		if (whole > (uint64_t)INT64_MAX / u->ns)
			return ERANGE;
		uint64_t v = whole * u->ns;
		/* frac / fscale of a unit; u->ns <= 3.6e12 and fscale <= 1e18:
		 * scale down first to stay in range. */
		long double f = (long double)frac * (long double)u->ns /
				(long double)fscale;
		v += (uint64_t)f;
		if (v > (uint64_t)INT64_MAX - total)
			return ERANGE;
		total += v;
	}
	*out = neg ? -(qc_duration)total : (qc_duration)total;
	return 0;
}
