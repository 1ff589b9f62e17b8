/* vfork: the child reports exec's errno through its parent's local, as many shells do */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        volatile int err = 0;
        pid_t pid = vfork();
        if (pid == 0) {
            char *args[] = {argv[i], NULL};
            execv(argv[i], args);
            err = errno;
            _exit(127);
        }
        int status = -1;
        waitpid(pid, &status, 0);
        printf("%s: err %s, status %d\n", argv[i], err ? strerror(err) : "0", status);
        fflush(stdout);
    }
    return 0;
}
