#define _GNU_SOURCE
#include <signal.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/syscall.h>
static volatile int got[65];
static sigjmp_buf jb;
static void h(int s) { got[s]++; }
static void hi(int s, siginfo_t *si, void *uc) { got[s]++; printf("info sig=%d code=%d val=%d\n", s, si->si_code, si->si_value.sival_int); }
static void segv(int s, siginfo_t *si, void *uc) { printf("segv at %p\n", si->si_addr); siglongjmp(jb, 1); }
static char altstk[65536];
static void onalt(int s) { char c; printf("on altstack: %d\n", (char*)&c >= altstk && (char*)&c < altstk + sizeof altstk); }
int main(void) {
  setvbuf(stdout, 0, _IONBF, 0);
  signal(SIGUSR1, h);
  raise(SIGUSR1); kill(getpid(), SIGUSR1); syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
  printf("usr1 %d\n", got[SIGUSR1]);
  sigset_t m, p; sigemptyset(&m); sigaddset(&m, SIGUSR1); sigprocmask(SIG_BLOCK, &m, 0);
  raise(SIGUSR1); sigpending(&p); printf("pending %d got %d\n", sigismember(&p, SIGUSR1), got[SIGUSR1]);
  sigprocmask(SIG_UNBLOCK, &m, 0); printf("after unblock %d\n", got[SIGUSR1]);
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = hi; sa.sa_flags = SA_SIGINFO; sigaction(SIGUSR2, &sa, 0);
  union sigval v; v.sival_int = 42; sigqueue(getpid(), SIGUSR2, v);
  sa.sa_handler = h; sa.sa_flags = 0; sigaction(SIGALRM, &sa, 0);
  alarm(1); int r = pause(); printf("pause %d errno %s alrm %d\n", r, strerror(errno), got[SIGALRM]);
  stack_t ss = {.ss_sp = altstk, .ss_size = sizeof altstk}; sigaltstack(&ss, 0);
  sa.sa_handler = onalt; sa.sa_flags = SA_ONSTACK; sigaction(SIGWINCH, &sa, 0); raise(SIGWINCH);
  sa.sa_sigaction = segv; sa.sa_flags = SA_SIGINFO; sigaction(SIGSEGV, &sa, 0);
  if (!sigsetjmp(jb, 1)) { *(volatile int *)16 = 1; printf("not reached\n"); }
  printf("after segv\n");
  double d = 1.5; for (int i = 0; i < 3; i++) { raise(SIGUSR1); d *= 2; } printf("fp %g\n", d);
  signal(SIGTERM, SIG_DFL); raise(SIGTERM); printf("not reached either\n");
  return 0;
}
