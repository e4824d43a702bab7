/*
 * faketime_child.c: preparing one child process to run under libfaketime
 * (quiesce/faketime.h): its timestamp file, its environment, the ASan
 * ordering of LD_PRELOAD, and the /dev/shm files libfaketime leaves behind.
 *
 * Invariants: the timestamp file always holds a complete spec (it is
 * replaced by rename, never rewritten in place), and it lives in the
 * directory the caller chose: a directory that cannot be written is an
 * error, never a silent fallback elsewhere. A handle owns its file and its
 * environment strings; nothing is shared between handles except an atomic
 * counter that keeps file names unique within the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <quiesce/faketime.h>

#include "alloc.h"
#include "annotate.h"

extern char **environ;

struct qc_faketime_child {
	char *file;  /* the timestamp file; owned, removed at free */
	char **envp; /* NULL-terminated; every string owned */
};

static _Atomic unsigned long file_seq; /* unique names within the process */

/* ------------------------------------------------------------ ELF reading */

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static bool elf_ok;

static void elf_init(void)
{
	elf_ok = elf_version(EV_CURRENT) != EV_NONE;
	QC_ANN_ONCE_DONE(&elf_once);
}

static bool is_asan_runtime(const char *name)
{
	return strncmp(name, "libasan.so", 10) == 0 ||
	       strncmp(name, "libclang_rt.asan", 16) == 0;
}

/* Scans the DT_NEEDED entries of the open ELF file e for an asan runtime. */
static int scan_needed(Elf *e, char *soname, size_t n)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC ||
		    sh.sh_entsize == 0)
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize;
		     i++) {
			GElf_Dyn dyn;
			if (!gelf_getdyn(data, (int)i, &dyn) ||
			    dyn.d_tag != DT_NEEDED)
				continue;
			const char *name =
			    elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
			if (!name || !is_asan_runtime(name))
				continue;
			return (size_t)snprintf(soname, n, "%s", name) < n
				   ? 0
				   : ERANGE;
		}
	}
	return ENOENT;
}

int qc_faketime_asan_runtime(const char *program, char *soname, size_t n)
{
	if (!program || !soname || n == 0)
		return EINVAL;
	QC_ONCE(&elf_once, elf_init);
	if (!elf_ok)
		return ENOEXEC;
	int fd = open(program, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int rc = ENOEXEC;
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (e && elf_kind(e) == ELF_K_ELF)
		rc = scan_needed(e, soname, n);
	elf_end(e);
	close(fd);
	return rc;
}

/* Resolves program through PATH as execvp would; a copy (qc__free) or NULL
 * when not found, or out of memory (then *oom is set). */
static char *resolve_program(const char *program, bool *oom)
{
	if (strchr(program, '/')) {
		char *copy = qc__strdup(program);
		*oom = !copy;
		return copy;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	size_t plen = strlen(program);
	while (*path) {
		size_t dlen = strcspn(path, ":");
		char *cand = qc__malloc(dlen + plen + 3);
		if (!cand) {
			*oom = true;
			return NULL;
		}
		snprintf(cand, dlen + plen + 3, "%.*s/%s", (int)dlen,
			 dlen ? path : ".", program);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cand, X_OK) == 0)
			return cand;
		qc__free(cand);
		path += dlen + (path[dlen] == ':');
	}
	return NULL;
}

/* ------------------------------------------------------- timestamp file */

/* Writes spec to path atomically: tmp in the same directory, then rename.
 * Returns 0 or errno. */
static int write_atomically(const char *path, const char *spec)
{
	size_t len = strlen(path) + 8;
	char *tmp = qc__malloc(len);
	if (!tmp)
		return ENOMEM;
	snprintf(tmp, len, "%s.tmp", path);
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = errno;
		goto out;
	}
	size_t want = strlen(spec);
	ssize_t w = write(fd, spec, want);
	if (w < 0 || (size_t)w != want || write(fd, "\n", 1) != 1)
		rc = w < 0 ? errno : EIO;
	if (close(fd) != 0 && rc == 0)
		rc = errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = errno;
	if (rc != 0)
		unlink(tmp);
