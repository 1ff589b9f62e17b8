/* fork and wait: several children with their own exit codes, a pipeline of two children
   joined by pipes, a child killed by a signal, and vfork + _exit; collected with waitpid. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("%s: status %#x\n", what, status);
}

int main(void) {
    fflush(stdout);
    /* 1. four children, each reporting through its own pipe, exiting with 10+i */
    pid_t pids[4];
    int fds[4];
    for (int i = 0; i < 4; i++) {
        int p[2];
        if (pipe(p) != 0)
            return 1;
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0) {
            close(p[0]);
            char msg[64];
            int n = snprintf(msg, sizeof msg, "child %d ppid_ok=%d", i, getppid() > 1);
            if (write(p[1], msg, n) != n)
                _exit(99);
            _exit(10 + i);
        }
        close(p[1]);
        fds[i] = p[0];
    }
    for (int i = 3; i >= 0; i--) { /* reap in reverse order */
        char buf[64] = {0};
        ssize_t n = read(fds[i], buf, sizeof buf - 1);
        close(fds[i]);
        int status;
        pid_t w = waitpid(pids[i], &status, 0);
        char what[96];
        snprintf(what, sizeof what, "%s (%zd bytes, pid matches %d)", buf, n, w == pids[i]);
        describe(what, status);
    }

    /* 2. producer | upper-caser | parent */
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0)
        return 1;
    pid_t prod = fork();
    if (prod == 0) {
        close(a[0]);
        close(b[0]);
        close(b[1]);
        for (int i = 0; i < 100; i++)
            dprintf(a[1], "item %d\n", i);
        _exit(0);
    }
    pid_t up = fork();
    if (up == 0) {
        close(a[1]);
        close(b[0]);
        char buf[512];
        ssize_t n;
        long total = 0;
        while ((n = read(a[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                buf[i] = toupper((unsigned char)buf[i]);
            if (write(b[1], buf, n) != n)
                _exit(98);
            total += n;
        }
        _exit(total == 0 ? 1 : 0);
    }
    close(a[0]);
    close(a[1]);
    close(b[1]);
    char out[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(b[0], out + len, sizeof out - 1 - len)) > 0)
        len += n;
    out[len] = 0;
    close(b[0]);
    int s1, s2;
    waitpid(prod, &s1, 0);
    waitpid(up, &s2, 0);
    printf("pipeline: %zu bytes, first line %.6s, last %s", len, out, strstr(out, "ITEM 99"));
    describe("producer", s1);
    describe("upper-caser", s2);

    /* 3. a child killed by a signal */
    pid_t k = fork();
    if (k == 0) {
        kill(getpid(), SIGKILL);
        _exit(97);
    }
    int s;
    waitpid(k, &s, 0);
    describe("killed child", s);

    /* 4. vfork + _exit */
    pid_t v = vfork();
    if (v == 0)
        _exit(7);
    waitpid(v, &s, 0);
    describe("vfork child", s);

    /* 5. no children left */
    printf("waitpid with no children: %d\n", waitpid(-1, &s, WNOHANG) == -1);
    return 0;
}
