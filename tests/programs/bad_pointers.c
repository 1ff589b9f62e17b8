/* For `pysud trace`: calls given pointers that cannot be read; traced as strace shows them (addresses). */
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>
int main(void) {
    long r = syscall(SYS_write, 1, (void *)0x10, 5);
    r += syscall(SYS_openat, AT_FDCWD, (void *)0x7ffffffff000, 0);
    r += syscall(SYS_write, 1, (void *)-4096L, 5);
    write(1, "ok\n", 3);
    return r == -3 ? 0 : 1;
}
