/* rewrite_gs.c - a program that sets its own GS base (arch_prctl(ARCH_SET_GS), or wrgsbase
 * without telling anybody), then keeps making calls from the same sites.  argv[1]: "prctl",
 * "wrgsbase", or "aligned" (wrgsbase to a 64 KiB aligned address with nothing mapped there).
 * Prints what it saw; pysud's rewritten sites must keep every call intercepted. */
#include <asm/prctl.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t buf[64];

static long ppid_loop(int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        long r;
        __asm__ volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory"); /* getppid */
        sum += r > 0;
    }
    return sum;
}

__attribute__((target("fsgsbase"))) static void set_gs(uint64_t v) { _writegsbase_u64(v); }
__attribute__((target("fsgsbase"))) static uint64_t get_gs(void) { return _readgsbase_u64(); }

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "prctl";
    long n = ppid_loop(1000);
    uint64_t want = (uint64_t)buf, seen = 0;
    buf[0] = 0x1122334455667788ull;
    if (!strcmp(how, "prctl")) {
        if (syscall(SYS_arch_prctl, ARCH_SET_GS, want))
            return 2;
    } else if (!strcmp(how, "wrgsbase")) {
        set_gs(want);
    } else {
        want = 0x10000;
        while (mmap((void *)want, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) !=
               (void *)want)
            want += 0x10000; /* (a free 64 KiB aligned page: nothing readable lies at it) */
        munmap((void *)want, 4096);
        set_gs(want);
    }
    n += ppid_loop(2000);
    if (strcmp(how, "aligned"))
        __asm__ volatile("mov %%gs:0, %0" : "=r"(seen)); /* the program's GS base works for it */
    else
        seen = buf[0];
    uint64_t gs = get_gs();
    n += ppid_loop(1000);
    printf("%s calls %ld gs %s data %llx\n", how, n, gs == want ? "kept" : "changed", (unsigned long long)seen);
    return 9;
}
