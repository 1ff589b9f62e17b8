/* exec: a forked child execs the test's second program (argv and env passed), another forks
   and execs /bin/echo, a failed execve reports ENOENT, and at last the program replaces itself
   with the second program, whose exit status becomes its own.
   Usage: execer TARGET ECHO */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_child(char *path, char **argv, char **envp) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execve(path, argv, envp);
        printf("execve %s failed: %s\n", path, strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child %s exited %d\n", argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TARGET ECHO\n", argv[0]);
        return 2;
    }
    printf("execer start\n");
    char *targv[] = {"target", "one", "two words", "", NULL};
    char *tenv[] = {"EXEC_TEST=from execer", "OTHER=x", NULL};
    run_child(argv[1], targv, tenv);
    char *eargv[] = {"echo", "echo", "says", "hi", NULL};
    char *eenv[] = {NULL};
    run_child(argv[2], eargv, eenv);
    errno = 0;
    int r = execve("/no/such/program", targv, tenv);
    printf("execve missing: %d %s\n", r, strerror(errno));
    char *last[] = {"target-final", "last", NULL};
    fflush(stdout);
    execv(argv[1], last); /* the environment is ours: EXEC_TEST comes from the caller */
    printf("execv failed: %s\n", strerror(errno));
    return 1;
}
