/* Signal handling as a program sees it: handlers, masks, pending signals, SA_SIGINFO,
   EINTR against SA_RESTART, sigsuspend, an alternate signal stack, a SIGSEGV handled with siglongjmp,
   and at the end death by SIGTERM with the default action. Every line is deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, alrm;
static volatile int info_code, info_value, info_pid_ok;
static volatile int on_alt, alt_flags;
static char *alt_base;
static size_t alt_size;
static sigjmp_buf segv_env;
static volatile int segv_code;
static volatile uintptr_t segv_addr;
static int wake_pipe[2];

static void on_usr1(int sig) { usr1 += sig == SIGUSR1; }
static void on_usr2(int sig) { usr2 += sig == SIGUSR2; }

static void on_info(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    info_code = si->si_code;
    info_value = si->si_value.sival_int;
    info_pid_ok = si->si_pid == getpid();
}

static void on_alrm(int sig) {
    (void)sig;
    alrm++;
    if (write(wake_pipe[1], "w", 1) != 1)
        _exit(90);
}

static void on_alt_stack(int sig) {
    (void)sig;
    char local;
    stack_t ss;
    on_alt = (char *)&local >= alt_base && (char *)&local < alt_base + alt_size;
    sigaltstack(NULL, &ss);
    alt_flags = ss.ss_flags;
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    segv_code = si->si_code;
    segv_addr = (uintptr_t)si->si_addr;
    siglongjmp(segv_env, 1);
}

static void set(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) {
        perror("sigaction");
        exit(1);
    }
}

static void arm_timer(void) {
    struct itimerval it = {{0, 0}, {0, 50000}}; /* one shot, 50 ms */
    setitimer(ITIMER_REAL, &it, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);

    /* 1. handlers for raise, kill and tgkill */
    set(SIGUSR1, on_usr1, 0);
    set(SIGUSR2, on_usr2, 0);
    raise(SIGUSR1);
    kill(getpid(), SIGUSR1);
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
    printf("handled: usr1=%d usr2=%d\n", usr1, usr2);

    /* the old disposition comes back from sigaction */
    struct sigaction old;
    sigaction(SIGUSR1, NULL, &old);
    printf("old handler is ours: %d\n", old.sa_handler == on_usr1);

    /* 2. blocked, pending, delivered on unblock */
    sigset_t set1, pend, prev;
    sigemptyset(&set1);
    sigaddset(&set1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set1, &prev);
    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: pending=%d usr1=%d\n", sigismember(&pend, SIGUSR1), usr1);
    sigprocmask(SIG_SETMASK, &prev, NULL);
    sigpending(&pend);
    printf("unblocked: pending=%d usr1=%d\n", sigismember(&pend, SIGUSR1), usr1);

    /* 3. SA_SIGINFO with sigqueue */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    union sigval sv = {.sival_int = 42};
    sigqueue(getpid(), SIGUSR2, sv);
    printf("siginfo: code_is_queue=%d value=%d pid_ok=%d\n", info_code == SI_QUEUE, info_value, info_pid_ok);

    /* 4. a blocking read interrupted: EINTR without SA_RESTART, restarted with it */
    if (pipe(wake_pipe) != 0)
        return 1;
    char c;
    set(SIGALRM, on_alrm, 0);
    arm_timer();
    errno = 0;
    ssize_t r = read(wake_pipe[0], &c, 1);
    printf("no SA_RESTART: read=%zd eintr=%d alrm=%d\n", r, errno == EINTR, alrm);
    if (read(wake_pipe[0], &c, 1) != 1) /* drain the byte the handler wrote */
        return 1;
    set(SIGALRM, on_alrm, SA_RESTART);
    arm_timer();
    c = 0;
    r = read(wake_pipe[0], &c, 1);
    printf("SA_RESTART: read=%zd byte=%c alrm=%d\n", r, c, alrm);
    /* waiting for the signal without a race: blocked while the timer is armed, sigsuspend unblocks */
    sigset_t alrm_set, before;
    sigemptyset(&alrm_set);
    sigaddset(&alrm_set, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm_set, &before);
    arm_timer();
    errno = 0;
    int p = sigsuspend(&before);
    sigprocmask(SIG_SETMASK, &before, NULL);
    printf("sigsuspend: %d eintr=%d alrm=%d\n", p, errno == EINTR, alrm);

    /* 5. a handler on the alternate signal stack */
    alt_size = 1 << 16;
    alt_base = malloc(alt_size);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("altstack set: same=%d flags=%d\n", cur.ss_sp == alt_base && cur.ss_size == alt_size,
           cur.ss_flags);
    set(SIGUSR1, on_alt_stack, SA_ONSTACK);
    raise(SIGUSR1);
    printf("handler on altstack: %d onstack_flag=%d\n", on_alt, (alt_flags & SS_ONSTACK) != 0);

    /* 6. a fault in the program's own code, handled */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    for (int i = 0; i < 2; i++) {
        if (sigsetjmp(segv_env, 1) == 0) {
            *(volatile int *)(uintptr_t)(16 * i) = 1;
            printf("no fault?\n");
        } else {
            printf("SIGSEGV handled: maperr=%d addr=%lu\n", segv_code == SEGV_MAPERR,
                   (unsigned long)segv_addr);
        }
    }
    /* the mask was restored by siglongjmp: a second fault is caught again (above); SIGSEGV unblocked */
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("after siglongjmp: segv blocked=%d\n", sigismember(&now, SIGSEGV));

    /* 7. death by a signal with the default action */
    printf("raising SIGTERM\n");
    raise(SIGTERM);
    printf("still alive?\n");
    return 3;
}
