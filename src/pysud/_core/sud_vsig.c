/* sud_vsig.c - the guest program's signals, virtualised.
 *
 * The program's rt_sigaction never reaches the kernel: its dispositions live
 * in a table here.  While a program runs, pysud's handler is installed for
 * every signal it may see; a signal for the program is delivered the way
 * the kernel would (a signal frame on the program's stack or its virtual
 * alternate stack, the handler called with the program's restorer, which
 * ends in an rt_sigreturn that the kernel itself runs), and a signal for the
 * host goes to the disposition the host had before.  Signal context:
 * async-signal-safe code, general registers only, no stack protector.
 *
 * Two moments of delivery:
 *  - the signal interrupts the program's own code: the kernel's frame is
 *    copied to the program's stack and the handler entered at once;
 *  - it interrupts a dispatch (a handler, a native call on the program's
 *    behalf): it is held in the thread's vpending set, blocked in the
 *    thread's mask until then (a second one of it stays queued in the
 *    kernel), and delivered when the dispatch ends (sud_vsig_deliver, from
 *    sud_resume's last check), with a frame built from the trapped
 *    registers.  A call on the program's behalf is cancelled if it has not
 *    entered the kernel yet (sud_gate_syscall_cp) and re-run after the
 *    handler; one the signal interrupted returns EINTR and is restarted after
 *    the handler when the program asked for SA_RESTART, as the kernel does.
 *  - it interrupts one of the core's own handlers: it is given back to the
 *    kernel (queued again, blocked until that handler returns).
 */
#define _GNU_SOURCE
#pragma GCC target("general-regs-only")
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "sud.h"

#define K_SA_RESTORER 0x04000000ul
#define K_SA_ONSTACK 0x08000000ul
#define K_SA_RESTART 0x10000000ul
#define K_SA_NODEFER 0x40000000ul
#define K_SA_RESETHAND 0x80000000ul
#define UC_FP_XSTATE 1
#define UC_SIGCONTEXT_SS 2
#define UC_STRICT_RESTORE_SS 4
#define SUD_FP_MAGIC1 0x46505853u
#define SUD_FP_MAGIC2 0x46505845u
#define SIGBIT(s) (1ul << ((s) - 1))
#define OWN_SIGNALS (SIGBIT(SIGSYS) | SIGBIT(SUD_SIG_KICK))

static struct sud_kaction guest_act[65]; /* the program's dispositions */
static struct sud_kaction host_act[65];  /* the host's (kernel format), while ours are installed */
static int installed;                    /* run_guest calls in progress */
struct sud_fault sud_last_fault;

/* The kernel's frame layout (arch/x86/include/asm/sigframe.h, rt_sigframe). */
struct kucontext {
    uint64_t uc_flags, uc_link;
    stack_t uc_stack;
    uint64_t gregs[23]; /* struct sigcontext: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, ... */
    uint64_t fpstate;
    uint64_t reserved[8];
    uint64_t sigmask;
};
struct kframe {
    uint64_t pretcode;
    struct kucontext uc;
    siginfo_t info;
};
_Static_assert(sizeof(struct kucontext) == 304, "kernel ucontext");
_Static_assert(offsetof(struct kucontext, gregs) == offsetof(ucontext_t, uc_mcontext.gregs), "gregs");

static int is_fault(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP;
}

