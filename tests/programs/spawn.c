/* posix_spawn: glibc makes the child with clone3(CLONE_VM|CLONE_VFORK) on a stack of its own. */
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

extern char **environ;

int main(void) {
    char *argv[] = {"/bin/echo", "spawned", NULL};
    pid_t pid;
    int r = posix_spawn(&pid, "/bin/echo", NULL, NULL, argv, environ);
    int status = -1;
    if (r == 0)
        waitpid(pid, &status, 0);
    printf("posix_spawn %d, child status %d\n", r, status);
    return 0;
}
