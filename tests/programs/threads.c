/* pthreads under load: THREADS threads each make N getppid, N one-byte pipe writes and N
   clock_gettime calls with syscall() (never the vDSO), then are joined; totals are printed.
   Usage: threads [N]   (default 2000) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8

static int pipefd[2];
static long n_calls = 2000;
static pid_t parent;

struct result {
    long ppid_ok, write_ok, clock_ok;
};

static void *worker(void *arg) {
    struct result *r = arg;
    for (long i = 0; i < n_calls; i++) {
        if (syscall(SYS_getppid) == parent)
            r->ppid_ok++;
        if (syscall(SYS_write, pipefd[1], "x", 1) == 1)
            r->write_ok++;
        struct timespec ts;
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) == 0 && ts.tv_nsec < 1000000000)
            r->clock_ok++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        n_calls = atol(argv[1]);
    if (n_calls * THREADS > 65536) {
        fprintf(stderr, "N too large for one pipe buffer\n");
        return 2;
    }
    parent = getppid();
    if (pipe(pipefd) != 0) {
        perror("pipe");
        return 1;
    }
    pthread_t t[THREADS];
    struct result r[THREADS] = {0};
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, &r[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    struct result total = {0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total.ppid_ok += r[i].ppid_ok;
        total.write_ok += r[i].write_ok;
        total.clock_ok += r[i].clock_ok;
    }
    close(pipefd[1]);
    long bytes = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0)
        bytes += n;
    printf("write fd %d\n", pipefd[1]);
    printf("threads %d x %ld\n", THREADS, n_calls);
    printf("getppid ok %ld\nwrite ok %ld\nclock ok %ld\npipe bytes %ld\n", total.ppid_ok, total.write_ok,
           total.clock_ok, bytes);
    return 0;
}
