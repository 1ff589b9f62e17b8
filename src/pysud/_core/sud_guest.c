/* sud_guest.c - threads that guest programs start, and a program's exit.
 *
 * Not signal context.  A guest clone(CLONE_VM|CLONE_THREAD) on a new stack
 * becomes a host pthread (so handlers on it have a TLS, a Python thread
 * state and a dispatch stack of their own) that arms itself and only then
 * enters the guest with the registers the kernel would have given the child.
 * Every thread running guest code is in a registry, by program ("group"), so
 * that exit_group can make all of a program's threads leave (SUD_SIG_KICK).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sud.h"

#define SUD_CLONE_SETTLS 0x00080000ul
#define SUD_CLONE_PARENT_SETTID 0x00100000ul
#define SUD_CLONE_CHILD_CLEARTID 0x00200000ul
#define SUD_CLONE_CHILD_SETTID 0x01000000ul

void (*sud_guest_thread_hook)(int start);
long (*sud_orphan_hook)(struct sud_thread *t, long value);
volatile long sud_group_status;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sud_thread *registry;

void sud_guest_register(struct sud_thread *t, int group)
{
    pthread_mutex_lock(&reg_lock);
    t->group = group;
    t->gpid = getpid();
    t->exit_requested = 0;
    t->gnext = registry;
    registry = t;
    pthread_mutex_unlock(&reg_lock);
}

void sud_guest_unregister(struct sud_thread *t)
{
    pthread_mutex_lock(&reg_lock);
    for (struct sud_thread **p = &registry; *p; p = &(*p)->gnext) {
        if (*p == t) {
            *p = t->gnext;
            break;
        }
    }
    t->gnext = NULL;
    t->group = 0;
    pthread_mutex_unlock(&reg_lock);
}

int sud_group_count(int group, struct sud_thread *except)
{
    int n = 0;
    pid_t pid = getpid();
    pthread_mutex_lock(&reg_lock);
    for (struct sud_thread *t = registry; t; t = t->gnext)
        if (t->group == group && t != except && t->gpid == pid)
            n++;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

/* exit_group: every other thread of the program leaves the guest (the kick
 * interrupts guest code and blocking calls; see sud_kick_handler). */
void sud_group_exit(struct sud_thread *self, long status)
{
    pid_t pid = getpid();
    pthread_mutex_lock(&reg_lock);
    sud_group_status = status;
    for (struct sud_thread *t = registry; t; t = t->gnext) {
        if (t->group != self->group || t->gpid != pid)
            continue;
        t->exit_requested = 1;
        if (t != self)
            syscall(SYS_tgkill, pid, t->tid, SUD_SIG_KICK);
    }
    pthread_mutex_unlock(&reg_lock);
}

static long futex(volatile int *addr, int op, int val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

struct spawn {
    struct sud_frame regs; /* the child's registers at its first instruction */
    struct sud_thread *parent;
    uint64_t flags, ptid, ctid;
    volatile int tid; /* 0 until the child has armed itself; -errno if it could not */
};

static void *guest_thread_main(void *arg)
{
    struct spawn *s = arg;
    struct sud_thread *p = s->parent;
    int tid = (int)syscall(SYS_gettid);
    int r = sud_arm(p->op, p->offset, p->len, p->policy);
    if (r) {
        __atomic_store_n(&s->tid, r, __ATOMIC_RELEASE);
        futex(&s->tid, FUTEX_WAKE, 1);
        return NULL;
    }
    struct sud_thread *t = sud_self;
    /* The registers go to the top of the dispatch stack: sud_resume runs on
     * them, away from this C stack. */
    struct sud_frame *f = (struct sud_frame *)(((uintptr_t)t->dstack_hi - sizeof(*f)) & ~63ul);
    *f = s->regs;
    f->thread = t;
    uint64_t flags = s->flags;
    if (flags & SUD_CLONE_CHILD_SETTID)
        sud_safe_copy((void *)s->ctid, &tid, sizeof tid, 1);
    if (flags & SUD_CLONE_PARENT_SETTID)
        sud_safe_copy((void *)s->ptid, &tid, sizeof tid, 1);
    t->clear_tid = (flags & SUD_CLONE_CHILD_CLEARTID) ? s->ctid : 0;
    sud_guest_register(t, p->group ? p->group : p->tid);
    if (sud_guest_thread_hook)
        sud_guest_thread_hook(1);
    t->guest_depth = 1;
    __atomic_store_n(&s->tid, tid, __ATOMIC_RELEASE);
    futex(&s->tid, FUTEX_WAKE, 1); /* s is gone after this */
    sud_debug("a guest thread enters the program");

    pid_t born = getpid(); /* a forked child's copy of this stack still says the parent */
    long status = sud_enter_guest(f, t);
    if (getpid() != born) {
        /* A process forked by this thread: it is its only thread, and no
         * Python loop waits for it; the glue decides what follows (an
         * execve loads the next image here), then the process ends. */
        t->guest_depth = 0;
        sud_guest_unregister(t);
        sud_guest_keep_signals(t, 1); /* for the image an execve loads next */
        if (sud_orphan_hook)
            status = sud_orphan_hook(t, status);
        _exit((int)(status & 0xff));
    }

    t->guest_depth = 0;
    sud_guest_unregister(t);
    if (t->clear_tid) {
        /* What the kernel does for CLONE_CHILD_CLEARTID at thread exit. */
        int zero = 0;
        if (sud_safe_copy((void *)t->clear_tid, &zero, sizeof zero, 1) == 0)
            futex((volatile int *)t->clear_tid, FUTEX_WAKE, 1);
    }
    if (sud_guest_thread_hook)
        sud_guest_thread_hook(0);
    sud_debug("a guest thread left the program");
    return NULL;
}

long sud_spawn_guest_thread(struct sud_frame *f, uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid,
                            uint64_t tls)
{
    if (!(f->flags & SUD_FRAME_XSAVED))
        sud_xsave(f); /* pthread_create may use vector registers */
    struct spawn s;
    memset(&s, 0, sizeof s);
    s.regs = *f;
    s.regs.rax = 0;
    s.regs.rsp = sp;
    s.regs.rcx = f->rip; /* what the syscall instruction leaves there */
    s.regs.r11 = f->rflags;
    s.regs.fs_base = (flags & SUD_CLONE_SETTLS) ? tls : f->fs_base;
    s.regs.flags = 0; /* the child starts with the default vector state */
    s.regs.prev = NULL;
    s.parent = f->thread;
    s.flags = flags;
    s.ptid = ptid;
    s.ctid = ctid;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024); /* host side only: the guest has its own stack */
    pthread_t th;
    int r = pthread_create(&th, &attr, guest_thread_main, &s);
    pthread_attr_destroy(&attr);
    sud_vsig_retake(); /* the process's first pthread_create installs glibc's SIGSETXID handler */
    if (r)
        return -r;
    int tid;
    while ((tid = __atomic_load_n(&s.tid, __ATOMIC_ACQUIRE)) == 0)
        futex(&s.tid, FUTEX_WAIT, 0);
    return tid;
}

