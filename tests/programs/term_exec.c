/* SIGTERM for a child that is exec'ing: fork, vfork and posix_spawn children exec /bin/sleep.
   A fork or vfork child says on a pipe that it is about to call execve, and the parent sends
   SIGTERM 0 to 3.5 ms after that (while the child is in execve, loading the new image, or
   sleeping); a posix_spawn child is sent it 5 to 40 ms after the spawn returned. Natively
   each child dies of it: execve keeps a pending signal, and the new image has the default
   disposition. Prints how many children did not. */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t start(const char *how, int ready)
{
    char *args[] = {"sleep", "100", NULL};
    pid_t p = 0;
    if (!strcmp(how, "fork")) {
        p = fork();
        if (p == 0) {
            if (write(ready, "x", 1) != 1)
                _exit(98);
            execv("/bin/sleep", args);
            _exit(99);
        }
    } else if (!strcmp(how, "vfork")) {
        p = vfork();
        if (p == 0) {
            if (write(ready, "x", 1) != 1)
                _exit(98);
            execv("/bin/sleep", args);
            _exit(99);
        }
    } else if (posix_spawn(&p, "/bin/sleep", NULL, NULL, args, environ) != 0) {
        p = -1;
    }
    return p;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 8;
    const char *hows[] = {"fork", "vfork", "posix_spawn"};
    for (int h = 0; h < 3; h++) {
        int lost = 0, other = 0;
        for (int i = 0; i < n; i++) {
            int fds[2];
            char c;
            if (pipe(fds) != 0)
                return 1;
            pid_t p = start(hows[h], fds[1]);
            if (p < 0)
                return 1;
            close(fds[1]);
            if (h < 2) {
                if (read(fds[0], &c, 1) != 1)
                    return 1;
                usleep((useconds_t)(i % 8) * 500);
            } else {
                usleep((useconds_t)(i % 8 + 1) * 5000);
            }
            close(fds[0]);
            kill(p, SIGTERM);
            int st = 0, r = 0;
            for (int k = 0; k < 300 && (r = waitpid(p, &st, WNOHANG)) == 0; k++)
                usleep(10000);
            if (r == 0) {
                lost++;
                kill(p, SIGKILL);
                waitpid(p, &st, 0);
            } else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM) {
                other++;
            }
        }
        printf("%s: %d children, %d not ended by SIGTERM, %d ended otherwise\n", hows[h], n, lost, other);
    }
    return 0;
}
