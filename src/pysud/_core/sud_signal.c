/* sud_signal.c - the SIGSYS handler.  Signal context: async-signal-safe code only.
 *
 * It does the least it can: find the thread's state from the signal stack,
 * set the selector to ALLOW and the host's FS base, copy the trapped
 * registers into a frame on the thread's dispatch stack, and rewrite the
 * saved context so that sigreturn lands in sud_dispatch_entry on that stack,
 * outside signal context.  Everything else happens there (sud_dispatch.c).
 *
 * Compiled with -fno-stack-protector: the canary lives at %fs:0x28 and FS may
 * belong to foreign code when this runs.
 */
#define _GNU_SOURCE
#pragma GCC target("general-regs-only")
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "sud.h"

static struct sigaction chained; /* the SIGSYS disposition before ours */

void sud_set_chained(const struct sigaction *old) { chained = *old; }

static void say(const char *msg)
{
    size_t n = 0;
    while (msg[n])
        n++;
    sud_gate_syscall6(SYS_write, 2, (long)msg, (long)n, 0, 0, 0);
}

/* A SIGSYS that is not ours: hand it to whoever had SIGSYS before. */
static void chain(int sig, siginfo_t *si, void *uc)
{
    if ((chained.sa_flags & SA_SIGINFO) && chained.sa_sigaction) {
        chained.sa_sigaction(sig, si, uc);
    } else if (chained.sa_handler == SIG_IGN) {
        return;
    } else if (chained.sa_handler != SIG_DFL && chained.sa_handler) {
        chained.sa_handler(sig);
    } else {
        /* Default action: die of SIGSYS, as the process would without us. */
        struct {
            void *handler;
            unsigned long flags;
            void *restorer;
            unsigned long mask;
        } dfl = {SIG_DFL, 0, 0, 0};
        unsigned long unblock = 1ul << (SIGSYS - 1);
        sud_gate_syscall6(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8, 0, 0);
        sud_gate_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, 0, 8, 0, 0);
        sud_gate_syscall6(SYS_tgkill, sud_gate_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0),
                          sud_gate_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0), SIGSYS, 0, 0, 0);
    }
}

/* The thread's state sits at the base of the area that holds its signal
 * stack; the kernel tells us which signal stack is in force (uc_stack). */
struct sud_thread *sud_thread_of(const void *ucv)
{
    const ucontext_t *uc = ucv;
    if (uc->uc_stack.ss_flags & SS_DISABLE || !uc->uc_stack.ss_sp)
        return NULL;
    uintptr_t base = (uintptr_t)uc->uc_stack.ss_sp & ~(uintptr_t)(SUD_AREA_SIZE - 1);
    struct sud_thread *t = (struct sud_thread *)base;
    if ((uintptr_t)uc->uc_stack.ss_sp - base != ((sizeof(struct sud_thread) + 4095) & ~4095ul))
        return NULL;
    return t->magic == SUD_THREAD_MAGIC ? t : NULL;
}

/* Did the signal interrupt one of the core's own handlers (on t's signal stack)? */
int sud_on_signal_stack(const struct sud_thread *t, const void *ucv)
{
    const ucontext_t *uc = ucv;
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    return (uc->uc_stack.ss_flags & SS_ONSTACK) || (sp > (uintptr_t)t && sp <= (uintptr_t)t + SUD_AREA_SIZE);
}

/* Is there a signal frame at sp (the ucontext rt_sigreturn reads)?  Call 15
 * is rt_sigreturn for Linux code, but other ABIs number differently (NtClose
 * is 15 on Windows): only a frame the kernel would accept makes it one. */
static int is_sigframe(uint64_t sp)
{
    struct {
        uint64_t uc_flags, uc_link;
        stack_t uc_stack;
        uint64_t gregs[23];
    } uc;
    if (sud_safe_copy(&uc, (const void *)sp, sizeof uc, 0))
        return 0;
    return (uc.uc_flags & ~7ul) == 0 && (uc.gregs[REG_CSGSFS] & 0xffff) == sud_user_cs;
}