/* Signals held for the program when its image ended on this thread (pending:
 * one of pysud's handlers was running, or the program blocked them), with
 * their siginfo: execve keeps pending signals, so the next image gets them. */
static __thread uint64_t kept;
static __thread siginfo_t *kept_info; /* [65], made on first use (static TLS is small) */

static void keep(int sig, const siginfo_t *si)
{
    if (!kept_info)
        kept_info = calloc(65, sizeof *kept_info);
    if (kept_info && sig > 0 && sig < 65 && !(kept & (1ull << (sig - 1)))) {
        kept_info[sig] = *si;
        kept |= 1ull << (sig - 1);
    }
}

/* The program's image has ended on this thread: what was held for it (the
 * virtually pending signals, one it was to die of but asked for an execve
 * first, the queued copies the core blocked) is kept when `keeping` (an
 * execve may follow), dropped otherwise; the core's blocks are lifted. */
void sud_guest_keep_signals(struct sud_thread *t, int keeping)
{
    kept = 0;
    uint64_t held = t->vpending;
    for (int sig = 1; keeping && held; sig++, held >>= 1)
        if (held & 1)
            keep(sig, &t->vinfo[sig]);
    if (keeping && t->vfatal) /* natively the new image dies of it: its disposition is still the default */
        keep(t->vfatal, &t->vinfo[t->vfatal]);
    t->vpending = 0;
    t->vfatal = 0;
    uint64_t stale = t->vblocked;
    t->vblocked = 0;
    if (stale) {
        struct timespec zero = {0, 0};
        siginfo_t info;
        long sig;
        while ((sig = sud_gate_syscall6(SYS_rt_sigtimedwait, (long)&stale, (long)&info, (long)&zero, 8, 0, 0)) > 0)
            if (keeping)
                keep((int)sig, &info);
        sud_gate_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&stale, 0, 8, 0, 0);
    }
}

/* The next image starts on this thread: with `requeue`, what
 * sud_guest_keep_signals kept is sent to it again (one of each number: a
 * real-time signal queued twice arrives once); dropped otherwise. */
void sud_guest_kept_signals(struct sud_thread *t, int requeue)
{
    uint64_t again = requeue ? kept : 0;
    kept = 0;
    long pid = sud_gate_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (int sig = 1; again; sig++, again >>= 1)
        if (again & 1)
            sud_gate_syscall6(SYS_rt_tgsigqueueinfo, pid, t->tid, sig, (long)&kept_info[sig], 0, 0);
}

/* After sud_guest_abort (the kick, or a signal the program dies of): a fatal
 * signal ends all of the program's threads; the status to return. */
long sud_guest_aborted(struct sud_thread *t)
{
    if (t->vfatal) {
        sud_group_exit(t, 128 + t->vfatal);
        t->vfatal = 0;
    }
    return sud_group_status;
}

/* Signal context: a thread of a running program, for a signal sent to the
 * process that reached a host thread.  Reads the registry without the lock
 * (threads are added and removed at their start and end only). */
int sud_any_guest_tid(void)
{
    long pid = sud_gate_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (struct sud_thread *t = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); t; t = t->gnext)
        if (t->gpid == pid && t->guest_depth > 0)
            return t->tid;
    return 0;
}
