/* Process and thread churn for the stress tests.
   churn threads N: N threads, 8 alive at a time, each makes 50 getppid calls; prints the total.
   churn forks N: N children, 8 alive at a time, child i exits with i % 200 after 10 getppid;
                  prints the sum of the statuses.
   churn execs N: N children, 4 alive at a time, each execs /bin/true (or /bin/false for odd i);
                  prints how many exited 0 and how many 1.
   churn mixed N: N rounds of: a thread that forks a child that execs /bin/true. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long calls(int n) {
    long ok = 0;
    for (int i = 0; i < n; i++)
        ok += syscall(SYS_getppid) > 0;
    return ok;
}

static void *thread_main(void *arg) {
    *(long *)arg = calls(50);
    return NULL;
}

static void *fork_exec(void *arg) {
    pid_t c = fork();
    if (c == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(99);
    }
    int st = -1;
    waitpid(c, &st, 0);
    *(int *)arg = st;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    int n = atoi(argv[2]);
    if (!strcmp(argv[1], "threads")) {
        long total = 0, got[8];
        pthread_t t[8];
        for (int i = 0; i < n; i += 8) {
            int k = n - i < 8 ? n - i : 8;
            for (int j = 0; j < k; j++)
                pthread_create(&t[j], NULL, thread_main, &got[j]);
            for (int j = 0; j < k; j++) {
                pthread_join(t[j], NULL);
                total += got[j];
            }
        }
        printf("threads %d calls %ld\n", n, total);
    } else if (!strcmp(argv[1], "forks") || !strcmp(argv[1], "execs")) {
        int execs = argv[1][0] == 'e', width = execs ? 4 : 8;
        long sum = 0, zero = 0, one = 0;
        for (int i = 0; i < n; i += width) {
            int k = n - i < width ? n - i : width;
            pid_t pids[8];
            for (int j = 0; j < k; j++) {
                pids[j] = fork();
                if (pids[j] == 0) {
                    if (execs) {
                        const char *p = (i + j) % 2 ? "/bin/false" : "/bin/true";
                        execl(p, p, (char *)NULL);
                        _exit(99);
                    }
                    calls(10);
                    _exit((i + j) % 200);
                }
            }
            for (int j = 0; j < k; j++) {
                int st;
                waitpid(pids[j], &st, 0);
                int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
                sum += code;
                zero += code == 0;
                one += code == 1;
            }
        }
        if (execs)
            printf("execs %d true %ld false %ld\n", n, zero, one);
        else
            printf("forks %d status sum %ld\n", n, sum);
    } else if (!strcmp(argv[1], "mixed")) {
        int ok = 0;
        for (int i = 0; i < n; i++) {
            pthread_t t;
            int st = -1;
            pthread_create(&t, NULL, fork_exec, &st);
            pthread_join(t, NULL);
            ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        printf("mixed %d ok %d\n", n, ok);
    } else {
        return 2;
    }
    return 0;
}
