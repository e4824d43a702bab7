/*
 * sym.c: symbols for reports through elfutils libdwfl (see stack.h).
 *
 * One cached Dwfl for the process (sym_mu), built lazily from
 * /proc/<pid>/maps, rebuilt when the pid changes (a forked child), and
 * re-reported when the dynamic loader's load/unload counters moved since
 * (dlopen, dlclose) or, once per call, when an address lies outside every
 * module (an ELF file mapped by other means). Separate debug files are looked
 * up by build id on the local disk only: a test harness must never wait on
 * debuginfod's network. Inlined functions come from the DWARF scopes at an
 * address: the out-of-line function through a per-CU index by address (a
 * few CUs cached, dropped with every re-report), then the inlined
 * instances nested in it.
 *
 * Lock order: sym_mu is a leaf.
 */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "stack.h"

static pthread_mutex_t sym_mu = QC_MUTEX_INIT;
static Dwfl *sym_dwfl;		     /* sym_mu */
static pid_t sym_pid;		     /* the process sym_dwfl describes */
static unsigned long long sym_loads; /* dlpi_adds + dlpi_subs reported */
static bool sym_atexit;		     /* qc__stack_shutdown registered */

/* Separate debug files by build id under the local debug directories
 * only (Debian's -dbgsym packages); never debuginfod. */
static const Dwfl_Callbacks sym_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
};

/* One out-of-line function's code in a CU index. */
struct fn_range {
	Dwarf_Addr low, high; /* [low, high), addresses as in the CU */
	Dwarf_Off die;	      /* its DW_TAG_subprogram */
};

/* The out-of-line functions of one CU by address, so that finding the
 * function at an address is a binary search, not a walk over every DIE
 * of the CU (a millisecond in a CU of a few thousand functions). A few
 * CUs are kept (sym_mu); all are dropped whenever sym_dwfl is re-reported
 * or ended, since a module dropped takes its Dwarf_CU with it. */
#define CU_CACHE 8
static struct cu_index {
	Dwarf_CU *cu;	     /* NULL: a free slot */
	struct fn_range *fn; /* sorted by low */
	size_t n;
} sym_cus[CU_CACHE];
static unsigned sym_cu_next; /* the slot to reuse next */

/* Drops every CU index: freed, or only forgotten (a forked child's copy
 * that may be half-built). Under sym_mu. */
static void cu_cache_drop(bool free_them)
{
	for (int i = 0; i < CU_CACHE; i++) {
		if (free_them)
			qc__free(sym_cus[i].fn);
		sym_cus[i] = (struct cu_index){NULL, NULL, 0};
	}
	sym_cu_next = 0;
}

void qc__sym_after_fork_child(void)
{
	if (pthread_mutex_trylock(&sym_mu) == 0) {
		pthread_mutex_unlock(&sym_mu);
		return;
	}
	pthread_mutex_t fresh = QC_MUTEX_INIT;
	memcpy(&sym_mu, &fresh, sizeof fresh);
	sym_dwfl = NULL; /* possibly half-updated: leaked on purpose */
	cu_cache_drop(false);
}

static void sym_lock(void)
{
	int e = pthread_mutex_lock(&sym_mu);
	QC_ASSERT(e == 0);
}

static void sym_unlock(void)
{
	int e = pthread_mutex_unlock(&sym_mu);
	QC_ASSERT(e == 0);
}

static int count_loads_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *n = arg;
	if (size >=
	    offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
		*n = info->dlpi_adds + info->dlpi_subs;
	return 1; /* the counters are the same in every entry */
}

/* How many times the dynamic loader has loaded or unloaded an object:
 * when it changes, the module list is stale. */
static unsigned long long count_loads(void)
{
	unsigned long long n = 0;
	dl_iterate_phdr(count_loads_cb, &n);
	return n;
}

/* (Re)reports the process's mappings. Modules reported again keep their
 * cached data; those gone (dlclose'd) are dropped. */
static int sym_report(Dwfl *d)
{
	cu_cache_drop(true);
	sym_loads = count_loads();
	dwfl_report_begin(d);
	int e = dwfl_linux_proc_report(d, getpid());
	if (dwfl_report_end(d, NULL, NULL) != 0 && e == 0)
		e = EIO;
	return e;
}

/* The cached Dwfl (under sym_mu), built on first use; NULL if libdwfl
 * cannot describe this process. */
