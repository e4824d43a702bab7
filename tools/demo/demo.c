/*
 * demo.c: quiesce's demo. Runs every example of the catalogue
 * (suites/examples) in its BAD and GOOD version, prints quiesce's report
 * for each BAD one as a user would see it in a failing test, then a table:
 * example, bug, caught, GOOD passed, real and virtual time. Exits 0 only
 * when every BAD version was caught and every GOOD one passed.
 *
 *   quiesce-demo [-q] [name...]     -q: the table only
 */
#include <stdio.h>
#include <string.h>

#include "example.h"

static bool wanted(const char *name, int argc, char **argv)
{
	bool any = false;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		any = true;
		if (strcmp(argv[i], name) == 0)
			return true;
	}
	return !any;
}

int main(int argc, char **argv)
{
	bool quiet = argc > 1 && strcmp(argv[1], "-q") == 0;
	struct row {
		const qc_example *ex;
		bool caught, good_ok;
		ex_verdict bad, good;
	} rows[32];
	int n = 0, failures = 0, caught = 0, good = 0;

	for (int i = 0; ex_catalogue[i] && n < 32; i++) {
		const qc_example *ex = ex_catalogue[i];
		if (!wanted(ex->name, argc, argv))
			continue;
		struct row *r = &rows[n++];
		r->ex = ex;
		r->caught = ex_run(ex, true, &r->bad);
		r->good_ok = !ex_run(ex, false, &r->good);
		failures += !r->caught + !r->good_ok;
		caught += r->caught;
		good += r->good_ok;
		if (quiet)
			continue;
		printf("==== %s: %s (BAD version)\n", ex->name, ex->bug);
		if (r->bad.note[0])
			printf("scenario: %s\n", r->bad.note);
		printf("%s\n", r->bad.report[0] ? r->bad.report
						: "(quiesce reported nothing)");
		if (!r->good_ok)
			printf("GOOD version flagged too:\n%s\n",
			       r->good.report);
	}

	printf("%-16s %-48s %-6s %-6s %10s %10s\n", "example", "bug", "caught",
	       "good", "real", "virtual");
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		char real[32], virt[32];
		qc_duration_format(r->bad.real + r->good.real, real,
				   sizeof real);
		qc_duration_format(r->bad.virt + r->good.virt, virt,
				   sizeof virt);
		printf("%-16s %-48s %-6s %-6s %10s %10s\n", r->ex->name,
		       r->ex->bug, r->caught ? "yes" : "NO",
		       r->good_ok ? "pass" : "FAIL", real, virt);
		ex_verdict_free(&r->bad);
		ex_verdict_free(&r->good);
	}
	printf("%d examples: %d BAD versions caught, %d GOOD versions "
	       "passed\n",
	       n, caught, good);
	return failures ? 1 : 0;
}