void sud_sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    if (si->si_code != SUD_SI_CODE_USER_DISPATCH) {
        chain(sig, si, ucv);
        return;
    }
    struct sud_thread *t = sud_thread_of(uc);
    if (!t) {
        /* Dispatch was armed by someone else, or our signal stack was replaced. */
        say("pysud: SIGSYS from syscall user dispatch on a thread pysud does not know\n");
        chain(sig, si, ucv);
        return;
    }
    greg_t *g = uc->uc_mcontext.gregs;
    uint8_t sel = t->selector;
    t->selector = SUD_FILTER_ALLOW; /* our own syscalls, and sigreturn, now run directly */
    uint64_t fs = sud_get_fs();
    if (fs != t->host_fs)
        sud_set_fs(t->host_fs);

    if (si->si_arch == SUD_AUDIT_ARCH_X86_64 && g[REG_RAX] == SYS_rt_sigreturn && is_sigframe(g[REG_RSP])) {
        /* A signal handler returning over code that had the selector at BLOCK.
         * rt_sigreturn must run where it was called (its frame is at RSP):
         * run it from the gate, which the kernel never dispatches, with the
         * selector and FS as they were. */
        struct sud_policy *p = t->policy;
        if (p && p->trace)
            sud_trace_sigreturn(p->trace, t, (uint64_t)g[REG_RSP]); /* a line for the tracer */
        t->faults_blocked = 0; /* the frame's mask comes back */
        if (t->gate_allowed)
            t->selector = sel;
        if (fs != t->host_fs)
            sud_set_fs(fs);
        g[REG_RIP] = (greg_t)sud_gate_rt_sigreturn;
        return;
    }

    /* Where the frame goes: the top of the dispatch stack, or, when the trap
     * came from code already running on it (a handler called foreign code),
     * below the interrupted stack pointer and its red zone. */
    char *isp = (char *)g[REG_RSP];
    char *base = t->dstack_hi;
    if (isp > t->dstack_lo && isp <= t->dstack_hi)
        base = isp - SUD_REDZONE;
    struct sud_frame *f = (struct sud_frame *)(((uintptr_t)base - sizeof(*f)) & ~63ul);
    char *xs = (char *)(((uintptr_t)f - sud_xsave_size) & ~63ul);
    if (xs - t->dstack_lo < 64 * 1024) {
        say("pysud: dispatch stack exhausted by nested dispatches; failing the call with ENOMEM\n");
        g[REG_RAX] = -ENOMEM;
        t->selector = sel;
        if (fs != t->host_fs)
            sud_set_fs(fs);
        return;
    }
    for (int i = 0; i < 8; i++) /* XSAVE header: XCOMP_BV and reserved must be 0 */
        ((uint64_t *)(xs + 512))[i] = 0;

    f->r15 = g[REG_R15];
    f->r14 = g[REG_R14];
    f->r13 = g[REG_R13];
    f->r12 = g[REG_R12];
    f->r11 = g[REG_R11];
    f->r10 = g[REG_R10];
    f->r9 = g[REG_R9];
    f->r8 = g[REG_R8];
    f->rbp = g[REG_RBP];
    f->rdi = g[REG_RDI];
    f->rsi = g[REG_RSI];
    f->rdx = g[REG_RDX];
    f->rcx = g[REG_RCX];
    f->rbx = g[REG_RBX];
    f->rax = g[REG_RAX];
    f->rip = g[REG_RIP];
    f->cs = sud_user_cs;
    f->rflags = g[REG_EFL];
    f->rsp = g[REG_RSP];
    f->ss = sud_user_ss;
    f->nr = g[REG_RAX];
    f->call_addr = (uint64_t)si->si_call_addr;
    f->fs_base = fs;
    f->xsave = (uint64_t)xs;
    f->thread = t;
    f->prev = NULL;
    f->arch = si->si_arch;
    f->selector = sel;
    f->flags = si->si_arch == SUD_AUDIT_ARCH_X86_64 ? SUD_FRAME_TRAP : 0;

    g[REG_RIP] = (greg_t)sud_dispatch_entry;
    g[REG_RSP] = (greg_t)(((uintptr_t)xs - 64) & ~15ul);
    g[REG_RDI] = (greg_t)f;
    g[REG_EFL] &= ~0x400; /* DF clear, as the C ABI wants */
}

/* SUD_SIG_KICK: the thread's program is exiting (another thread called
 * exit_group).  In guest code, leave at once; anywhere else (a handler, the
 * core, a blocking call, which the signal interrupts with EINTR) the end of
 * the current dispatch sees exit_requested and leaves. */
void sud_kick_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    struct sud_thread *t = sud_thread_of(uc);
    if (!t || !t->exit_requested || t->guest_depth <= 0)
        return;
    if (t->top || t->selector != SUD_FILTER_BLOCK || sud_on_signal_stack(t, uc))
        return; /* in dispatch or a core handler: sud_dispatch leaves on its way out */
    sud_leave_guest_now(t, uc);
}

/* Rewrite a signal context that interrupted the program's code so that
 * sigreturn lands in sud_guest_abort: the program ends on this thread now
 * (selector ALLOW and the host's FS first, as every way out of the guest). */
void sud_leave_guest_now(struct sud_thread *t, void *ucv)
{
    greg_t *g = ((ucontext_t *)ucv)->uc_mcontext.gregs;
    t->selector = SUD_FILTER_ALLOW;
    if (sud_get_fs() != t->host_fs)
        sud_set_fs(t->host_fs);
    g[REG_RIP] = (greg_t)sud_guest_abort;
    g[REG_RDI] = (greg_t)t;
    g[REG_RSP] = (greg_t)(((uintptr_t)t->dstack_hi - 256) & ~15ul);
    g[REG_EFL] &= ~0x400;
}

/* FS base access, safe in signal context. */
uint64_t sud_get_fs(void)
{
    if (sud_have_fsgsbase)
        return sud_rdfsbase();
    uint64_t v = 0;
    sud_gate_syscall6(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, (long)&v, 0, 0, 0, 0);
    return v;
}

void sud_set_fs(uint64_t v)
{
    if (sud_have_fsgsbase)
        sud_wrfsbase(v);
    else
        sud_gate_syscall6(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, (long)v, 0, 0, 0, 0);
}

/* Tagged diagnostics (PYSUD_DEBUG=1), written with write(2) only. */
int sud_debug_enabled;
void sud_debug(const char *msg)
{
    if (sud_debug_enabled) {
        say("pysud-debug: ");
        say(msg);
        say("\n");
    }
}

/* The benchmark's floor: the least a SIGSYS handler can do (answer 0 and
 * return), installed only while `pysud bench` measures it. */
void sud_floor_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RAX] = 0;
}

/* The same, running the call natively (for comparison with paths that do). */
void sud_floor_native_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    greg_t *g = ((ucontext_t *)ucv)->uc_mcontext.gregs;
    g[REG_RAX] = sud_gate_syscall6(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8],
                                   g[REG_R9]);
}