static Dwfl *sym_get(void)
{
	pid_t pid = getpid();
	if (sym_dwfl && sym_pid != pid) {
		cu_cache_drop(true);
		dwfl_end(sym_dwfl);
		sym_dwfl = NULL;
	}
	if (sym_dwfl) {
		/* A stale list can credit a new library's addresses to an
		 * old neighbour, so refresh as soon as the loader moved. */
		if (count_loads() != sym_loads)
			(void)sym_report(sym_dwfl);
		return sym_dwfl;
	}
	Dwfl *d = dwfl_begin(&sym_callbacks);
	if (!d)
		return NULL;
	if (sym_report(d) != 0) {
		dwfl_end(d);
		return NULL;
	}
	sym_dwfl = d;
	sym_pid = pid;
	if (!sym_atexit && atexit(qc__stack_shutdown) == 0)
		sym_atexit = true;
	return d;
}

/* The most functions one address is shown through: the innermost inlined
 * function, the functions it was inlined into, and the function the
 * symbol names. Deeper inline chains are cut at the innermost ones. */
#define SYM_LEVELS 16

/* One function an address lies in. Strings point into the Dwfl (valid
 * while sym_mu is held and the Dwfl is not refreshed). */
struct sym_level {
	const char *func; /* name, or NULL */
	const char *file; /* source basename, or NULL */
	const char *path; /* source path as in the debug info, or NULL */
	int line;	  /* with file: its line */
	bool inlined;	  /* an inlined instance, not the symbol's function */
};

/* What one address resolves to. lv[0] is the innermost function, with the
 * address's own line; each further level is the function the previous one
 * was inlined into, at the line of that inlined call; lv[n - 1] is the
 * out-of-line function the ELF symbol names (unless the chain was cut).
 * Without inlining, or without debug information, n is 1. */
struct sym {
	struct sym_level lv[SYM_LEVELS];
	int n;		    /* levels in lv, >= 1 */
	const char *symbol; /* ELF symbol, or NULL */
	const char *mod;    /* module basename, or NULL outside every module */
	uintptr_t off;	    /* module-relative offset of the address */
	bool entry;	    /* the address is its symbol's first byte */
};

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* A DIE's name, through DW_AT_abstract_origin and DW_AT_specification
 * (an inlined instance carries no name of its own). NULL when it has none. */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	return dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
}

/* Fills level lv with the call site of the inlined instance die: its
 * DW_AT_call_file (an index into cu's file table) and DW_AT_call_line. */
static void call_site(Dwarf_Die *cu, Dwarf_Die *die, Dwarf_Files **files,
		      size_t *nfiles, struct sym_level *lv)
{
	Dwarf_Attribute a;
	Dwarf_Word fi, line;
	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &fi) != 0 ||
	    dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &line) != 0 ||
	    line == 0 || line > INT_MAX)
		return;
	if (!*files && dwarf_getsrcfiles(cu, files, nfiles) != 0) {
		*files = NULL;
		return;
	}
	const char *f =
	    fi < *nfiles ? dwarf_filesrc(*files, fi, NULL, NULL) : NULL;
	if (!f)
		return;
	lv->path = f;
	lv->file = base_name(f);
	lv->line = (int)line;
}

/* Whether the inlined instance die is GCC's partial inlining of a function
 * into its own out-of-line copy (an IPA split): it bears the name of the
 * function-like scope next enclosing it, next, and is "called" from that
 * function's declaration line. Such a level says nothing and is left out;
 * a true recursive call inlined into itself is called from its body. */
static bool self_inline(Dwarf_Die *die, Dwarf_Die *next)
{
	const char *a = die_name(die), *b = die_name(next);
	Dwarf_Attribute at;
	Dwarf_Word call;
	int decl;
	return a && b && strcmp(a, b) == 0 &&
	       dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &at), &call) ==
		   0 &&
	       dwarf_decl_line(die, &decl) == 0 && call == (Dwarf_Word)decl;
}

static bool is_function(Dwarf_Die *die)
{
	int tag = dwarf_tag(die);
	return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram;
}

/* The deepest nest of functions inlined into each other looked at; a
 * deeper one (no compiler makes it) is shown as if nothing were inlined. */
#define SCOPE_MAX 64

/* Finds among die's children the scope (function, inlined instance or
 * block) whose code contains pc, looking into namespaces on the way.
 * Scopes that do not contain pc are skipped whole (DW_AT_sibling), so a
 * search costs the siblings on the path, not the whole CU. */
