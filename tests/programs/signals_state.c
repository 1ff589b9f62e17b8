/* The signal state a program starts with: which signals it ignores and which it blocks.
   signals_state first: prints its state, ignores SIGUSR2 itself, then a forked child execs
   "signals_state child" and the program execs "signals_state exec"; both print their state
   (execve keeps ignored signals ignored and the mask as it was) and send themselves SIGHUP,
   which ends them unless it is ignored. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void print_state(const char *who)
{
    sigset_t blocked;
    sigprocmask(SIG_BLOCK, NULL, &blocked);
    printf("%s: ignored", who);
    for (int s = 1; s <= 64; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP || s == 32 || s == 33 || sigaction(s, NULL, &sa) != 0)
            continue;
        if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
            printf(" %d", s);
    }
    printf(" blocked");
    for (int s = 1; s <= 64; s++)
        if (s != 32 && s != 33 && sigismember(&blocked, s) == 1)
            printf(" %d", s);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *who = argc > 1 ? argv[1] : "first";
    print_state(who);
    if (!strcmp(who, "first")) {
        signal(SIGUSR2, SIG_IGN);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        printf("child status 0x%x\n", status);
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
        return 127;
    }
    raise(SIGHUP);
    printf("%s survived SIGHUP\n", who);
    return 0;
}
