/* Hardware faults as Windows exceptions: a vectored handler sees an access violation (read and
 * write), int3 and an integer division by zero, with Windows' codes and parameters, and resumes. */
#include <windows.h>
#include <stdio.h>

static int seen;

static LONG CALLBACK handler(EXCEPTION_POINTERS *e)
{
    EXCEPTION_RECORD *r = e->ExceptionRecord;
    CONTEXT *c = e->ContextRecord;
    seen++;
    printf("exception %08lx, %lu parameters", r->ExceptionCode, r->NumberParameters);
    if (r->ExceptionCode == EXCEPTION_ACCESS_VIOLATION)
        printf(", %s at %#llx", r->ExceptionInformation[0] ? "write" : "read",
               (unsigned long long)r->ExceptionInformation[1]);
    printf(", at the faulting instruction: %d\n", (ULONG_PTR)r->ExceptionAddress == c->Rip);
    switch (r->ExceptionCode) {
    case EXCEPTION_ACCESS_VIOLATION:
    case EXCEPTION_INT_DIVIDE_BY_ZERO:
        c->Rip = c->R12; /* each site leaves its resume address in r12 */
        return EXCEPTION_CONTINUE_EXECUTION;
    case EXCEPTION_BREAKPOINT:
        c->Rip += 1;
        return EXCEPTION_CONTINUE_EXECUTION;
    }
    return EXCEPTION_CONTINUE_SEARCH;
}

int main(void)
{
    AddVectoredExceptionHandler(1, handler);
    int value = 0;
    __asm__ volatile("lea 1f(%%rip), %%r12\n\tmovl $7, (%1)\n1:" : : "r"(0), "r"((int *)0x40) : "r12", "memory");
    printf("after the write fault\n");
    __asm__ volatile("lea 1f(%%rip), %%r12\n\tmovl (%1), %0\n1:" : "=r"(value) : "r"((int *)0x80) : "r12", "memory");
    printf("after the read fault\n");
    __asm__ volatile("int3");
    printf("after int3\n");
    __asm__ volatile("lea 1f(%%rip), %%r12\n\txor %%edx, %%edx\n\tmov $5, %%eax\n\tdivl %1\n1:"
                     : : "a"(0), "r"(0) : "r12", "rdx", "memory");
    printf("after the division\n");
    printf("handled %d exceptions\n", seen);
    return seen;
}
