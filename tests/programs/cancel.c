/* pthread_cancel of threads blocked in read() and sleep(), in a pthread_testcancel loop and in an
 * asynchronous loop, with cleanup handlers.  musl cancels with signal 33, glibc with 32: the host
 * glibc's SIGSETXID and SIGCANCEL. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <stdlib.h>

static int fds[2];
static void cleanup(void *arg) { printf("cleanup %s\n", (const char *)arg); fflush(stdout); }

static void *reader(void *arg) {
    (void)arg;
    char b[8];
    pthread_cleanup_push(cleanup, "reader");
    read(fds[0], b, sizeof b);
    pthread_cleanup_pop(0);
    return "not cancelled";
}
static void *sleeper(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, "sleeper");
    sleep(100);
    pthread_cleanup_pop(0);
    return "not cancelled";
}
static volatile int spin;
static void *looper(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, "looper");
    for (;;) { spin++; pthread_testcancel(); }
    pthread_cleanup_pop(0);
    return "not cancelled";
}
static void *async_looper(void *arg) {
    (void)arg;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    for (;;) spin++;
    return "not cancelled";
}
static void run(const char *name, void *(*fn)(void *)) {
    pthread_t t; void *res;
    pthread_create(&t, NULL, fn, NULL);
    usleep(50000);
    int r = pthread_cancel(t);
    pthread_join(t, &res);
    printf("%s: cancel=%d %s\n", name, r, res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : (char *)res);
    fflush(stdout);
}
int main(void) {
    pipe(fds);
    run("read", reader);
    run("sleep", sleeper);
    run("testcancel", looper);
    run("async", async_looper);
    return 3;
}
