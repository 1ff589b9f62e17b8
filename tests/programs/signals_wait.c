/* A program that waits in one blocking call for ever and acknowledges every signal.
   signals_wait MODE: MODE is the blocking call the main loop makes again and again
   (pause, sigsuspend, read, nanosleep, futex, wait4, poll), or what it does instead: getppid
   (a fast call, again and again), spin (no system call at all), threads (three more threads
   in pause, so a signal may reach any of them); SIGUSR1 (SA_RESTART) and SIGRTMIN
   (no SA_RESTART) handlers each write one byte to stdout: 'u' or 'q'.  It writes 'r' when
   ready and never ends by itself: SIGTERM (default action) ends it. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void ack(char c)
{
    if (write(1, &c, 1) != 1)
        _exit(9);
}
static void on_usr1(int sig) { (void)sig; ack('u'); }
static void on_rt(int sig) { (void)sig; ack('q'); }

static void handle(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0)
        _exit(8);
}

static void *pauser(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "pause";
    handle(SIGUSR1, on_usr1, SA_RESTART);
    handle(SIGRTMIN, on_rt, 0);
    int p[2];
    if (pipe(p) != 0)
        return 7;
    pid_t child = 0;
    if (!strcmp(mode, "wait4")) {
        child = fork();
        if (child == 0) {
            close(1); /* the driver waits for the end of the output: not this one's */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (;;)
                pause(); /* never exits by itself: the parent stays in wait4 */
        }
    }
    if (!strcmp(mode, "threads")) {
        for (int i = 0; i < 3; i++) {
            pthread_t th;
            if (pthread_create(&th, NULL, pauser, NULL) != 0)
                return 3;
        }
        mode = "pause";
    }
    static uint32_t word;
    static volatile uint64_t spins;
    sigset_t none;
    sigemptyset(&none);
    ack('r');
    for (;;) {
        if (!strcmp(mode, "pause")) {
            pause();
        } else if (!strcmp(mode, "sigsuspend")) {
            sigsuspend(&none);
        } else if (!strcmp(mode, "read")) {
            char c;
            if (read(p[0], &c, 1) == 1)
                return 6;
        } else if (!strcmp(mode, "nanosleep")) {
            struct timespec ts = {1000, 0};
            nanosleep(&ts, NULL);
        } else if (!strcmp(mode, "futex")) {
            syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        } else if (!strcmp(mode, "wait4")) {
            if (waitpid(child, NULL, 0) == child)
                return 5;
        } else if (!strcmp(mode, "getppid")) {
            syscall(SYS_getppid);
        } else if (!strcmp(mode, "spin")) {
            spins++;
        } else if (!strcmp(mode, "poll")) {
            struct pollfd pf = {p[0], POLLIN, 0};
            poll(&pf, 1, -1);
        } else {
            return 4;
        }
    }
}