static bool scope_at(Dwarf_Die *die, Dwarf_Addr pc, Dwarf_Die *out, int nest)
{
	Dwarf_Die c;
	if (dwarf_child(die, &c) != 0)
		return false;
	do {
		switch (dwarf_tag(&c)) {
		case DW_TAG_subprogram:
		case DW_TAG_inlined_subroutine:
		case DW_TAG_lexical_block:
		case DW_TAG_try_block:
		case DW_TAG_catch_block:
			if (dwarf_haspc(&c, pc) > 0) {
				*out = c;
				return true;
			}
			break;
		case DW_TAG_namespace:
		case DW_TAG_module:
			if (nest < 8 && scope_at(&c, pc, out, nest + 1))
				return true;
			break;
		default:
			break;
		}
	} while (dwarf_siblingof(&c, &c) == 0);
	return false;
}

/* Appends the code ranges of the out-of-line functions among die's
 * children (and inside namespaces) to x. Returns false when out of
 * memory. */
static bool collect_fns(Dwarf_Die *die, struct cu_index *x, size_t *cap,
			int nest)
{
	Dwarf_Die c;
	if (dwarf_child(die, &c) != 0)
		return true;
	do {
		int tag = dwarf_tag(&c);
		if ((tag == DW_TAG_namespace || tag == DW_TAG_module) &&
		    nest < 8) {
			if (!collect_fns(&c, x, cap, nest + 1))
				return false;
			continue;
		}
		if (tag != DW_TAG_subprogram)
			continue;
		Dwarf_Addr base, low, high;
		ptrdiff_t off = 0;
		while ((off = dwarf_ranges(&c, off, &base, &low, &high)) > 0) {
			if (x->n == *cap) {
				size_t ncap = *cap ? 2 * *cap : 64;
				void *p =
				    qc__realloc(x->fn, ncap * sizeof *x->fn);
				if (!p)
					return false;
				x->fn = p;
				*cap = ncap;
			}
			x->fn[x->n++] =
			    (struct fn_range){low, high, dwarf_dieoffset(&c)};
		}
	} while (dwarf_siblingof(&c, &c) == 0);
	return true;
}

static int fn_range_cmp(const void *a, const void *b)
{
	const struct fn_range *x = a, *y = b;
	return x->low < y->low ? -1 : x->low > y->low;
}

/* The index of cu, built on first use. NULL when out of memory. Under
 * sym_mu. */
static struct cu_index *cu_index_of(Dwarf_Die *cu)
{
	for (int i = 0; i < CU_CACHE; i++)
		if (sym_cus[i].cu == cu->cu)
			return &sym_cus[i];
	struct cu_index *x = &sym_cus[sym_cu_next];
	sym_cu_next = (sym_cu_next + 1) % CU_CACHE;
	qc__free(x->fn);
	*x = (struct cu_index){NULL, NULL, 0};
	size_t cap = 0;
	if (!collect_fns(cu, x, &cap, 0)) {
		qc__free(x->fn);
		*x = (struct cu_index){NULL, NULL, 0};
		return NULL;
	}
	if (x->n > 1)
		qsort(x->fn, x->n, sizeof *x->fn, fn_range_cmp);
	x->cu = cu->cu;
	return x;
}

/* The out-of-line function (DW_TAG_subprogram) of cu whose code contains
 * pc, into *out. */
static bool function_at(Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *out)
{
	struct cu_index *x = cu_index_of(cu);
	if (!x) /* out of memory: the slow way */
		return scope_at(cu, pc, out, 0) &&
		       dwarf_tag(out) == DW_TAG_subprogram;
	size_t lo = 0, hi = x->n; /* the first range with low > pc */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x->fn[mid].low <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || pc >= x->fn[lo - 1].high)
		return false;
	Dwarf *dbg = dwarf_cu_getdwarf(cu->cu);
	return dbg && dwarf_offdie(dbg, x->fn[lo - 1].die, out) != NULL;
}

/* Splits s's single level into the chain of inlined functions at look
 * (a module address, in cu with bias), from the debug information: the
 * function-like scopes that contain look, from the out-of-line function down to
 * the innermost inlined instance. (dwarf_getscopes is no help here: from an
 * inlined instance it climbs to the abstract definition's scopes, walking
 * the whole CU to find them, as dwarf_getscopes_die does: milliseconds in
 * a large CU.) Leaves s alone without debug information or inlining.
 * Under sym_mu. */
