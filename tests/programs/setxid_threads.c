/* Threads asleep in a call and a thread busy in its own code, for a second: the host's setxid
 * broadcast (glibc's SIGSETXID to every thread of the process) must reach them all. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *sleeper(void *arg) {
    (void)arg;
    sleep(1);
    return NULL;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, sleeper, NULL);
    pthread_create(&b, NULL, sleeper, NULL);
    volatile unsigned long spins = 0;
    double end = now() + 1.0;
    while (now() < end)
        spins++;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("done\n");
    return 0;
}
