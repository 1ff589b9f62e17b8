/* fork from a thread that is not the program's first: the child (a copy of that thread alone)
   ends with its own exit status, and another child execs a shell. */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
    (void)arg;
    pid_t a = fork();
    if (a == 0)
        _exit(5);
    pid_t b = fork();
    if (b == 0) {
        execl("/bin/sh", "sh", "-c", "echo child of a thread runs sh; exit 3", (char *)NULL);
        _exit(99);
    }
    int sa, sb;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    printf("exit child: %d\nexec child: %d\n", WEXITSTATUS(sa), WEXITSTATUS(sb));
    return NULL;
}

int main(void) {
    pthread_t t;
    fflush(stdout);
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    return 0;
}