/* The CU that holds address look of m, or NULL. libdw finds it through
 * .debug_aranges, which clang does not emit by default: then every CU's
 * own ranges are asked in turn (slower, but only for such modules). */
static Dwarf_Die *cu_at(Dwfl_Module *m, Dwarf_Addr look, Dwarf_Addr *bias)
{
	Dwarf_Die *cu = dwfl_module_addrdie(m, look, bias);
	if (cu)
		return cu;
	while ((cu = dwfl_module_nextcu(m, cu, bias)) != NULL)
		if (dwarf_haspc(cu, look - *bias) > 0)
			return cu;
	return NULL;
}

static void sym_inlines(Dwarf_Die *cu, Dwarf_Addr bias, Dwarf_Addr look,
			struct sym *s)
{
	Dwarf_Die fn[SCOPE_MAX], at, next;
	if (!function_at(cu, look - bias, &fn[0]))
		return;
	int nf = 1;
	at = fn[0];
	while (scope_at(&at, look - bias, &next, 0)) {
		if (is_function(&next)) {
			if (nf == SCOPE_MAX)
				return;
			fn[nf++] = next;
		}
		at = next;
	}
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	for (int k = nf - 1; k > 0; k--) {
		if (self_inline(&fn[k], &fn[k - 1]))
			continue;
		struct sym_level *cur = &s->lv[s->n - 1];
		cur->func = die_name(&fn[k]);
		cur->inlined = true;
		if (s->n == SYM_LEVELS)
			return; /* cut: the outer functions are not shown */
		struct sym_level *up = &s->lv[s->n++];
		memset(up, 0, sizeof *up);
		up->func = s->symbol;
		call_site(cu, &fn[k], &files, &nfiles, up);
	}
	/* The out-of-line function keeps the symbol's name, which is what the
	 * linker and the reader know; the DIE's only without a symbol. */
	struct sym_level *top = &s->lv[s->n - 1];
	if (!top->func)
		top->func = die_name(&fn[0]);
}

/* Looks up addr (exact: as is; else as a return address, addr - 1). May
 * re-report the mappings once per *refreshed. Under sym_mu. */
static void sym_lookup(Dwfl *d, uintptr_t addr, bool exact, bool *refreshed,
		       struct sym *s)
{
	memset(s, 0, sizeof *s);
	s->n = 1;
	Dwarf_Addr look = exact || addr == 0 ? addr : addr - 1;
	Dwfl_Module *m = dwfl_addrmodule(d, look);
	if (!m && !*refreshed) {
		*refreshed = true;
		(void)sym_report(d);
		m = dwfl_addrmodule(d, look);
	}
	if (!m)
		return;
	const char *modname =
	    dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	s->mod = modname ? base_name(modname) : "?";
	GElf_Off symoff = 0;
	GElf_Sym elfsym;
	s->symbol =
	    dwfl_module_addrinfo(m, look, &symoff, &elfsym, NULL, NULL, NULL);
	s->entry = s->symbol && symoff == 0;
	s->lv[0].func = s->symbol;
	/* The CU once, for the line and the inline chain: the line from its
	 * own table (dwfl_module_getsrc would look the CU up again, and
	 * finds none without .debug_aranges). */
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = cu_at(m, look, &bias);
	Dwarf_Line *dl = cu ? dwarf_getsrc_die(cu, look - bias) : NULL;
	const char *f = dl ? dwarf_linesrc(dl, NULL, NULL) : NULL;
	int line = 0;
	if (f && dwarf_lineno(dl, &line) == 0 && line > 0) {
		s->lv[0].file = base_name(f);
		s->lv[0].path = f;
		s->lv[0].line = line;
	}
	if (cu)
		sym_inlines(cu, bias, look, s);
	Dwarf_Addr rel = look;
	if (dwfl_module_relocate_address(m, &rel) < 0)
		rel = look;
	s->off = (uintptr_t)rel + (uintptr_t)(addr - look);
}

/* The function the address is in, as a reader names it: the innermost
 * (inlined) one, or for an entry address (a start routine) the symbol's
 * own function, at the line where its first instruction's inlined code is
 * called from. */
