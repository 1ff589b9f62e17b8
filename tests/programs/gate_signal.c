/* Calls that never fail with EINTR (sigprocmask, dup, close) while a signal whose handler has no
 * SA_RESTART arrives exactly at the syscall instruction of pysud's gate: argv[2] is a perf
 * breakpoint on that instruction (set up by the test, signalling SIGUSR1 to this thread), enabled
 * around each round; the handler disables it so that its own delivery cannot set it off for ever.
 * Natively (no breakpoint) the calls simply run.  Prints how many failed. */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static int perf = -1;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
    ioctl(perf, PERF_EVENT_IOC_DISABLE, 0);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    perf = argc > 2 ? atoi(argv[2]) : -1;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1; /* no SA_RESTART: an interrupted call would say EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t empty, old;
    sigemptyset(&empty);
    int null = open("/dev/null", O_RDONLY);
    int eintr = 0, other = 0;
    for (int i = 0; i < rounds; i++) {
        ioctl(perf, PERF_EVENT_IOC_ENABLE, 0);
        if (sigprocmask(SIG_BLOCK, &empty, &old) != 0) {
            eintr += errno == EINTR;
            other += errno != EINTR;
        }
        int fd = dup(null);
        if (fd < 0) {
            eintr += errno == EINTR;
            other += errno != EINTR;
        } else if (close(fd) != 0) {
            eintr += errno == EINTR;
            other += errno != EINTR;
        }
        ioctl(perf, PERF_EVENT_IOC_DISABLE, 0);
    }
    printf("EINTR %d other errors %d\n", eintr, other);
    fprintf(stderr, "handled %d\n", (int)handled);
    return 0;
}
