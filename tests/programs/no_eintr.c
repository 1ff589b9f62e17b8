/* Calls that never fail with EINTR natively, made while another thread hammers this one with a
 * signal whose handler has SA_RESTART: close and dup, getpid, write to /dev/null, reads of a pipe
 * that block until the other thread writes (restarted after each handler).  Prints how many of
 * them failed, by call; all zero natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static volatile int done;
static pid_t pid, main_tid;
static int pipefd[2];

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void *hammer(void *arg) {
    (void)arg;
    unsigned long n = 0;
    while (!done) {
        syscall(SYS_tgkill, pid, main_tid, SIGUSR1);
        /* (non-blocking: when the main thread is slow, a full pipe must not keep this thread
         * from seeing `done`) */
        if (++n % 16 == 0 && write(pipefd[1], "x", 1) != 1 && errno != EAGAIN)
            abort();
    }
    return NULL;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pid = getpid();
    main_tid = (pid_t)syscall(SYS_gettid);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || pipe(pipefd) != 0 || fcntl(pipefd[1], F_SETFL, O_NONBLOCK) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, hammer, NULL);
    int bad_close = 0, bad_dup = 0, bad_getpid = 0, bad_write = 0, bad_read = 0, other = 0;
    for (int i = 0; i < rounds; i++) {
        int fd = dup(null);
        if (fd < 0) {
            bad_dup += errno == EINTR;
            other += errno != EINTR;
            continue;
        }
        if (close(fd) != 0) {
            bad_close += errno == EINTR;
            other += errno != EINTR;
        }
        if (getpid() != pid)
            bad_getpid++;
        if (write(null, "y", 1) != 1) {
            bad_write += errno == EINTR;
            other += errno != EINTR;
        }
        if (i % 8 == 0) {
            char c;
            if (read(pipefd[0], &c, 1) != 1) {
                bad_read += errno == EINTR;
                other += errno != EINTR;
            }
        }
    }
    done = 1;
    pthread_join(t, NULL);
    printf("EINTR: close %d dup %d write %d read %d; getpid wrong %d; other errors %d\n", bad_close, bad_dup,
           bad_write, bad_read, bad_getpid, other);
    fprintf(stderr, "handled %d\n", (int)handled);
    return 0;
}