static const struct sym_level *sym_named(const struct sym *s)
{
	return s->entry ? &s->lv[s->n - 1] : &s->lv[0];
}

/* Appends frame a's lines, numbered from i: one per level from level
 * from on, the inlined ones marked. Returns how many lines it wrote.
 * Under sym_mu. */
static int format_frame(const struct sym *s, uintptr_t a, int from, int i,
			qc__buf *out, const char *indent)
{
	if (from > s->n - 1)
		from = s->n - 1;
	for (int k = from; k < s->n - 1; k++, i++) {
		const struct sym_level *lv = &s->lv[k];
		const char *fn = lv->func ? lv->func : "??";
		if (lv->file)
			qc__buf_printf(out, "%s#%d %s  %s:%d (inlined)\n",
				       indent, i, fn, lv->file, lv->line);
		else
			qc__buf_printf(out, "%s#%d %s (inlined)\n", indent, i,
				       fn);
	}
	const struct sym_level *lv = &s->lv[s->n - 1];
	if (lv->func && lv->file)
		qc__buf_printf(out, "%s#%d %s  %s:%d%s\n", indent, i, lv->func,
			       lv->file, lv->line,
			       lv->inlined ? " (inlined)" : "");
	else if (lv->func)
		qc__buf_printf(out, "%s#%d %s (%s)\n", indent, i, lv->func,
			       s->mod);
	else if (s->mod && lv->file)
		qc__buf_printf(out, "%s#%d %s+0x%" PRIxPTR "  %s:%d\n", indent,
			       i, s->mod, s->off, lv->file, lv->line);
	else if (s->mod)
		qc__buf_printf(out, "%s#%d %s+0x%" PRIxPTR "\n", indent, i,
			       s->mod, s->off);
	else
		qc__buf_printf(out, "%s#%d 0x%" PRIxPTR "\n", indent, i, a);
	return s->n - from;
}

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether a frame is quiesce's own code: the source of its out-of-line
 * function lies beside this file (any link: static, shared, installed),
 * or, without line information, it is in libquiesce or its symbol bears
 * the library's qc_ prefix. */
static bool frame_is_quiesce(const struct sym *s)
{
	static const char here[] = __FILE__;
	const char *slash = strrchr(here, '/');
	size_t dir = slash ? (size_t)(slash - here) + 1 : 0;
	const char *path = s->lv[s->n - 1].path;
	if (path && dir && strncmp(path, here, dir) == 0)
		return true;
	return starts_with(s->mod, "libquiesce") ||
	       starts_with(s->symbol, "qc_");
}

/* The C library, the loader, the unwinder and the sanitizer runtimes: what
 * lies between a blocked thread's pc and the call it made. */
static bool frame_is_system(const struct sym *s)
{
	static const char *const mods[] = {
	    "libc.so",	"libpthread", "ld-linux",   "linux-vdso", "libgcc_s",
	    "libasan",	"libtsan",    "liblsan",    "libubsan",	  "libm.so",
	    "librt.so", "vgpreload",  "libfaketime"};
	for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++)
		if (starts_with(s->mod, mods[i]))
			return true;
	return false;
}

/* Where a thread's own code ends: the frames that start a thread or the
 * process. */
static bool frame_is_start(const struct sym *s)
{
	static const char *const fns[] = {
	    "start_thread",	      "__clone3",	   "__clone", "clone",
	    "__libc_start_call_main", "__libc_start_main", "_start"};
	for (size_t i = 0; s->symbol && i < sizeof fns / sizeof fns[0]; i++)
		if (strcmp(s->symbol, fns[i]) == 0)
			return true;
	return false;
}

void qc__stack_format(void *const *frames, int n, qc__buf *out,
		      const char *indent)
{
	if (!out || !frames || n <= 0)
		return;
	if (!indent)
		indent = "";
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false;
	for (int i = 0, k = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)frames[i];
		struct sym s;
		if (d) {
			sym_lookup(d, a, i == 0, &refreshed, &s);
		} else {
			memset(&s, 0, sizeof s);
			s.n = 1;
		}
		k += format_frame(&s, a, 0, k, out, indent);
	}
	sym_unlock();
}

