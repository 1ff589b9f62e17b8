/* Signals a program ignores change nothing: a child's SIGCHLD (default: ignored) does not end a
   nanosleep or a poll early, an ignored SIGUSR2 does not interrupt a read, and with SIGCHLD set
   to SIG_IGN children are reaped by the kernel (wait finds none: ECHILD). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (fork() == 0) {
        usleep(50000);
        _exit(0);
    }
    struct timespec ts = {0, 300000000}, rem = {0, 0};
    int r = nanosleep(&ts, &rem);
    printf("nanosleep with a child's SIGCHLD: %d errno=%d\n", r, r ? errno : 0);
    if (fork() == 0) {
        usleep(50000);
        _exit(0);
    }
    r = poll(NULL, 0, 300);
    printf("poll with a child's SIGCHLD: %d errno=%d\n", r, r < 0 ? errno : 0);
    while (wait(NULL) > 0)
        ;

    int p[2];
    char c;
    if (pipe(p) != 0)
        return 1;
    signal(SIGUSR2, SIG_IGN);
    if (fork() == 0) {
        usleep(50000);
        kill(getppid(), SIGUSR2);
        usleep(50000);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        _exit(0);
    }
    r = (int)read(p[0], &c, 1);
    printf("read with an ignored SIGUSR2: %d errno=%d\n", r, r < 0 ? errno : 0);
    while (wait(NULL) > 0)
        ;

    signal(SIGCHLD, SIG_IGN);
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    usleep(100000);
    errno = 0;
    r = waitpid(pid, NULL, 0);
    printf("waitpid with SIGCHLD ignored: %d echild=%d\n", r, errno == ECHILD);
    return 0;
}
