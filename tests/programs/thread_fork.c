/* fork from a thread that is not the program's first: the child (a copy of that thread alone)
   ends with its own exit status, another child execs a shell, and a third execs the program
   itself (built -no-pie, the new image goes where the old one was), which looks for a page the
   old image mapped: an exec leaves nothing of the old program's memory behind. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARK "thread_fork's page"

static char *self;

static void *worker(void *arg) {
    (void)arg;
    pid_t a = fork();
    if (a == 0)
        _exit(5);
    pid_t b = fork();
    if (b == 0) {
        execl("/bin/sh", "sh", "-c", "echo child of a thread runs sh; exit 3",
              (char *)NULL);
        _exit(99);
    }
    int sa, sb, sc;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char at[32];
    if (page == MAP_FAILED)
        return NULL;
    strcpy(page, MARK);
    snprintf(at, sizeof at, "%p", (void *)page);
    pid_t c = fork();
    if (c == 0) {
        execl("/proc/self/exe", self, "again", at, (char *)NULL);
        _exit(98);
    }
    waitpid(c, &sc, 0);
    printf("exit child: %d\nexec child: %d\nself child: %d\n", WEXITSTATUS(sa), WEXITSTATUS(sb), WEXITSTATUS(sc));
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t;
    if (argc > 2 && strcmp(argv[1], "again") == 0) {
        /* the page is gone (a write from it fails: EFAULT) or holds something else */
        const char *old = (const char *)strtoul(argv[2], NULL, 16);
        int fds[2];
        char buf[sizeof MARK];
        int kept = pipe(fds) == 0 && write(fds[1], old, sizeof MARK) == (ssize_t)sizeof MARK &&
                   read(fds[0], buf, sizeof buf) == (ssize_t)sizeof buf && memcmp(buf, MARK, sizeof MARK) == 0;
        printf("the image again; the old program's page: %s\n", kept ? "still there" : "gone");
        return 4;
    }
    self = argv[0];
    fflush(stdout);
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    return 0;
}
