/* rewrite_sigrip.c - where do signals interrupt a program that spends its time in syscall sites?
 * A SIGALRM every 100 us (ITIMER_REAL) while two sites run in a loop: `site_reg` takes its number
 * from a register (`mov %rdi,%rax; mov %rsi,%rdi; syscall`, a two-byte hop under pysud) and
 * `site_mov` is `mov $110,%eax; syscall`.  The handler records whether the interrupted RIP lies
 * in the program's own text (static binary: all its code is); natively it always does.  Under
 * pysud, a signal that arrives inside a rewritten site's trampoline must be delivered as if at
 * the site.  Prints the counts; exit status 0 when every RIP was in the text. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>

extern char __executable_start[], etext[];
long site_reg(long nr, long arg);
long site_mov(void);

__asm__(".text\n"
        ".p2align 4\n"
        "site_reg:\n"
        "    mov %rdi, %rax\n"
        "    mov %rsi, %rdi\n"
        "    syscall\n"
        "    ret\n"
        "    .p2align 4\n"
        "    ret\n"
        ".p2align 4\n"
        "site_mov:\n"
        "    mov $110, %eax\n"
        "    syscall\n"
        "    ret\n");

static volatile long in_text, outside, seen;

static void on_alarm(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    char *rip = (char *)uc->uc_mcontext.gregs[REG_RIP];
    if (rip >= __executable_start && rip < etext)
        in_text++;
    else
        outside++;
    seen++;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, 0);
    long sum = 0;
    for (long i = 0; seen < 3000 && i < 20000000; i++)
        sum += site_reg(110, 0) > 0 && site_mov() > 0; /* getppid twice */
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    printf("signals %s, all in the program's text: %s\n", seen >= 3000 ? "enough" : "few",
           outside == 0 ? "yes" : "no");
    fprintf(stderr, "in text %ld outside %ld calls %ld\n", in_text, outside, sum);
    return outside != 0;
}
