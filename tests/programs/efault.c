/* Calls the personality answers itself, given pointers that cannot be used: the kernel says
   EFAULT for each; the program prints the errno it got (and never dies of it). */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BAD ((void *)0x10)
#define ARCH_GET_FS 0x1003

static void show(const char *what, long r) { printf("%s: %ld %s\n", what, r, r < 0 ? "" : "ok"); }

static long call(long nr, long a, long b, long c, long d) {
    long r = syscall(nr, a, b, c, d);
    return r < 0 ? -errno : r;
}

int main(void) {
    char *argv[] = {"/bin/true", NULL};
    show("readlink buf", call(SYS_readlink, (long)"/proc/self/exe", (long)BAD, 64, 0));
    show("readlink path", call(SYS_readlink, (long)BAD, (long)BAD, 64, 0));
    show("readlinkat buf", call(SYS_readlinkat, -100, (long)"/proc/self/exe", (long)BAD, 64));
    show("arch_prctl get_fs", call(SYS_arch_prctl, ARCH_GET_FS, (long)BAD, 0, 0));
    show("execve path", call(SYS_execve, (long)BAD, (long)argv, 0, 0));
    show("execve argv", call(SYS_execve, (long)"/bin/true", (long)BAD, 0, 0));
    char *bad_argv[] = {"/bin/true", BAD, NULL};
    show("execve argv[1]", call(SYS_execve, (long)"/bin/true", (long)bad_argv, 0, 0));
    show("execve envp", call(SYS_execve, (long)"/bin/true", (long)argv, (long)BAD, 0));
    show("open cmdline path", call(SYS_open, (long)BAD, 0, 0, 0));
    return 0;
}
