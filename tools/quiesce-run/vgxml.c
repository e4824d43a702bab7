/*
 * vgxml.c: a small reader for valgrind memcheck's --xml=yes output
 * (protocol version 4), enough for quiesce-run's verdict: the count of
 * non-leak errors and the bytes and blocks of each leak kind, plus the
 * first few of them for the report.
 *
 * The format is flat and machine-written (no attributes, no CDATA, no
 * comments inside <error>), so a scanner over <error>...</error> blocks is
 * enough; entities are decoded. A file cut short (valgrind was killed)
 * yields what it holds, with `complete` false.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#define MAX_XML (64u << 20) /* refuse absurd files rather than swap */

/* Copies the XML text between from and to into out (size n), decoding
 * the five predefined entities; truncates to fit. */
static void decode(const char *from, const char *to, char *out, size_t n)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'},
		    {"&lt;", '<'},
		    {"&gt;", '>'},
		    {"&quot;", '"'},
		    {"&apos;", '\''}};
	size_t k = 0;
	while (from < to && k + 1 < n) {
		char c = *from++;
		if (c == '&') {
			for (size_t i = 0; i < sizeof ents / sizeof *ents;
			     i++) {
				size_t len = strlen(ents[i].ent) - 1;
				if ((size_t)(to - from) >= len &&
				    strncmp(from, ents[i].ent + 1, len) == 0) {
					c = ents[i].c;
					from += len;
					break;
				}
			}
		}
		out[k++] = c;
	}
	out[k] = '\0';
}

/* Finds <tag>text</tag> in [p, end); decodes text into out. Returns the
 * position after the closing tag, or NULL. */
static const char *tag_text(const char *p, const char *end, const char *tag,
			    char *out, size_t n)
{
	char open[40], close[40];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *a = memmem(p, (size_t)(end - p), open, strlen(open));
	if (!a)
		return NULL;
	a += strlen(open);
	const char *b = memmem(a, (size_t)(end - a), close, strlen(close));
	if (!b)
		return NULL;
	decode(a, b, out, n);
	return b + strlen(close);
}

/* The first stack frame outside valgrind's preloads: "fn (file:line)". */
static void first_frame(const char *p, const char *end, char *out, size_t n)
{
	const char *f;
	out[0] = '\0';
	while ((f = memmem(p, (size_t)(end - p), "<frame>", 7)) != NULL) {
		const char *fe = memmem(f, (size_t)(end - f), "</frame>", 8);
		if (!fe)
			return;
		char obj[256] = "", fn[128] = "", file[128] = "", line[16] = "";
		tag_text(f, fe, "obj", obj, sizeof obj);
		tag_text(f, fe, "fn", fn, sizeof fn);
		tag_text(f, fe, "file", file, sizeof file);
		tag_text(f, fe, "line", line, sizeof line);
		p = fe + 8;
		if (strstr(obj, "vgpreload") || !fn[0])
			continue;
		if (file[0])
			snprintf(out, n, "%s (%s:%s)", fn, file, line);
		else
			snprintf(out, n, "%s", fn);
		return;
	}
}

static void add_error(struct qr_vg *vg, const char *p, const char *end)
{
	char kind[48] = "", what[256] = "", num[32];
	long long bytes = 0, blocks = 0;
	tag_text(p, end, "kind", kind, sizeof kind);
	if (!tag_text(p, end, "what", what, sizeof what))
		tag_text(p, end, "text", what, sizeof what);
	if (tag_text(p, end, "leakedbytes", num, sizeof num))
		bytes = atoll(num);
	if (tag_text(p, end, "leakedblocks", num, sizeof num))
		blocks = atoll(num);

	if (strcmp(kind, "Leak_DefinitelyLost") == 0) {
		vg->definite_bytes += bytes;
		vg->definite_blocks += blocks;
	} else if (strcmp(kind, "Leak_IndirectlyLost") == 0) {
		vg->indirect_bytes += bytes;
		vg->indirect_blocks += blocks;
	} else if (strcmp(kind, "Leak_PossiblyLost") == 0) {
		vg->possible_bytes += bytes;
		vg->possible_blocks += blocks;
	} else if (strncmp(kind, "Leak_", 5) == 0) {
		return; /* still reachable: not listed, not a failure */
	} else {
		vg->errors++;
	}
	if (vg->nlisted < sizeof vg->listed / sizeof vg->listed[0]) {
		struct qr_vg_error *e = &vg->listed[vg->nlisted++];
		snprintf(e->kind, sizeof e->kind, "%s", kind);
		snprintf(e->what, sizeof e->what, "%s", what);
		first_frame(p, end, e->where, sizeof e->where);
	}
}

int qr_vg_parse(const char *path, struct qr_vg *vg)
{
	memset(vg, 0, sizeof *vg);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno;
	long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return EIO;
	}
	if ((unsigned long)size > MAX_XML)
		size = MAX_XML;
	char *buf = malloc((size_t)size + 1);
	if (!buf) {
		fclose(f);
		return ENOMEM;
	}
	size_t len = fread(buf, 1, (size_t)size, f);
	fclose(f);
	buf[len] = '\0';
	const char *p = buf, *end = buf + len;
	const char *e;
	while ((e = memmem(p, (size_t)(end - p), "<error>", 7)) != NULL) {
		const char *close = memmem(e, (size_t)(end - e), "</error>", 8);
		if (!close)
			break; /* cut short */
		add_error(vg, e, close);
		p = close + 8;
	}
	vg->parsed = true;
	vg->complete = memmem(buf, len, "</valgrindoutput>", 17) != NULL;
	free(buf);
	return 0;
}
