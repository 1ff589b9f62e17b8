/* For `pysud trace`: signal lines and a blocking call in one thread while another runs.
 *   trace_events signals  - SIGUSR1 to a handler (raise), then SIGTERM by default (dies)
 *   trace_events threads  - a thread blocks in read() on a pipe until the main thread writes
 *   trace_events exit     - a thread blocks in read() while the main thread calls exit(3) */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fds[2];

static void on_usr1(int sig) { (void)sig; }

static void *reader(void *arg)
{
    char c;
    (void)arg;
    return read(fds[0], &c, 1) == 1 ? NULL : (void *)1;
}

int main(int argc, char **argv)
{
    if (pipe(fds))
        return 1;
    if (argc > 1 && !strcmp(argv[1], "threads")) {
        pthread_t t;
        void *r;
        pthread_create(&t, NULL, reader, NULL);
        struct timespec ts = {0, 300000000};
        nanosleep(&ts, NULL);
        if (write(fds[1], "x", 1) != 1)
            return 2;
        pthread_join(t, &r);
        return r != NULL;
    }
    if (argc > 1 && !strcmp(argv[1], "exit")) {
        pthread_t t;
        pthread_create(&t, NULL, reader, NULL);
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
        exit(3); /* exit_group ends the reader in its read() */
    }
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    if (write(1, "after\n", 6) != 6)
        return 2;
    kill(getpid(), SIGTERM);
    return 3;
}