void qc__stack_format_user(void *const *frames, int n, qc__buf *out,
			   const char *indent)
{
	if (!out || !frames || n <= 0)
		return;
	const char *full = getenv("QC_STACK_FULL");
	sym_lock();
	Dwfl *d = sym_get();
	if (!d || (full && *full && strcmp(full, "0") != 0)) {
		sym_unlock();
		qc__stack_format(frames, n, out, indent);
		return;
	}
	if (!indent)
		indent = "";
	bool refreshed = false;
	struct sym s;
	/* From the top: the libc and quiesce frames above the call the
	 * thread's own code made (into quiesce, else into the C library);
	 * that call shows as frame #0. */
	int first = 0, last_system = -1;
	bool in_quiesce = false;
	for (int i = 0; i < n; i++) {
		sym_lookup(d, (uintptr_t)frames[i], i == 0, &refreshed, &s);
		if (frame_is_quiesce(&s)) {
			first = i;
			in_quiesce = true;
		} else if (frame_is_system(&s)) {
			last_system = i;
		} else {
			break;
		}
	}
	if (!in_quiesce && last_system >= 0)
		first = last_system;
	for (int i = first, k = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)frames[i];
		sym_lookup(d, a, i == 0, &refreshed, &s);
		/* Below the thread's own code: quiesce's trampolines, then
		 * the C library's thread start. */
		if (i > first && (frame_is_quiesce(&s) || frame_is_start(&s)))
			break;
		/* In the quiesce or libc call, only the function the code
		 * called: not the helpers inlined into it. */
		int from = i == first && (in_quiesce || last_system >= 0)
			       ? s.n - 1
			       : 0;
		k += format_frame(&s, a, from, k, out, indent);
	}
	sym_unlock();
}

bool qc__stack_libc_call(void *const *frames, int n, char *out, size_t len)
{
	if (!frames || n <= 0 || !out || len == 0)
		return false;
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false, found = false, below = false;
	struct sym s;
	for (int i = 0; d && i < n; i++) {
		sym_lookup(d, (uintptr_t)frames[i], i == 0, &refreshed, &s);
		if (!frame_is_system(&s) || frame_is_quiesce(&s)) {
			below = true;
			break;
		}
		if (!s.symbol)
			continue;
		/* "pthread_cond_wait@@GLIBC_2.3.2", "___pthread_mutex_lock",
		 * "__GI___lll_lock_wait": the name a caller would write. */
		const char *nm = s.symbol;
		if (strncmp(nm, "__GI_", 5) == 0)
			nm += 5;
		while (*nm == '_')
			nm++;
		size_t at = strcspn(nm, "@");
		snprintf(out, len, "%.*s", (int)at, nm);
		found = at > 0;
	}
	sym_unlock();
	/* Only a call seen made from the thread's own code is named: a
	 * one-frame stack (/proc, under TSan) ends inside the library. */
	return found && below;
}

void qc__symbolize_fn(const void *fn, char *out, size_t n)
{
	if (!out || n == 0)
		return;
	uintptr_t a = (uintptr_t)fn;
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false;
	struct sym s;
	if (d && a) {
		sym_lookup(d, a, true, &refreshed, &s);
	} else {
		memset(&s, 0, sizeof s);
		s.n = 1;
	}
	const struct sym_level *lv = sym_named(&s);
	if (lv->func && lv->file)
		snprintf(out, n, "%s (%s:%d)", lv->func, lv->file, lv->line);
	else if (lv->func)
		snprintf(out, n, "%s (%s)", lv->func, s.mod);
	else if (s.mod)
		snprintf(out, n, "%s+0x%" PRIxPTR, s.mod, s.off);
	else
		snprintf(out, n, "0x%" PRIxPTR, a);
	sym_unlock();
}

bool qc__symbol_name(const void *addr, char *out, size_t n)
{
	if (!out || n == 0 || !addr)
		return false;
	bool found = false;
	sym_lock();
	Dwfl *d = sym_get();
	bool refreshed = false;
	struct sym s;
	if (d) {
		sym_lookup(d, (uintptr_t)addr, true, &refreshed, &s);
		const struct sym_level *lv = sym_named(&s);
		if (lv->func) {
			snprintf(out, n, "%s", lv->func);
			found = true;
		}
	}
	sym_unlock();
	return found;
}

void qc__stack_shutdown(void)
{
	sym_lock();
	/* In a forked child this frees the child's copy: fine. */
	cu_cache_drop(true);
	if (sym_dwfl)
		dwfl_end(sym_dwfl);
	sym_dwfl = NULL;
	sym_atexit = false;
	sym_unlock();
}
