/*
 * spawn.h: starting the program in its own process group.
 */
#ifndef QR_SPAWN_H
#define QR_SPAWN_H

#include <sys/types.h>

struct qr_child {
	pid_t pid;  /* also its process group id */
	int out_fd; /* read end of its stdout (close-on-exec) */
};

/* qr_resolve: program's path as execvp would find it (malloc'd), or NULL
 * with *err ENOENT (not found), EACCES (not an executable file) or
 * ENOMEM. */
char *qr_resolve(const char *program, int *err);

/*
 * qr_spawn: fork+exec path with argv and envp in a new process group whose
 * id is the child's pid, stdout on a pipe, SIGKILL on the runner's death,
 * signal mask emptied. Returns 0 with *c filled, or the errno of the
 * failed step (the exec's own errno when exec failed; the child is reaped).
 */
int qr_spawn(const char *path, char *const argv[], char *const envp[],
	     struct qr_child *c);

#endif /* QR_SPAWN_H */
