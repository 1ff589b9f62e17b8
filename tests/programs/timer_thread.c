/* A SIGEV_THREAD timer: musl runs its callbacks on a thread that waits for SIGTIMER (32), glibc on a
 * helper thread woken by its own signal; three expiries, then the timer goes. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
static volatile int fired;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static void cb(union sigval v) { pthread_mutex_lock(&m); fired += v.sival_int; pthread_cond_signal(&c); pthread_mutex_unlock(&m); }
int main(void) {
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD; ev.sigev_notify_function = cb; ev.sigev_value.sival_int = 1;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &ev, &t)) { perror("timer_create"); return 1; }
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    timer_settime(t, 0, &its, NULL);
    pthread_mutex_lock(&m);
    while (fired < 3) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    timer_delete(t);
    printf("fired %s\n", fired >= 3 ? "3+" : "?");
    return 0;
}