out:
	qc__free(tmp);
	return rc;
}

/* ------------------------------------------------------------ environment */

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Variables the child must not inherit: a FAKETIME wins over the file,
 * DONT_FAKE_MONOTONIC breaks monotonic timed waits, and the rest are set
 * here. */
static bool dropped(const char *var)
{
	static const char *const names[] = {
	    "FAKETIME=",
	    "FAKETIME_DONT_FAKE_MONOTONIC=",
	    "FAKETIME_TIMESTAMP_FILE=",
	    "FAKETIME_NO_CACHE=",
	    "LD_PRELOAD=",
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (has_prefix(var, names[i]))
			return true;
	return false;
}

/* Appends the entries of list (':' or ' ' separated) that are (asan) or are
 * not (!asan) asan runtimes, skipping lib, to out (size n). */
static void append_preloads(char *out, size_t n, const char *list, bool asan,
			    const char *lib)
{
	while (list && *list) {
		size_t len = strcspn(list, ": ");
		char item[512];
		if (len > 0 && len < sizeof item) {
			memcpy(item, list, len);
			item[len] = '\0';
			const char *base = strrchr(item, '/');
			base = base ? base + 1 : item;
			if (is_asan_runtime(base) == asan &&
			    strcmp(item, lib) != 0) {
				size_t used = strlen(out);
				snprintf(out + used, n - used, "%s%s",
					 used ? ":" : "", item);
			}
		}
		list += len;
		list += *list != '\0';
	}
}

/* LD_PRELOAD for the child: asan runtimes first (the program's own, and any
 * already preloaded), then libfaketime, then the rest of the old list. */
static char *build_preload(const char *lib, const char *asan, const char *old)
{
	size_t n = strlen("LD_PRELOAD=") + strlen(lib) +
		   (asan ? strlen(asan) : 0) + (old ? strlen(old) : 0) + 4;
	char *out = qc__malloc(n);
	if (!out)
		return NULL;
	char *list = out + strlen("LD_PRELOAD=");
	size_t room = n - strlen("LD_PRELOAD=");
	strcpy(out, "LD_PRELOAD=");
	append_preloads(list, room, old, true, lib);
	if (asan && !strstr(list, asan)) {
		size_t used = strlen(list);
		snprintf(list + used, room - used, "%s%s", used ? ":" : "",
			 asan);
	}
	size_t used = strlen(list);
	snprintf(list + used, room - used, "%s%s", used ? ":" : "", lib);
	append_preloads(list, room, old, false, lib);
	return out;
}

static char *concat(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = qc__malloc(n);
	if (s)
		snprintf(s, n, "%s%s", a, b);
	return s;
}

static void free_envp(char **envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		qc__free(envp[i]);
	qc__free(envp);
}

/* The child's environment: environ minus dropped(), plus our three. */
static char **build_envp(const char *file, const char *preload)
{
	size_t count = 0, k = 0;
	while (environ && environ[count])
		count++;
	char **envp = qc__calloc(count + 4, sizeof *envp);
	if (!envp)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		if (dropped(environ[i]))
			continue;
		if (!(envp[k++] = qc__strdup(environ[i])))
			goto fail;
	}
	if (!(envp[k++] = concat("FAKETIME_TIMESTAMP_FILE=", file)) ||
	    !(envp[k++] = qc__strdup("FAKETIME_NO_CACHE=1")) ||
	    !(envp[k++] = qc__strdup(preload)))
		goto fail;
	return envp;
fail:
	free_envp(envp);
	return NULL;
}

/* ----------------------------------------------------------------- public */

