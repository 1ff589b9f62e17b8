/* Drives a program that acknowledges signals (signals_wait.c) and reports what happened.
   signals_driver N BURST -- PROGRAM ARGS...
   Sends N SIGUSR1, one at a time, each after the previous one's acknowledgement; then N SIGRTMIN
   sent BURST at a time without waiting (real-time signals queue: every one must be acknowledged);
   then SIGTERM.  Prints "usr1=A rt=B" and the raw wait status, and exits 0, or prints where it
   waited in vain (5 s) and exits 2 (the program is killed).  A C driver: a signal sent the moment
   the acknowledgement arrives reaches the program while it is entering its next blocking call. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int fd;
static pid_t pid;

static int expect(char want, const char *what, int i)
{
    struct pollfd pf = {fd, POLLIN, 0};
    char c = 0;
    if (poll(&pf, 1, 5000) != 1 || read(fd, &c, 1) != 1 || c != want) {
        printf("waited in vain for %s %d (got %d)\n", what, i, c);
        fflush(stdout);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        exit(2);
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0)
        return 64;
    int n = atoi(argv[1]), burst = atoi(argv[2]);
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    close(p[1]);
    fd = p[0];
    expect('r', "start", 0);
    int usr1 = 0, rt = 0;
    for (int i = 0; i < n; i++) {
        kill(pid, SIGUSR1);
        usr1 += expect('u', "SIGUSR1", i);
    }
    union sigval v = {.sival_int = 0};
    for (int i = 0; i < n; i += burst) {
        int k = n - i < burst ? n - i : burst;
        for (int j = 0; j < k; j++)
            sigqueue(pid, SIGRTMIN, v);
        for (int j = 0; j < k; j++)
            rt += expect('q', "SIGRTMIN", i + j);
    }
    kill(pid, SIGTERM);
    int status;
    struct pollfd pf = {fd, POLLIN, 0};
    for (int ms = 0; waitpid(pid, &status, WNOHANG) == 0; ms += 10) {
        if (ms >= 5000) {
            printf("usr1=%d rt=%d but SIGTERM did not end it\n", usr1, rt);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 2;
        }
        poll(&pf, 0, 10);
    }
    printf("usr1=%d rt=%d status=0x%x\n", usr1, rt, status);
    return 0;
}
