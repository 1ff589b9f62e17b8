/* fork while another thread is inside a system call that takes a while: under pysud that call's
   Python handler holds the GIL, and the child must still run its own handlers (exit). */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int started;

static void *busy(void *arg) {
    (void)arg;
    started = 1;
    for (int i = 0; i < 20; i++)
        syscall(SYS_getppid); /* the test's handler spins ~20 ms in Python on each */
    return NULL;
}

int main(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, busy, NULL) != 0)
        return 1;
    while (!started)
        ;
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        struct timespec ms = {0, 5000000};
        nanosleep(&ms, NULL);
        pid_t c = fork();
        if (c == 0)
            _exit(7);
        int st;
        waitpid(c, &st, 0);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 7;
    }
    pthread_join(t, NULL);
    printf("children ok: %d\n", ok);
    return 0;
}