/* Fails a constructor: one line on stderr, errno set, NULL returned. */
static qc_faketime_child *fail_new(int err, const char *what, const char *arg)
{
	fprintf(stderr, "quiesce: %s%s%s: %s\n", what, arg ? " " : "",
		arg ? arg : "", strerror(err));
	errno = err;
	return NULL;
}

qc_faketime_child *qc_faketime_child_new(const qc_faketime *ft,
					 const char *program, const char *dir)
{
	char spec[96], lib[512], asan[128];
	if (!ft || qc_faketime_format(ft, spec, sizeof spec) != 0)
		return fail_new(EINVAL, "invalid faketime spec", NULL);
	int rc = qc_faketime_library(lib, sizeof lib);
	if (rc != 0) {
		errno = rc; /* qc_faketime_library said why */
		return NULL;
	}
	const char *have_asan = NULL;
	bool oom = false;
	char *resolved = program ? resolve_program(program, &oom) : NULL;
	if (oom) /* not "not found": the asan check must not be skipped */
		return fail_new(ENOMEM, "out of memory preparing faketime",
				NULL);
	if (resolved &&
	    qc_faketime_asan_runtime(resolved, asan, sizeof asan) == 0)
		have_asan = asan;
	qc__free(resolved);

	if (!dir || !*dir) {
		const char *tmp = getenv("TMPDIR");
		dir = tmp && *tmp ? tmp : "/tmp";
	}
	qc_faketime_child *c = qc__calloc(1, sizeof *c);
	size_t flen = strlen(dir) + 64;
	char *file = qc__malloc(flen);
	char *preload = build_preload(lib, have_asan, getenv("LD_PRELOAD"));
	if (!c || !file || !preload) {
		rc = ENOMEM;
		goto fail;
	}
	snprintf(file, flen, "%s/quiesce-faketime-%d-%lu.rc", dir,
		 (int)getpid(), atomic_fetch_add(&file_seq, 1));
	rc = write_atomically(file, spec);
	if (rc != 0 && rc != ENOMEM) {
		fprintf(stderr,
			"quiesce: cannot write the faketime timestamp file in "
			"%s: %s\n",
			dir, strerror(rc));
		goto fail;
	}
	if (rc != 0)
		goto fail;
	c->file = file;
	c->envp = build_envp(file, preload);
	if (!c->envp) {
		unlink(file);
		rc = ENOMEM;
		goto fail;
	}
	qc__free(preload);
	return c;
fail:
	qc__free(preload);
	qc__free(file);
	qc__free(c);
	if (rc == ENOMEM)
		fprintf(stderr, "quiesce: out of memory preparing faketime\n");
	errno = rc;
	return NULL;
}

char *const *qc_faketime_child_envp(const qc_faketime_child *c)
{
	return c ? c->envp : NULL;
}

const char *qc_faketime_child_file(const qc_faketime_child *c)
{
	return c ? c->file : NULL;
}

int qc_faketime_child_update(qc_faketime_child *c, const qc_faketime *ft)
{
	char spec[96];
	if (!c || !ft || qc_faketime_format(ft, spec, sizeof spec) != 0)
		return EINVAL;
	return write_atomically(c->file, spec);
}

int qc_faketime_child_free(qc_faketime_child *c)
{
	if (!c)
		return 0;
	int rc = unlink(c->file) == 0 || errno == ENOENT ? 0 : errno;
	qc__free(c->file);
	free_envp(c->envp);
	qc__free(c);
	return rc;
}

int qc_faketime_cleanup_pid(pid_t pid)
{
	char path[64];
	int rc = 0;
	if (pid <= 0)
		return EINVAL;
	snprintf(path, sizeof path, "/dev/shm/faketime_shm_%d", (int)pid);
	if (unlink(path) != 0 && errno != ENOENT)
		rc = errno;
	snprintf(path, sizeof path, "/dev/shm/sem.faketime_sem_%d", (int)pid);
	if (unlink(path) != 0 && errno != ENOENT && rc == 0)
		rc = errno;
	return rc;
}