static int default_ignores(int sig)
{
    return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

static int default_stops(int sig)
{
    return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static int ours_to_install(int sig)
{
    /* SIGKILL/SIGSTOP cannot be caught; SIGSYS and the kick are the core's. */
    return sig != SIGKILL && sig != SIGSTOP && sig != SIGSYS && sig != SUD_SIG_KICK;
}

/* 32 and 33 are the host glibc's own signals (SIGCANCEL, SIGSETXID) and, in
 * a musl program, its SIGTIMER and SIGCANCEL: the same numbers, two owners.
 * The core's handler takes both while a program runs and tells them apart by
 * the sender: the program's tkill/tgkill of these numbers is sent marked
 * (sud_vsig_send_internal), glibc's own tgkill comes unmarked (SI_TKILL from
 * this process) and goes to glibc's handler. */
static int host_internal(int sig) { return sig == 32 || sig == 33; }
#define SUD_SI_MARK 0x44555350 /* si_errno of a program's marked signal: "PSUD" */

static int marked(int sig, const siginfo_t *si)
{
    return host_internal(sig) && si->si_code == SI_QUEUE && si->si_errno == SUD_SI_MARK;
}

/* The siginfo the program sees: a marked signal as the SI_TKILL it sent. */
static void program_info(int sig, const siginfo_t *si, siginfo_t *out)
{
    *out = *si;
    if (marked(sig, si)) {
        out->si_code = SI_TKILL;
        out->si_errno = 0;
        out->si_value.sival_ptr = NULL;
    }
}
static long gsys(long nr, long a, long b, long c, long d)
{
    return sud_gate_syscall6(nr, a, b, c, d, 0, 0);
}

/* Queue a signal again for this thread, with its siginfo (allowed for any
 * si_code when a thread sends to itself). */
static void requeue(int sig, const siginfo_t *si)
{
    gsys(SYS_rt_tgsigqueueinfo, gsys(SYS_getpid, 0, 0, 0, 0), gsys(SYS_gettid, 0, 0, 0, 0), sig, (long)si);
}

/* ------------------------------------------- the kernel's dispositions */

static int keep_ours; /* a tracer records the program's signals: all of them come through here */

static int program_ignores(int sig)
{
    uint64_t h = guest_act[sig].handler;
    return h == (uint64_t)SIG_IGN || (h == (uint64_t)SIG_DFL && default_ignores(sig));
}

static int host_has_function(int sig)
{
    uint64_t h = host_act[sig].handler;
    return h != (uint64_t)SIG_DFL && h != (uint64_t)SIG_IGN;
}

/* What the kernel does with `sig` while a program runs.  A signal the
 * program ignores is left to the kernel's own SIG_IGN or SIG_DFL (unless the
 * host has a handler for it or a tracer wants to see it): a handler of the
 * core would make the kernel end a sleep with EINTR (nanosleep, poll,
 * select, epoll_wait: ERESTART_RESTARTBLOCK, ERESTARTNOHAND) where the
 * ignored signal natively changes nothing; and SIGCHLD ignored explicitly
 * reaps children, as natively.  Every other signal goes to sud_vsig_handler. */
static void apply(int sig)
{
    if (!installed || !ours_to_install(sig))
        return;
    if (keep_ours || !program_ignores(sig) || host_has_function(sig) || host_internal(sig)) {
        sud_install_handler(sig, sud_vsig_handler, SA_RESTART, ~OWN_SIGNALS, NULL);
    } else {
        struct sud_kaction k = {guest_act[sig].handler, 0, 0, 0};
        gsys(SYS_rt_sigaction, sig, (long)&k, 0, 8);
    }
}

/* ---------------------------------------------------- program's actions */

void sud_vsig_reset(int keep_ignored, uint64_t ignored)
{
    for (int s = 1; s <= 64; s++) {
        if (keep_ignored && guest_act[s].handler == (uint64_t)SIG_IGN)
            continue;
        memset(&guest_act[s], 0, sizeof guest_act[s]);
        if ((ignored & SIGBIT(s)) && s != SIGKILL && s != SIGSTOP)
            guest_act[s].handler = (uint64_t)SIG_IGN;
    }
    memset(&sud_last_fault, 0, sizeof sud_last_fault);
}

long sud_vsig_sigaction(long sig, uint64_t act, uint64_t oact, long size)
{
    if (sig < 1 || sig > 64 || size != 8)
        return -EINVAL;
    if ((sig == SIGKILL || sig == SIGSTOP) && act)
        return -EINVAL;
    struct sud_kaction nact;
    if (act && sud_safe_copy(&nact, (void *)act, sizeof nact, 0))
        return -EFAULT;
    if (oact && sud_safe_copy((void *)oact, &guest_act[sig], sizeof nact, 1))
        return -EFAULT;
    if (act) {
        nact.mask &= ~(SIGBIT(SIGKILL) | SIGBIT(SIGSTOP));
        guest_act[sig] = nact;
        apply((int)sig);
    }
    return 0;
}

/* -------------------------------------------------- install / uninstall */

int sud_vsig_begin(void)
{
    if (installed++)
        return 0;
    /* SA_RESTART: the kernel restarts what it would restart; whether the
     * program's call is restarted is decided here, by its own flags.  The
     * host's dispositions are read and put back raw: glibc's sigaction
     * refuses its own 32 and 33. */
    for (int s = 1; s <= 64; s++)
        if (ours_to_install(s)) {
            gsys(SYS_rt_sigaction, s, 0, (long)&host_act[s], 8);
            sud_install_handler(s, sud_vsig_handler, SA_RESTART, ~OWN_SIGNALS, NULL);
        }
    struct sud_policy *p = sud_self ? sud_self->policy : NULL;
    keep_ours = p && p->trace;
    for (int s = 1; s <= 64; s++)
        apply(s);
    return 0;
}

void sud_vsig_end(void)
{
    if (--installed)
        return;
    for (int s = 1; s <= 64; s++)
        if (ours_to_install(s))
            gsys(SYS_rt_sigaction, s, (long)&host_act[s], 0, 8);
}

/* glibc installs its handlers for 32 and 33 lazily (SIGSETXID at the
 * process's first pthread_create, SIGCANCEL at its first pthread_cancel),
 * straight through the kernel: if it replaced the core's while a program
 * runs, the one it installed is the host's from now on and the core's goes
 * back in.  Called after the core creates a thread and before the program
 * sends one of these numbers. */
void sud_vsig_retake(void)
{
    if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
        return;
    for (int s = 32; s <= 33; s++) {
        struct sud_kaction cur;
        if (gsys(SYS_rt_sigaction, s, 0, (long)&cur, 8) == 0 && cur.handler != (uint64_t)sud_vsig_handler) {
            host_act[s] = cur;
            sud_install_handler(s, sud_vsig_handler, SA_RESTART, ~OWN_SIGNALS, NULL);
        }
    }
}

/* The program's tkill/tgkill of 32 or 33 to a thread of this process: sent
 * marked, as a queued signal (rt_tgsigqueueinfo allows a code other than
 * SI_TKILL to any thread of the process), and shown to the program's handler
 * as the SI_TKILL it sent.  Any other target, or another signal: the call as
 * made.  Returns the call's result. */
long sud_vsig_send(long nr, const long a[6])
{
    long tgid = nr == SYS_tgkill ? a[0] : 0, tid = nr == SYS_tgkill ? a[1] : a[0], sig = nr == SYS_tgkill ? a[2] : a[1];
    long pid = gsys(SYS_getpid, 0, 0, 0, 0);
    if (!host_internal((int)sig) || tid <= 0 || (nr == SYS_tgkill && tgid != pid))
        return sud_gate_syscall6(nr, a[0], a[1], a[2], 0, 0, 0);
    sud_vsig_retake();
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = (int)sig;
    si.si_errno = SUD_SI_MARK;
    si.si_code = SI_QUEUE;
    si.si_pid = (pid_t)pid;
    si.si_uid = (uid_t)gsys(SYS_getuid, 0, 0, 0, 0);
    long r = gsys(SYS_rt_tgsigqueueinfo, pid, tid, sig, (long)&si);
    if (r == -ESRCH && nr == SYS_tkill)
        return sud_gate_syscall6(nr, a[0], a[1], 0, 0, 0, 0); /* a thread of another process */
    return r;
}

/* Around the kernel's execve of a program's thread: signals the program
 * ignores must be ignored by the kernel then (execve keeps SIG_IGN and resets
 * handlers); after a failed execve the core's handler is back. */
void sud_vsig_exec(int before)
{
    if (!installed)
        return;
    for (int s = 1; s <= 64; s++) {
        if (!ours_to_install(s) || guest_act[s].handler != (uint64_t)SIG_IGN)
            continue;
        if (before) {
            struct sud_kaction ign = {(uint64_t)SIG_IGN, 0, 0, 0};
            gsys(SYS_rt_sigaction, s, (long)&ign, 0, 8);
        } else {
            apply(s);
        }
    }
}

/* ------------------------------------------------------------- frames */

static int on_virt_altstack(struct sud_thread *t, uint64_t sp)
{
    uint64_t lo = (uint64_t)t->virt_altstack.ss_sp;
    return sp > lo && sp <= lo + t->virt_altstack.ss_size;
}

/* Write the program's signal frame for `sig` below its stack (or on its
 * alternate stack); fp is a standard-format XSAVE image with its software
 * bytes, fp_len bytes long.  Returns the handler's RSP, or 0 if the stack
 * cannot take the frame. */
static uint64_t push_frame(struct sud_thread *t, int sig, const uint64_t gregs[23], uint64_t uc_flags,
                           const void *fp, uint64_t fp_len, uint64_t oldmask, const siginfo_t *si)
{
    const struct sud_kaction *a = &guest_act[sig];
    uint64_t sp = gregs[REG_RSP];
    if ((a->flags & K_SA_ONSTACK) && t->virt_altstack_set && !(t->virt_altstack.ss_flags & SS_DISABLE) &&
        !on_virt_altstack(t, sp))
        sp = (uint64_t)t->virt_altstack.ss_sp + t->virt_altstack.ss_size;
    else
        sp -= SUD_REDZONE;
    uint64_t fpaddr = fp ? (sp - fp_len) & ~63ul : sp;
    uint64_t frame = ((fpaddr - sizeof(struct kframe)) & ~15ul) - 8;

    struct kframe k;
    memset(&k, 0, sizeof k);
    k.pretcode = a->restorer;
    k.uc.uc_flags = uc_flags | (fp ? UC_FP_XSTATE : 0);
    size_t hdr = (sizeof(struct sud_thread) + 4095) & ~4095ul;
    k.uc.uc_stack.ss_sp = (char *)t + hdr; /* rt_sigreturn puts back the stack pysud's handlers need */
    k.uc.uc_stack.ss_size = SUD_AREA_SIZE - hdr;
    for (int i = 0; i < 23; i++)
        k.uc.gregs[i] = gregs[i];
    k.uc.fpstate = fp ? fpaddr : 0;
    k.uc.sigmask = oldmask;
    program_info(sig, si, &k.info);
    if (fp && sud_safe_copy((void *)fpaddr, fp, fp_len, 1))
        return 0;
    if (sud_safe_copy((void *)frame, &k, sizeof k, 1))
        return 0;
    return frame;
}

/* The handler's registers and mask, as the kernel sets them. */
static void enter_handler(int sig, uint64_t frame, uint64_t *rip, uint64_t *rsp, uint64_t *rdi, uint64_t *rsi,
                          uint64_t *rdx, uint64_t *rax, uint64_t *rflags, uint64_t *mask)
{
    struct sud_kaction *a = &guest_act[sig];
    *rip = a->handler;
    *rsp = frame;
    *rdi = (uint64_t)sig;
    *rsi = frame + offsetof(struct kframe, info);
    *rdx = frame + offsetof(struct kframe, uc);
    *rax = 0;
    *rflags &= ~(0x400ul | 0x100ul); /* DF, TF */
    *mask |= a->mask;
    if (!(a->flags & K_SA_NODEFER))
        *mask |= SIGBIT(sig);
    *mask &= ~OWN_SIGNALS;
    if (a->flags & K_SA_RESETHAND) {
        memset(a, 0, sizeof *a);
        apply(sig);
    }
}

static void record_fault(int sig, const siginfo_t *si, const uint64_t gregs[23])
{
    sud_last_fault.sig = sig;
    sud_last_fault.code = si->si_code;
    sud_last_fault.addr = (uint64_t)si->si_addr;
    for (int i = 0; i < 23; i++)
        sud_last_fault.gregs[i] = gregs[i];
}

/* ------------------------------------------------------ the handler */

static void chain_host(int sig, siginfo_t *si, void *uc)
{
    struct sud_kaction *h = &host_act[sig];
    if (h->handler == (uint64_t)SIG_IGN) {
        return;
    } else if (h->handler != (uint64_t)SIG_DFL && (h->flags & SA_SIGINFO)) {
        ((void (*)(int, siginfo_t *, void *))h->handler)(sig, si, uc);
    } else if (h->handler != (uint64_t)SIG_DFL) {
        ((void (*)(int))h->handler)(sig);
    } else if (!default_ignores(sig)) {
        /* The host's default: die (or stop) of it, as without pysud. */
        struct sud_kaction dfl = {0, 0, 0, 0};
        uint64_t bit = SIGBIT(sig);
        gsys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
        gsys(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&bit, 0, 8);
        gsys(SYS_tgkill, gsys(SYS_getpid, 0, 0, 0, 0), gsys(SYS_gettid, 0, 0, 0, 0), sig, 0);
    }
}

/* A line for the tracer, when the program's policy records (sud_trace.c). */
static void trace_signal(struct sud_thread *t, int sig, const siginfo_t *si)
{
    struct sud_policy *p = t->policy;
    if (p && p->trace) {
        siginfo_t info;
        program_info(sig, si, &info);
        sud_trace_signal(p->trace, t, sig, &info);
    }
}

/* glibc's own SIGCANCEL/SIGSETXID (unmarked SI_TKILL from this process) on
 * any thread: glibc's handler, run as host code (selector ALLOW, the host's
 * FS) even when it interrupted the program's code: a setxid broadcast of the
 * host reaches the program's threads too (they are the host's pthreads). */
static void host_internal_signal(struct sud_thread *t, int sig, siginfo_t *si, void *uc)
{
    uint8_t sel = t ? t->selector : SUD_FILTER_ALLOW;
    uint64_t fs = t ? sud_get_fs() : 0;
    if (t) {
        t->selector = SUD_FILTER_ALLOW;
        if (fs != t->host_fs)
            sud_set_fs(t->host_fs);
    }
    chain_host(sig, si, uc);
    if (t) {
        if (fs != t->host_fs)
            sud_set_fs(fs);
        t->selector = sel;
    }
    /* A program's call it ended with EINTR (a sleep, a poll: the kernel does
     * not restart those after a handler) runs again: natively no such signal
     * reaches the program.  One the kernel rewound restarts by itself. */
    greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
    if (t && t->top && (uint64_t)g[REG_RIP] == (uint64_t)sud_cp_syscall + 2 && g[REG_RAX] == -EINTR)
        g[REG_RAX] = -SUD_CP_RERUN;
}

int sud_vsig_active(void) { return __atomic_load_n(&installed, __ATOMIC_ACQUIRE) > 0; }

/* The signal came during a dispatch: a call made on the program's behalf
 * gives way.  One that has not entered the kernel is cancelled (re-run after
 * the handler); one the kernel rewound to restart returns EINTR now, and
 * delivery decides by the program's SA_RESTART whether to run it again. */
static void interrupt_call(struct sud_thread *t, greg_t *g)
{
    uint64_t rip = (uint64_t)g[REG_RIP];
    if ((rip >= (uint64_t)sud_cp_begin && rip < (uint64_t)sud_cp_syscall) ||
        (rip == (uint64_t)sud_cp_syscall && g[REG_RCX] == 0)) {
        g[REG_RIP] = (greg_t)sud_cp_cancel;
        return;
    }
    /* At another syscall instruction of the gate: sud_gate_syscall6 zeroes
     * RCX before it, so RCX 0 means the call has not started: it runs when
     * this handler returns and its result is the program's (close, getpid
     * never fail with EINTR); the held signal follows when the dispatch ends.
     * Otherwise the kernel rewound it to restart it. */
    if (rip >= (uint64_t)sud_gate_start && rip + 2 <= (uint64_t)sud_gate_end && *(const uint16_t *)rip == 0x050f &&
        rip != (uint64_t)sud_gate_rt_sigreturn && g[REG_RCX] != 0) {
        g[REG_RAX] = -EINTR;
        g[REG_RIP] = (greg_t)(rip + 2);
        t->vrestart = 1;
    }
}

/* Is the thread in sud_resume's last check (the dispatch over, the program's
 * registers being restored)?  Then it goes back to the check. */
static int in_resume(const struct sud_thread *t, const greg_t *g)
{
    uint64_t rip = (uint64_t)g[REG_RIP];
    return !t->top && rip >= (uint64_t)sud_resume_check && rip < (uint64_t)sud_resume_end;
}

static void back_to_check(struct sud_thread *t, greg_t *g)
{
    t->selector = SUD_FILTER_ALLOW;
    g[REG_RIP] = (greg_t)sud_resume_check;
    g[REG_RSP] = (greg_t)t->resume_frame;
}

/* Hold a signal for delivery when the dispatch ends; a second one of the
 * same number stays queued in the kernel (real-time signals queue), and the
 * number stays blocked until delivery. */
static void hold(struct sud_thread *t, int sig, const siginfo_t *si, ucontext_t *uc)
{
    uint64_t bit = SIGBIT(sig);
    if (t->vpending & bit) {
        requeue(sig, si);
    } else {
        t->vinfo[sig] = *si;
        __atomic_or_fetch(&t->vpending, bit, __ATOMIC_RELAXED);
    }
    if (!(uc->uc_sigmask.__val[0] & bit)) {
        uc->uc_sigmask.__val[0] |= bit;
        t->vblocked |= bit;
        t->faults_blocked = 0;
    }
}

void sud_vsig_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    if ((sig == SIGSEGV || sig == SIGBUS) && si->si_code > 0 && g[REG_RIP] == (greg_t)sud_probe_copy_insn) {
        g[REG_RIP] = (greg_t)sud_probe_copy_fixup; /* the recorder read a bad pointer */
        return;
    }
    if ((sig == SIGSEGV || sig == SIGBUS) && si->si_code > 0) {
        uint64_t to = sud_rewrite_fault_fixup((uint64_t)g[REG_RIP]);
        if (to) {
            g[REG_RIP] = (greg_t)to; /* a rewritten site's GS check met the program's own GS base */
            return;
        }
    }
    struct sud_thread *t = sud_thread_of(uc);
    int guest = t && t->guest_depth > 0 && t->group;
    int resuming = guest && in_resume(t, g);
    int core_handler = guest && sud_on_signal_stack(t, uc);
    /* The program's own code: not a dispatch, selector BLOCK, not sud_resume's
     * last instructions and not one of the core's handlers (which run on the
     * signal stack; the SIGSYS handler starts with the selector at BLOCK). */
    int in_guest_code = guest && !t->top && t->selector == SUD_FILTER_BLOCK && !core_handler && !resuming;
    int sync_fault = is_fault(sig) && si->si_code > 0;
    struct sud_kaction *a = &guest_act[sig];

    if (host_internal(sig) && !marked(sig, si) && si->si_code == SI_TKILL &&
        si->si_pid == (pid_t)gsys(SYS_getpid, 0, 0, 0, 0)) {
        host_internal_signal(t, sig, si, uc);
        return;
    }
    if (!guest && marked(sig, si))
        return; /* sent by the program to a thread that has left it */
    if (!guest) {
        /* A host thread.  Faults and signals sent to this thread are the
         * host's; a signal sent to the process, while a program runs, is the
         * program's (it is the process, as far as its signals go), unless the
         * program leaves it to the default of ignoring or stopping. */
        if (sync_fault || si->si_code == SI_TKILL || !installed) {
            chain_host(sig, si, uc);
            return;
        }
        if (a->handler == (uint64_t)SIG_DFL && (default_ignores(sig) || default_stops(sig))) {
            chain_host(sig, si, uc);
            return;
        }
        /* Forward it to a thread of the program (the registry's first). */
        int tid = sud_any_guest_tid();
        if (tid > 0)
            gsys(SYS_rt_tgsigqueueinfo, gsys(SYS_getpid, 0, 0, 0, 0), tid, sig, (long)si);
        else
            chain_host(sig, si, uc);
        return;
    }

    if (sync_fault && !in_guest_code) {
        chain_host(sig, si, uc); /* a fault in the host's own code */
        return;
    }
    if (a->handler == (uint64_t)SIG_IGN || (a->handler == (uint64_t)SIG_DFL && default_ignores(sig))) {
        trace_signal(t, sig, si); /* a tracer sees ignored signals too */
        return;
    }
    if (a->handler == (uint64_t)SIG_DFL && default_stops(sig)) {
        chain_host(sig, si, uc); /* the process stops, as natively */
        return;
    }
    if (core_handler) {
        /* One of the core's handlers (SIGSYS, the kick) was interrupted: the
         * kernel gets the signal back and delivers it again once that handler
         * has returned, to the program's code or to a dispatch. */
        requeue(sig, si);
        uc->uc_sigmask.__val[0] |= SIGBIT(sig);
        t->faults_blocked = 0;
        return;
    }
    if (a->handler == (uint64_t)SIG_DFL) {
        /* The program dies of it (status 128 + sig; `pysud run` then dies of it
         * too); the host lives on.  A blocking call on its behalf ends now. */
        trace_signal(t, sig, si);
        record_fault(sig, si, (const uint64_t *)g);
        t->vinfo[sig] = *si; /* (an execve asked for meanwhile keeps it pending: guest.c) */
        t->vfatal = sig;
        t->exit_requested = 1;
        if (in_guest_code) {
            sud_leave_guest_now(t, uc);
        } else {
            interrupt_call(t, g);
            if (resuming)
                back_to_check(t, g);
        }
        return;
    }

    /* The program has a handler. */
    if (!in_guest_code) {
        /* In a dispatch: hold it until the dispatch ends. */
        hold(t, sig, si, uc);
        interrupt_call(t, g);
        if (resuming)
            back_to_check(t, g);
        return;
    }
    /* In the program's code: the kernel's frame, copied to the program's stack. */
    trace_signal(t, sig, si);
    g[REG_RIP] = (greg_t)sud_rewrite_signal_rip((uint64_t)g[REG_RIP], (uint64_t)g[REG_R11]); /* in a trampoline: at the site */
    const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
    uint64_t fp_len = 0;
    if (fp && (uc->uc_flags & UC_FP_XSTATE)) {
        const uint32_t *sw = (const uint32_t *)(fp + 464);
        fp_len = sw[0] == SUD_FP_MAGIC1 ? sw[1] : 512; /* extended_size */
    } else if (fp) {
        fp_len = 512;
    }
    uint64_t frame = push_frame(t, sig, (const uint64_t *)g, uc->uc_flags & ~(uint64_t)UC_FP_XSTATE, fp, fp_len,
                                uc->uc_sigmask.__val[0], si);
    if (!frame) {
        record_fault(SIGSEGV, si, (const uint64_t *)g);
        t->vfatal = SIGSEGV; /* as the kernel: a frame that cannot be written kills */
        t->exit_requested = 1;
        sud_leave_guest_now(t, uc);
        return;
    }
    uint64_t rip, rsp, rdi, rsi, rdx, rax, rfl = (uint64_t)g[REG_EFL], mask = uc->uc_sigmask.__val[0];
    enter_handler(sig, frame, &rip, &rsp, &rdi, &rsi, &rdx, &rax, &rfl, &mask);
    g[REG_RIP] = (greg_t)rip;
    g[REG_RSP] = (greg_t)rsp;
    g[REG_RDI] = (greg_t)rdi;
    g[REG_RSI] = (greg_t)rsi;
    g[REG_RDX] = (greg_t)rdx;
    g[REG_RAX] = (greg_t)rax;
    g[REG_EFL] = (greg_t)rfl;
    uc->uc_sigmask.__val[0] = mask;
    t->faults_blocked = 0;
}

/* ------------------------------------------- delivery after a dispatch */

/* Called when a dispatch on a guest thread ends with signals held (from
 * sud_resume_pending): build frames from the trapped registers and resume in
 * the handler.  Several held signals nest as the kernel nests them: the
 * second one's frame interrupts the first handler's first instruction. */
void sud_vsig_deliver(struct sud_frame *f)
{
    struct sud_thread *t = f->thread;
    /* Nothing but SIGSYS and the kick while frames and masks are chosen:
     * what arrives meanwhile, the kernel keeps. */
    uint64_t all = ~OWN_SIGNALS, cur = 0;
    gsys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&cur, 8);
    uint64_t mask = cur & ~t->vblocked; /* the program's own mask */
    t->vblocked = 0;

    /* The program's vector state, in the standard XSAVE format with the
     * software bytes rt_sigreturn checks (before any libc call may touch it). */
    char fpbuf[12288] __attribute__((aligned(64)));
    uint64_t size = sud_xsave_std_size, fp_len = 0;
    const void *fp = NULL;
    if (size + 4 <= sizeof fpbuf) {
        uint32_t lo = (uint32_t)sud_xsave_mask, hi = (uint32_t)(sud_xsave_mask >> 32);
        if (f->flags & SUD_FRAME_XSAVED) {
            __asm__ volatile("xrstor64 (%0)" ::"r"(f->xsave), "a"(-1), "d"(-1) : "memory");
            f->flags &= ~SUD_FRAME_XSAVED;
        }
        for (int i = 0; i < 8; i++)
            ((volatile uint64_t *)(fpbuf + 512))[i] = 0;
        __asm__ volatile("xsave64 (%0)" ::"r"(fpbuf), "a"(lo), "d"(hi) : "memory");
        uint32_t *sw = (uint32_t *)(fpbuf + 464);
        sw[0] = SUD_FP_MAGIC1;
        sw[1] = (uint32_t)size + 4;
        memcpy(&sw[2], &sud_xsave_mask, 8);
        sw[4] = (uint32_t)size;
        for (int i = 5; i < 12; i++)
            sw[i] = 0;
        uint32_t m2 = SUD_FP_MAGIC2;
        memcpy(fpbuf + size, &m2, 4);
        fp = fpbuf;
        fp_len = size + 4;
    }

    /* An interrupted call: re-run it after the handler if it never started,
     * or if it was to be restarted and the handler asks for SA_RESTART (or no
     * handler runs: natively the signal would not have interrupted it). */
    int eintr = (f->flags & SUD_FRAME_TRAP) && (long)f->rax == -EINTR ? t->vrestart : 0;
    t->vrestart = 0;
    int delivered = 0;
    for (;;) {
        /* The first signal was deliverable when the kernel delivered it (a
         * call such as sigsuspend may have had its own mask, restored since);
         * the next ones must be allowed by the mask of the handler before. */
        uint64_t ready = t->vpending & (delivered ? ~mask : ~0ul);
        if (!ready)
            break;
        int sig = __builtin_ctzl(ready) + 1;
        __atomic_and_fetch(&t->vpending, ~SIGBIT(sig), __ATOMIC_RELAXED);
        struct sud_kaction *a = &guest_act[sig];
        if (a->handler == (uint64_t)SIG_IGN || (a->handler == (uint64_t)SIG_DFL && default_ignores(sig)))
            continue; /* ignored meanwhile */
        if (a->handler == (uint64_t)SIG_DFL && default_stops(sig)) {
            requeue(sig, &t->vinfo[sig]); /* the kernel stops the process once unblocked */
            continue;
        }
        uint64_t rip = f->rip, rax = f->rax;
        if (!delivered && (eintr == 2 || (eintr == 1 && (a->flags & K_SA_RESTART)))) {
            rip = f->rip - 2; /* the syscall instruction, run again after the handler */
            rax = f->nr;
        }
        uint64_t g[23] = {f->r8, f->r9, f->r10, f->r11, f->r12, f->r13, f->r14, f->r15, f->rdi, f->rsi, f->rbp,
                          f->rbx, f->rdx, rax, f->rcx, f->rsp, rip, f->rflags,
                          sud_user_cs | (sud_user_ss << 48), 0, 0, 0, 0};
        siginfo_t info = t->vinfo[sig];
        if (a->handler == (uint64_t)SIG_DFL) {
            /* made default meanwhile: the program dies of it */
            trace_signal(t, sig, &info);
            record_fault(sig, &info, g);
            t->vfatal = sig;
            t->exit_requested = 1;
            break;
        }
        trace_signal(t, sig, &info);
        uint64_t frame = push_frame(t, sig, g, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, fp, fp_len, mask, &info);
        if (!frame) {
            record_fault(SIGSEGV, &info, g);
            t->vfatal = SIGSEGV;
            t->exit_requested = 1;
            break;
        }
        uint64_t rdi, rsi, rdx, nrax, rfl = f->rflags;
        enter_handler(sig, frame, &f->rip, &f->rsp, &rdi, &rsi, &rdx, &nrax, &rfl, &mask);
        f->rdi = rdi;
        f->rsi = rsi;
        f->rdx = rdx;
        f->rax = nrax;
        f->rflags = rfl;
        f->flags |= SUD_FRAME_DIRTY;
        delivered = 1;
    }
    if (!delivered && !t->exit_requested && (eintr == 2 || eintr == 1)) {
        f->rip -= 2; /* nothing was delivered: the call runs as if never interrupted */
        f->rax = f->nr;
        f->flags |= SUD_FRAME_DIRTY;
    }
    /* Held signals the handler's mask blocks: the kernel keeps them until the
     * mask allows them (blocked now, so they cannot come back at once). */
    uint64_t rest = __atomic_exchange_n(&t->vpending, 0, __ATOMIC_RELAXED);
    for (int sig = 1; rest; sig++, rest >>= 1)
        if (rest & 1)
            requeue(sig, &t->vinfo[sig]);
    gsys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8);
    t->faults_blocked = 0;
}
