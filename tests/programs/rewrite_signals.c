/* Signals and rewritten sites (tests/test_rewrite.py): SIGALRM every 200 us while one site is
 * called in a tight loop, and a blocking read through glibc's read site interrupted by a signal
 * whose handler has SA_RESTART (the read goes on, as natively). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
static volatile int alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }
int main(void) {
    int p[2];
    char c;
    if (pipe(p)) return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    /* warm the read and getppid sites up (the first call of a site traps) */
    write(p[1], "ab", 2);
    read(p[0], &c, 1);
    read(p[0], &c, 1);
    /* signals while a rewritten site is called in a tight loop */
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, 0);
    long sum = 0;
    for (int i = 0; i < 200000; i++) sum += getppid() > 0;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    /* a blocking read interrupted by a signal whose handler says SA_RESTART: it goes on */
    int before = alarms;
    pid_t kid = fork();
    if (kid == 0) {
        usleep(100000);
        write(p[1], "z", 1);
        _exit(0);
    }
    struct itimerval once = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &once, 0);
    long n = read(p[0], &c, 1);
    printf("loop %ld, signals in loop %s, read %ld '%c' after %s\n", sum, alarms > before / 2 ? "yes" : "no", n, c,
           alarms > before ? "a signal" : "no signal");
    return 0;
}
