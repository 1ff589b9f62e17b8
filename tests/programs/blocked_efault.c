/* Bad pointers to calls pysud reads in Python (openat's path, execve's), made with every signal
   blocked, as musl's pthread_exit does before its last calls: EFAULT, as natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    long r = syscall(SYS_openat, AT_FDCWD, (const char *)16, O_RDONLY);
    int e1 = errno;
    long s = syscall(SYS_execve, (const char *)16, NULL, NULL);
    int e2 = errno;
    printf("openat %ld %s\nexecve %ld %s\n", r, strerror(e1), s, strerror(e2));
    return 0;
}
