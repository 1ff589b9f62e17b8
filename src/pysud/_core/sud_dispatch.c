/* sud_dispatch.c - what a trapped call does once it has left signal context.
 *
 * Runs on the thread's dispatch stack with the selector at ALLOW and the
 * host's FS base, vector state saved.  Chooses the per-syscall action the
 * policy holds, runs the call natively, fails it, or calls the Python hook.
 * Native execution keeps the mechanism intact: calls that would disarm,
 * unhook or deadlock it are run in the one way that is safe (see
 * docs/architecture.md, "Calls the core runs with care").
 */
#define _GNU_SOURCE
/* The fast path runs with the trapped code's vector registers live and unsaved:
 * no vector instructions here, and no libc calls that might use them. */
#pragma GCC target("general-regs-only")
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sud.h"

#define SUD_CLONE_VM 0x00000100ul
#define SUD_CLONE_VFORK 0x00004000ul
#define SUD_CLONE_SETTLS 0x00080000ul
#define SUD_CLONE_THREAD 0x00010000ul

void (*sud_python_hook)(struct sud_frame *f);
void (*sud_fork_hook)(int phase);
uintptr_t sud_hazard_lo[4], sud_hazard_hi[4];
int sud_nhazard;

static int in_hazard_range(uint64_t addr)
{
    for (int i = 0; i < sud_nhazard; i++)
        if (addr >= sud_hazard_lo[i] && addr < sud_hazard_hi[i])
            return 1;
    return 0;
}

void sud_rearm_after_fork(void);

/* ---------------------------------------------------------------- vfork
 * A vfork (vfork, or posix_spawn's clone(CLONE_VM|CLONE_VFORK) on a stack
 * of its own) runs as a fork: the child needs its own TLS and dispatch
 * stack.  What vfork promises the parent is kept by a channel: a pipe
 * whose write end only the child holds (close-on-exec, among pysud's own
 * descriptors).  The parent waits, as vfork's parent does, until the child
 * has exec'd (natively: the end closes; in-process: sud_vfork_release) or
 * ended; and what the child wrote to the parent's stack meanwhile (glibc's
 * posix_spawn reports the exec's errno in its parent's frame, a vfork child
 * may set its caller's locals) comes back: at its release the child sends
 * its copy of the parent's stack, from the parent's stack pointer up (at
 * most SUD_VFORK_WINDOW bytes, within that mapping), and the parent puts
 * it in place before it returns. */
#define SUD_VFORK_WINDOW (64 * 1024)
#define SUD_VFORK_FD_BASE 950
static int vfork_wfd = -1; /* in a vfork child: its end of the channel */
static uint64_t vfork_lo;  /* the parent's stack pointer at the vfork */

int sud_vfork_fd(void) { return vfork_wfd; }

