/* posix_spawn of a missing file, a non-executable file, a directory and a real program */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void try(const char *path) {
    char *argv[] = {(char *)path, "spawned", NULL};
    pid_t pid = -1;
    int r = posix_spawn(&pid, path, NULL, NULL, argv, environ);
    int status = -1;
    if (r == 0)
        waitpid(pid, &status, 0);
    printf("%s: posix_spawn %s, status %d\n", path, r ? strerror(r) : "0", status);
    fflush(stdout);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        try(argv[i]);
    return 0;
}
