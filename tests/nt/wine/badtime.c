/* NtQuerySystemTime through ntdll's export with bad pointers (NULL, 0x10, a read-only page), then a
 * good one: each status, and whether the read-only value stayed.  Windows and Wine answer
 * STATUS_ACCESS_VIOLATION from the kernel's probe; the process goes on. */
#include <stdio.h>
#include <windows.h>

NTSTATUS NTAPI NtQuerySystemTime(LARGE_INTEGER *);
static const LARGE_INTEGER readonly = {{0, 0}};

int main(void)
{
    LARGE_INTEGER now = {{0, 0}};
    printf("null %lx\n", (unsigned long)NtQuerySystemTime(NULL));
    printf("low %lx\n", (unsigned long)NtQuerySystemTime((LARGE_INTEGER *)0x10));
    printf("readonly %lx\n", (unsigned long)NtQuerySystemTime((LARGE_INTEGER *)&readonly));
    printf("readonly unchanged %d\n", readonly.QuadPart == 0);
    printf("good %lx\n", (unsigned long)NtQuerySystemTime(&now));
    printf("after 2020 %d\n", now.QuadPart > 132223104000000000LL);
    return 0;
}