static long gs(long nr, long a, long b, long c) { return sud_gate_syscall6(nr, a, b, c, 0, 0, 0); }

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        long r = gs(SYS_write, fd, (long)c, (long)n);
        if (r == -EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The end of the mapping that holds `addr` (from /proc/self/maps), 0 if none. */
static uint64_t mapping_end(uint64_t addr)
{
    int fd = (int)gs(SYS_openat, AT_FDCWD, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[4096];
    size_t have = 0;
    uint64_t end = 0;
    for (;;) {
        long r = gs(SYS_read, fd, (long)(buf + have), (long)(sizeof buf - have));
        if (r == -EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n')
                continue;
            uint64_t lo = 0, hi = 0;
            size_t j = start;
            for (; j < i && buf[j] != '-'; j++)
                lo = lo * 16 + (uint64_t)(buf[j] <= '9' ? buf[j] - '0' : buf[j] - 'a' + 10);
            for (j++; j < i && buf[j] != ' '; j++)
                hi = hi * 16 + (uint64_t)(buf[j] <= '9' ? buf[j] - '0' : buf[j] - 'a' + 10);
            if (addr >= lo && addr < hi)
                end = hi;
            start = i + 1;
        }
        if (end)
            break;
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf)
            have = 0; /* a line longer than the buffer: not one of ours */
    }
    gs(SYS_close, fd, 0, 0);
    return end;
}

/* In a vfork child: the parent may go on.  With the child's copy of the
 * parent's stack window unless the child exec'd natively. */
void sud_vfork_release(void)
{
    int fd = vfork_wfd;
    if (fd < 0)
        return;
    vfork_wfd = -1;
    uint64_t end = mapping_end(vfork_lo);
    uint64_t hdr[2] = {vfork_lo, 0};
    if (end > vfork_lo)
        hdr[1] = end - vfork_lo < SUD_VFORK_WINDOW ? end - vfork_lo : SUD_VFORK_WINDOW;
    if (write_all(fd, hdr, sizeof hdr) == 0 && hdr[1])
        write_all(fd, (const void *)vfork_lo, hdr[1]);
    gs(SYS_close, fd, 0, 0);
}

/* The parent's wait: until the child's end closes; then its stack window. */
static void vfork_wait(struct sud_thread *t, int rfd)
{
    uint64_t hdr[2];
    size_t got = 0;
    while (got < sizeof hdr) {
        long r = gs(SYS_read, rfd, (long)((char *)hdr + got), (long)(sizeof hdr - got));
        if (r == -EINTR && !t->exit_requested)
            continue; /* the program's signals wait, as for vfork's parent */
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == sizeof hdr && hdr[1] <= SUD_VFORK_WINDOW) {
        /* straight into place: the window is this thread's own stack, unchanged since the trap */
        got = 0;
        while (got < hdr[1]) {
            long r = gs(SYS_read, rfd, (long)(hdr[0] + got), (long)(hdr[1] - got));
            if (r == -EINTR && !t->exit_requested)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    gs(SYS_close, rfd, 0, 0);
}

/* Copy from/to memory that foreign code named, without faulting on a bad
 * pointer: the kernel checks it and answers EFAULT. */
long sud_safe_copy(void *dst, const void *src, size_t n, int to_foreign)
{
    struct iovec local = {to_foreign ? (void *)src : dst, n};
    struct iovec remote = {to_foreign ? dst : (void *)src, n};
    long pid = sud_gate_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    long r = sud_gate_syscall6(to_foreign ? SYS_process_vm_writev : SYS_process_vm_readv, pid,
                               (long)&local, 1, (long)&remote, 1, 0);
    return r == (long)n ? 0 : -EFAULT;
}

static long native_clone(struct sud_frame *f, long nr, const long a[6])
{
    struct sud_clone_req req = {.nr = nr, .fs = f->fs_base, .frame = f};
    for (int i = 0; i < 6; i++)
        req.a[i] = a[i];
    uint64_t flags, child_sp = 0;
    uint64_t cargs[16]; /* a private copy of struct clone_args for clone3 */
    int vfork = nr == SYS_vfork; /* a vfork that becomes a fork (its channel below) */
    uint64_t parent_rsp = f->rsp;

    if (nr == SYS_fork || nr == SYS_vfork) {
        /* vfork would run the child on the parent's dispatch stack: fork instead. */
        req.nr = SYS_fork;
        flags = 0;
    } else if (nr == SYS_clone) {
        flags = (uint64_t)a[0];
        child_sp = (uint64_t)a[1];
        vfork = (flags & SUD_CLONE_VFORK) && (flags & SUD_CLONE_VM) && !(flags & SUD_CLONE_THREAD);
        if ((flags & SUD_CLONE_VFORK) && !child_sp)
            flags &= ~(SUD_CLONE_VM | SUD_CLONE_VFORK);
        req.a[0] = (long)flags;
    } else { /* clone3 */
        long size = a[1];
        if (size < 64 || size > (long)sizeof(cargs))
            return sud_gate_syscall6(nr, a[0], a[1], 0, 0, 0, 0); /* let the kernel say why */
        if (sud_safe_copy(cargs, (void *)a[0], size, 0))
            return -EFAULT;
        flags = cargs[0];
        vfork = (flags & SUD_CLONE_VFORK) && (flags & SUD_CLONE_VM) && !(flags & SUD_CLONE_THREAD);
        if (cargs[5]) /* stack, stack_size */
            child_sp = cargs[5] + cargs[6];
        if ((flags & SUD_CLONE_VFORK) && !child_sp) {
            flags &= ~(SUD_CLONE_VM | SUD_CLONE_VFORK);
            cargs[0] = flags;
        }
        req.a[0] = (long)cargs;
    }
    struct sud_thread *t = f->thread;
    int from_host = in_hazard_range(f->call_addr);
    if (child_sp && (flags & SUD_CLONE_VM) && (flags & SUD_CLONE_THREAD) && t->op != SUD_OP_OFF && !from_host) {
        /* A thread of foreign code: a host thread that arms itself first. */
        uint64_t ptid, ctid, tls;
        if (nr == SYS_clone)
            ptid = (uint64_t)a[2], ctid = (uint64_t)a[3], tls = (uint64_t)a[4];
        else
            ptid = cargs[3], ctid = cargs[2], tls = cargs[7];
        return sud_spawn_guest_thread(f, flags, child_sp, ptid, ctid, tls);
    }
    if (child_sp && (flags & SUD_CLONE_VM) && !(flags & SUD_CLONE_THREAD) && t->op != SUD_OP_OFF && !from_host) {
        /* A process sharing memory (posix_spawn's vfork-like clone): handlers
         * could not run in it without a TLS of its own; make it a fork on a
         * copy of its stack, which continues under dispatch. */
        flags &= ~(SUD_CLONE_VM | SUD_CLONE_VFORK);
        if (nr == SYS_clone) {
            req.a[0] = (long)flags;
        } else {
            cargs[0] = flags;
        }
    }
    if (child_sp && !(flags & SUD_CLONE_VM)) {
        /* A new process on a stack of its own: the kernel is given no stack,
         * so the child returns through this dispatch like a fork (and the
         * interpreter's fork protocol can finish in it); it resumes with
         * RSP = its stack (below). */
        if (nr == SYS_clone) {
            req.a[1] = 0;
        } else {
            cargs[5] = cargs[6] = 0;
            req.a[0] = (long)cargs;
        }
    } else if (child_sp) {
        /* The child starts on its own stack at the foreign code's next
         * instruction; the gate finds that address just below the stack top,
         * and below it, for a forked child, how to re-arm. */
        uint64_t slots[6] = {0, 0, 0, 0, 0, f->rip}; /* sel value, len, offset, op, &sel, rip */
        if (!(flags & SUD_CLONE_VM) && t->op != SUD_OP_OFF) {
            slots[0] = f->selector;
            slots[1] = t->len;
            slots[2] = t->offset;
            slots[3] = (uint64_t)t->op;
            slots[4] = (uint64_t)&t->selector;
        }
        if (sud_safe_copy((void *)(child_sp - sizeof slots), slots, sizeof slots, 1))
            return -EFAULT;
        req.newstack = 1;
    }
    /* A new process made for foreign code: the interpreter's fork protocol
     * around it, so that the child finds the GIL and the import lock free
     * (another thread may be inside a Python handler right now).  The
     * host's own forks (from its libc: os.fork) take care of that already. */
    int protocol = !(flags & SUD_CLONE_VM) && sud_fork_hook && !from_host;
    int chan[2] = {-1, -1};
    vfork = vfork && !(flags & SUD_CLONE_VM) && !from_host && t->guest_depth > 0;
    if (vfork && gs(SYS_pipe2, (long)chan, O_CLOEXEC, 0) == 0) {
        for (int i = 0; i < 2; i++) { /* among pysud's own descriptors, out of the program's way */
            long hi = gs(SYS_fcntl, chan[i], F_DUPFD_CLOEXEC, SUD_VFORK_FD_BASE);
            if (hi >= 0) {
                gs(SYS_close, chan[i], 0, 0);
                chan[i] = (int)hi;
            }
        }
    }
    if (protocol) {
        if (!(f->flags & SUD_FRAME_XSAVED))
            sud_xsave(f); /* the interpreter may use vector registers */
        sud_fork_hook(SUD_FORK_PREPARE);
    }
    long r = sud_gate_clone(&req);
    if (r == -EINTR && f->thread->vrestart == 1)
        f->thread->vrestart = 2; /* a signal stopped it (ERESTARTNOINTR): it always runs again */
    if (req.newstack && sud_have_fsgsbase)
        sud_wrfsbase(f->thread->host_fs);
    if (r == 0 && !(flags & SUD_CLONE_VM)) {
        sud_rearm_after_fork(); /* a forked child continues under dispatch, as armed */
        if (child_sp)
            f->rsp = child_sp;
        if (vfork_wfd >= 0) { /* a vfork child's fork: the channel is its parent's, not this one's */
            gs(SYS_close, vfork_wfd, 0, 0);
            vfork_wfd = -1;
        }
        if (chan[0] >= 0) {
            gs(SYS_close, chan[0], 0, 0);
            vfork_wfd = chan[1];
            vfork_lo = parent_rsp;
        }
    } else if (chan[0] >= 0) {
        gs(SYS_close, chan[1], 0, 0);
    }
    if (protocol)
        sud_fork_hook(r == 0 ? SUD_FORK_CHILD : SUD_FORK_PARENT);
    if (r != 0 && chan[0] >= 0) {
        /* (after the fork protocol: the program's other threads keep the interpreter meanwhile) */
        if (r > 0)
            vfork_wait(t, chan[0]);
        else
            gs(SYS_close, chan[0], 0, 0);
    }
    return r;
}

/* A call of a program's thread, trapped at its syscall instruction, can be
 * cancelled before it starts when a signal is held for the program: the
 * signal is delivered first and the call re-run after the handler, as if the
 * signal had come just before the program's syscall (sud_vsig_deliver). */
static int cancellable(const struct sud_frame *f)
{
    const struct sud_thread *t = f->thread;
    return t->guest_depth > 0 && t->group && !f->prev && (f->flags & SUD_FRAME_TRAP);
}

static long not_started(struct sud_thread *t)
{
    t->vrestart = 2;
    return -EINTR;
}

long sud_native(struct sud_frame *f, long nr, const long a[6])
{
    if (f->arch == SUD_AUDIT_ARCH_I386)
        return sud_gate_int80(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    struct sud_thread *t = f->thread;
    int cp = cancellable(f);
    if (cp && (t->vpending || t->exit_requested))
        return not_started(t);
    switch (nr) {
    case SYS_clone:
    case SYS_clone3:
    case SYS_fork:
    case SYS_vfork:
        return native_clone(f, nr, a);
    case SYS_exit:
        /* A thread of a guest program leaves it; the host thread lives on. */
        sud_vfork_release(); /* a vfork child that ends: its parent goes on */
        if (t->guest_depth > 0 && !f->prev) {
            f->flags |= SUD_FRAME_EXIT | SUD_FRAME_DIRTY;
            return a[0];
        }
        break;
    case SYS_exit_group:
        sud_vfork_release();
        if (t->guest_depth > 0 && !f->prev) {
            sud_group_exit(t, a[0] & 0xff);
            f->flags |= SUD_FRAME_EXIT | SUD_FRAME_DIRTY;
            return a[0] & 0xff;
        }
        break;
    case SYS_rt_sigprocmask: {
        /* SIGSYS must stay deliverable: a trap with it blocked kills the process;
         * so must the kick that ends a guest program's threads. */
        long r = sud_gate_syscall6(nr, a[0], a[1], a[2], a[3], 0, 0);
        t->faults_blocked = 0;
        unsigned long sys = (1ul << (SIGSYS - 1)) | (1ul << (SUD_SIG_KICK - 1));
        sud_gate_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&sys, 0, 8, 0, 0);
        return r;
    }
    case SYS_rt_sigaction:
        /* A program's dispositions are virtual (sud_vsig.c). */
        if (t->guest_depth > 0)
            return sud_vsig_sigaction(a[0], (uint64_t)a[1], (uint64_t)a[2], a[3]);
        /* SIGSYS is the mechanism's own; the disposition may be read, not changed. */
        if ((a[0] == SIGSYS || a[0] == SUD_SIG_KICK) && a[1])
            return -EINVAL;
        break;
    case SYS_sigaltstack: {
        /* The signal stack holds the thread's dispatch state: keep it, and
         * give the foreign code a virtual one. */
        stack_t nss, oss = t->virt_altstack;
        uint64_t lo = (uint64_t)oss.ss_sp;
        int on = t->virt_altstack_set && !(oss.ss_flags & SS_DISABLE) && f->rsp > lo && f->rsp <= lo + oss.ss_size;
        if (on)
            oss.ss_flags |= SS_ONSTACK;
        if (a[1] && sud_safe_copy((void *)a[1], &oss, sizeof(stack_t), 1))
            return -EFAULT;
        if (a[0] && on)
            return -EPERM; /* the kernel's rule: not while running on it */
        if (a[0]) {
            if (sud_safe_copy(&nss, (void *)a[0], sizeof(nss), 0))
                return -EFAULT;
            if (!(nss.ss_flags & SS_DISABLE) && nss.ss_size < 2048 /* MINSIGSTKSZ */)
                return -ENOMEM;
            t->virt_altstack = nss;
            t->virt_altstack_set = 1;
        }
        return 0;
    }
    case SYS_tkill:
    case SYS_tgkill:
        /* 32 and 33 are also the host glibc's: the program's are sent marked. */
        if (t->guest_depth > 0)
            return sud_vsig_send(nr, a);
        break;
    case SYS_execve:
    case SYS_execveat:
        /* The kernel's execve keeps ignored signals ignored: the program's are virtual. */
        if (t->guest_depth > 0) {
            sud_vsig_exec(1);
            long r = sud_gate_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            sud_vsig_exec(0);
            return r;
        }
        break;
    default:
        break;
    }
    if (cp) {
        long r;
        do
            r = sud_gate_syscall_cp(t, nr, a);
        while (r == -SUD_CP_RERUN);
        return r == -SUD_CP_NOT_STARTED ? not_started(t) : r;
    }
    return sud_gate_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void frame_args(const struct sud_frame *f, long a[6])
{
    if (f->arch == SUD_AUDIT_ARCH_I386) {
        a[0] = (long)(uint32_t)f->rbx;
        a[1] = (long)(uint32_t)f->rcx;
        a[2] = (long)(uint32_t)f->rdx;
        a[3] = (long)(uint32_t)f->rsi;
        a[4] = (long)(uint32_t)f->rdi;
        a[5] = (long)(uint32_t)f->rbp;
    } else {
        a[0] = (long)f->rdi;
        a[1] = (long)f->rsi;
        a[2] = (long)f->rdx;
        a[3] = (long)f->r10;
        a[4] = (long)f->r8;
        a[5] = (long)f->r9;
    }
}

static void record_deferred(struct sud_thread *t, const struct sud_frame *f, const long a[6])
{
    if (t->ndeferred >= SUD_DEFERRED_RING) {
        t->deferred_lost++;
        return;
    }
    struct sud_deferred *d = &t->deferred[t->ndeferred++];
    d->nr = f->nr;
    for (int i = 0; i < 6; i++)
        d->args[i] = (uint64_t)a[i];
    d->result = f->rax;
    d->call_addr = f->call_addr;
}

struct sud_frame *sud_dispatch(struct sud_frame *f)
{
    struct sud_thread *t = f->thread;
    struct sud_policy *p = t->policy;
    if ((f->flags & SUD_FRAME_DIRECT) && (f->flags & SUD_FRAME_TRAP) && !sud_rewrite_dispatched(t, f))
        return f; /* a rewritten site the kernel would not dispatch now: its own syscall runs it */
    if (p && f->nr < p->nrenumber && f->arch == SUD_AUDIT_ARCH_X86_64 && f->call_addr - p->keep_lo >= p->keep_len)
        f->nr = p->renumber[f->nr]; /* a site with the other numbering (the policy's renumber) */
    f->prev = t->top;
    t->top = f;

    const struct sud_action *a;
    if (!p) {
        static const struct sud_action native = {SUD_ACT_NATIVE, 0, 0};
        a = &native;
    } else if (f->arch == SUD_AUDIT_ARCH_X86_64 && f->nr < SUD_NSYSCALLS) {
        a = &p->act[f->nr];
        __atomic_add_fetch(&p->count[f->nr], 1, __ATOMIC_RELAXED);
    } else {
        a = &p->other;
        __atomic_add_fetch(&p->count_other, 1, __ATOMIC_RELAXED);
    }

    if (p && (f->flags & SUD_FRAME_DIRECT))
        __atomic_add_fetch(&p->count_direct, 1, __ATOMIC_RELAXED);
    else if (p && p->rewrite && (f->flags & SUD_FRAME_TRAP))
        sud_rewrite_trapped(f, p->rewrite_locator); /* later calls from this site: no trap */

    int kind = a->kind, deferred = 0;
    long args[6];
    if (kind == SUD_ACT_TRACE && !(p->trace && sud_trace_room(p->trace, (long)f->nr)))
        kind = SUD_ACT_PYTHON; /* the ring is full: the tracer's handler empties it */
    if (kind == SUD_ACT_PYTHON && a != &p->other && !sud_filter_wants(p, f))
        kind = SUD_ACT_NATIVE; /* the handler would only say NATIVE for this path */
    if (kind == SUD_ACT_PYTHON) {
        if (!sud_python_hook || !p->hook_ctx) {
            kind = SUD_ACT_NATIVE;
        } else if (a->hazard && in_hazard_range(f->call_addr)) {
            /* The host's libc may hold a lock that Python would need
             * (malloc's arena lock around mmap, the GIL's mutex around
             * futex): run it here and tell Python afterwards. */
            kind = SUD_ACT_NATIVE;
            deferred = 1;
        }
    }
    switch (kind) {
    case SUD_ACT_NATIVE:
        frame_args(f, args);
        f->rax = (uint64_t)sud_native(f, (long)f->nr, args);
        if (deferred)
            record_deferred(t, f, args);
        break;
    case SUD_ACT_TRACE: {
        frame_args(f, args);
        uint64_t off = sud_trace_entry(p->trace, t, (long)f->nr, args);
        f->rax = (uint64_t)sud_native(f, (long)f->nr, args);
        /* a call cancelled before it started is re-run after the handler: strace's "? ERESTARTNOINTR" */
        long shown = t->vrestart == 2 && (long)f->rax == -EINTR ? -SUD_CP_NOT_STARTED : (long)f->rax;
        sud_trace_exit(p->trace, t, (long)f->nr, args, shown, off);
        break;
    }
    case SUD_ACT_ERRNO:
        f->rax = (uint64_t)-a->value;
        break;
    case SUD_ACT_RETURN:
        f->rax = (uint64_t)a->value;
        break;
    default:
        sud_xsave(f);
        sud_python_hook(f);
        break;
    }
    /* Signals held during the dispatch, and an exit, are sud_resume's last check. */
    t->top = f->prev;
    return f;
}

/* From sud_resume (host FS not yet restored: the frame's FS is live): signals
 * held for the program go to it now, or the program ends.  1 if the frame
 * was changed (sud_resume starts over), 0 if there is nothing to do here (a
 * nested dispatch: the outermost one delivers). */
int sud_resume_pending(struct sud_frame *f)
{
    struct sud_thread *t = f->thread;
    if (t->guest_depth <= 0 || !t->group || f->prev || t->top)
        return 0;
    if (!t->vpending && !t->exit_requested)
        return 0;
    t->selector = SUD_FILTER_ALLOW;
    if (sud_get_fs() != t->host_fs)
        sud_set_fs(t->host_fs);
    if (t->vpending && !t->exit_requested)
        sud_vsig_deliver(f);
    if (t->exit_requested) {
        /* The program ended (exit_group elsewhere, or a signal it dies of). */
        if (t->vfatal) {
            sud_group_exit(t, 128 + t->vfatal);
            t->vfatal = 0;
        }
        f->rax = (uint64_t)sud_group_status;
        f->flags |= SUD_FRAME_EXIT | SUD_FRAME_DIRTY;
    }
    t->vrestart = 0;
    return 1;
}

/* Exposed for the glue: a frame's arguments as the kernel would read them. */
void sud_frame_args(const struct sud_frame *f, long a[6]) { frame_args(f, a); }
