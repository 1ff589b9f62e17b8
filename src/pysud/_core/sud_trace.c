/* sud_trace.c - the trace recorder: a call's registers, result and the bytes it
 * names, appended to a ring as a record, without entering Python.
 *
 * What to capture is data from Python (per syscall number, up to SUD_CAP_OPS
 * operations: "the NUL-terminated string at argument 1", "min(result, 32)
 * bytes at argument 1 after the call", ...).  The core does not know what a
 * record means; pysud.trace decodes records in batches, strace's way.
 *
 * Runs in the fast path (vector registers of the trapped code live: general
 * registers only, no libc) and, for signal records, in signal context on a
 * thread that is in the program's own code or at the end of a dispatch.
 * Memory of the program is read by a copy whose faults the core's handler
 * recovers (or with process_vm_readv), so a bad pointer is a capture marked
 * "fault", never a crash.
 */
#define _GNU_SOURCE
#pragma GCC target("general-regs-only")
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "sud.h"

static void copy_bytes(void *dst, const void *src, uint64_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n)::"memory");
}

static void zero_bytes(void *dst, uint64_t n)
{
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(0) : "memory");
}

static void lock(struct sud_trace *tr, int tid)
{
    int spins = 0;
    for (;;) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&tr->lock, &expected, tid, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        if (++spins > 64) {
            sud_gate_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
            spins = 0;
        } else {
            __builtin_ia32_pause();
        }
    }
}

static void unlock(struct sud_trace *tr) { __atomic_store_n(&tr->lock, 0, __ATOMIC_RELEASE); }

static uint64_t now_ns(const struct sud_trace *tr)
{
    struct timespec ts;
    long clock = (tr->flags & SUD_TRACE_CPUTIME) ? CLOCK_THREAD_CPUTIME_ID : CLOCK_REALTIME;
    sud_gate_syscall6(SYS_clock_gettime, clock, (long)&ts, 0, 0, 0, 0);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Can this thread take the core's recoverable copy (sud_probe_copy)?  Not
 * when its mask blocks SIGSEGV or SIGBUS (musl's pthread_exit blocks every
 * signal): a fault then would kill the process.  Cached per thread
 * (faults_blocked).  Also for call.read/call.write (memory.c). */
int sud_faults_deliverable(void)
{
    struct sud_thread *t = sud_self;
    if (!t)
        return 0;
    if (!t->faults_blocked) {
        uint64_t mask = ~0ull, faults = (1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1));
        sud_gate_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&mask, 8, 0, 0);
        t->faults_blocked = (mask & faults) ? 2 : 1;
    }
    return t->faults_blocked == 1;
}

/* Read n bytes of the program's memory at src; returns bytes read or -errno.
 * While the core's fault handler is installed (a program runs) a plain copy
 * that it recovers, when the thread can take a fault; otherwise the kernel
 * checks the pointer. */
static long peek(int tid, void *dst, uint64_t src, uint64_t n)
{
    if (sud_vsig_active() && src + n >= src && src + n <= 0x800000000000ull && sud_faults_deliverable())
        return sud_probe_copy(dst, (const void *)src, n) ? -EFAULT : (long)n;
    struct iovec local = {dst, n}, remote = {(void *)src, n};
    return sud_gate_syscall6(SYS_process_vm_readv, tid, (long)&local, 1, (long)&remote, 1, 0);
}

static uint64_t align8(uint64_t v) { return (v + 7) & ~7ull; }

/* Append the captures of one phase at out; returns the bytes used. */
static uint64_t capture(const struct sud_trace *tr, int tid, long nr, int phase, const long a[6], long ret,
                        uint8_t *out, uint32_t *ncap)
{
    uint8_t *p = out;
    for (int i = 0; i < SUD_CAP_OPS; i++) {
        const struct sud_cap_op *op = &tr->cap[nr][i];
        if (!op->kind)
            break;
        if (op->phase != phase)
            continue;
        if (phase == SUD_CAP_EXIT && ret < 0 && ret > -4096)
            continue; /* a failed call wrote nothing */
        struct sud_cap *c = (struct sud_cap *)p;
        uint8_t *data = p + sizeof *c;
        uint64_t addr = (uint64_t)a[op->arg], want;
        c->arg = op->arg;
        c->phase = (uint8_t)phase;
        c->status = SUD_CAP_OK;
        c->len = 0;
        c->addr = addr;
        if (!addr) {
            c->status = SUD_CAP_NULL;
            goto next;
        }
        switch (op->kind) {
        case SUD_CAP_CSTR: {
            uint64_t got = 0;
            c->status = SUD_CAP_TRUNC;
            while (got < op->max) {
                uint64_t chunk = 4096 - ((addr + got) & 4095);
                if (chunk > op->max - got)
                    chunk = op->max - got;
                long r = peek(tid, data + got, addr + got, chunk);
                if (r <= 0) {
                    if (!got)
                        c->status = SUD_CAP_FAULT;
                    break;
                }
                uint64_t k = 0;
                while (k < (uint64_t)r && data[got + k])
                    k++;
                if (k < (uint64_t)r) {
                    got += k + 1; /* with its NUL: complete */
                    c->status = SUD_CAP_OK;
                    break;
                }
                got += (uint64_t)r;
            }
            c->len = (uint32_t)got;
            goto next;
        }
        case SUD_CAP_RET:
            want = ret < 0 ? 0 : (uint64_t)ret;
            break;
        case SUD_CAP_ARG:
            want = (uint64_t)a[op->lenarg] * op->scale + op->plus;
            break;
        default: /* SUD_CAP_FIXED */
            want = op->plus;
            break;
        }
        if (want > op->max)
            want = op->max;
        if (want) {
            long r = peek(tid, data, addr, want);
            if (r != (long)want) {
                c->status = SUD_CAP_FAULT;
                want = 0;
            }
        }
        c->len = (uint32_t)want;
    next:
        p += sizeof *c + align8(c->len);
        (*ncap)++;
    }
    return (uint64_t)(p - out);
}

int sud_trace_room(const struct sud_trace *tr, long nr)
{
    return __atomic_load_n(&tr->pos, __ATOMIC_RELAXED) + tr->maxrec[nr] <= tr->size;
}

uint64_t sud_trace_entry(struct sud_trace *tr, struct sud_thread *t, long nr, const long a[6])
{
    uint64_t when = (tr->flags & SUD_TRACE_TIMING) ? now_ns(tr) : 0;
    lock(tr, t->tid);
    uint64_t off = tr->pos;
    if (off + tr->maxrec[nr] > tr->size) { /* another thread filled it meanwhile */
        tr->lost++;
        unlock(tr);
        return ~0ull;
    }
    struct sud_rec *r = (struct sud_rec *)(tr->data + off);
    r->kind = SUD_REC_CALL;
    r->nr = (uint16_t)nr;
    r->tid = t->tid;
    r->ncap = 0;
    r->t_entry = when;
    r->t_exit = 0;
    for (int i = 0; i < 6; i++)
        r->args[i] = a[i];
    r->ret = 0;
    uint64_t used = sizeof *r + capture(tr, t->tid, nr, SUD_CAP_ENTRY, a, 0, (uint8_t *)(r + 1), &r->ncap);
    r->size = (uint32_t)used;
    tr->last = off;
    __atomic_store_n(&tr->pos, off + used, __ATOMIC_RELEASE);
    unlock(tr);
    return off;
}

void sud_trace_exit(struct sud_trace *tr, struct sud_thread *t, long nr, const long a[6], long ret, uint64_t off)
{
    uint64_t when = (tr->flags & SUD_TRACE_TIMING) ? now_ns(tr) : 0;
    lock(tr, t->tid);
    uint64_t pos = tr->pos;
    struct sud_rec *r = (struct sud_rec *)(tr->data + off);
    if (off != ~0ull && tr->last == off && pos == off + r->size && r->tid == t->tid && r->kind == SUD_REC_CALL) {
        /* Nothing came between entry and exit: complete the record in place. */
        uint64_t used = capture(tr, t->tid, nr, SUD_CAP_EXIT, a, ret, tr->data + pos, &r->ncap);
        r->ret = ret;
        r->t_exit = when;
        r->size += (uint32_t)used;
        r->kind = SUD_REC_FULL;
        __atomic_store_n(&tr->pos, pos + used, __ATOMIC_RELEASE);
        unlock(tr);
        return;
    }
    if (pos + tr->maxrec[nr] > tr->size) {
        tr->lost++;
        unlock(tr);
        return;
    }
    r = (struct sud_rec *)(tr->data + pos);
    r->kind = SUD_REC_EXIT;
    r->nr = (uint16_t)nr;
    r->tid = t->tid;
    r->ncap = 0;
    r->t_entry = 0;
    r->t_exit = when;
    for (int i = 0; i < 6; i++)
        r->args[i] = a[i];
    r->ret = ret;
    uint64_t used = sizeof *r + capture(tr, t->tid, nr, SUD_CAP_EXIT, a, ret, (uint8_t *)(r + 1), &r->ncap);
    r->size = (uint32_t)used;
    tr->last = pos;
    __atomic_store_n(&tr->pos, pos + used, __ATOMIC_RELEASE);
    unlock(tr);
}

void sud_trace_signal(struct sud_trace *tr, struct sud_thread *t, int sig, const siginfo_t *si)
{
    if (__atomic_load_n(&tr->lock, __ATOMIC_ACQUIRE) == t->tid)
        return; /* interrupted our own recording: cannot record here */
    uint64_t when = (tr->flags & SUD_TRACE_TIMING) ? now_ns(tr) : 0;
    lock(tr, t->tid);
    uint64_t pos = tr->pos, used = sizeof(struct sud_rec) + sizeof(siginfo_t);
    if (pos + used > tr->size) {
        tr->lost++;
        unlock(tr);
        return;
    }
    struct sud_rec *r = (struct sud_rec *)(tr->data + pos);
    zero_bytes(r, sizeof *r);
    r->kind = SUD_REC_SIGNAL;
    r->nr = (uint16_t)sig;
    r->tid = t->tid;
    r->t_entry = when;
    copy_bytes(r + 1, si, sizeof(siginfo_t));
    r->size = (uint32_t)used;
    tr->last = pos;
    __atomic_store_n(&tr->pos, pos + used, __ATOMIC_RELEASE);
    unlock(tr);
}

/* A program's signal handler returning (rt_sigreturn, run by the core from its
 * gate): a completed record of call 15 whose argument 0 is the first 8 bytes of
 * the signal mask it restores and whose result is the RAX it restores, which is
 * what strace prints: rt_sigreturn({mask=[...]}) = RAX.  frame is the ucontext
 * at the program's RSP (already known to be a readable signal frame). */
void sud_trace_sigreturn(struct sud_trace *tr, struct sud_thread *t, uint64_t frame)
{
    if (__atomic_load_n(&tr->lock, __ATOMIC_ACQUIRE) == t->tid)
        return;
    uint64_t mask = 0, rax = 0;
    if (sud_safe_copy(&mask, (const void *)(frame + offsetof(ucontext_t, uc_sigmask)), 8, 0) ||
        sud_safe_copy(&rax, (const void *)(frame + offsetof(ucontext_t, uc_mcontext.gregs[REG_RAX])), 8, 0))
        return;
    uint64_t when = (tr->flags & SUD_TRACE_TIMING) ? now_ns(tr) : 0;
    lock(tr, t->tid);
    uint64_t pos = tr->pos;
    if (pos + sizeof(struct sud_rec) > tr->size) {
        tr->lost++;
        unlock(tr);
        return;
    }
    struct sud_rec *r = (struct sud_rec *)(tr->data + pos);
    zero_bytes(r, sizeof *r);
    r->size = sizeof *r;
    r->kind = SUD_REC_FULL;
    r->nr = SYS_rt_sigreturn;
    r->tid = t->tid;
    r->t_entry = r->t_exit = when;
    r->args[0] = (int64_t)mask;
    r->ret = (int64_t)rax;
    tr->last = pos;
    __atomic_store_n(&tr->pos, pos + sizeof *r, __ATOMIC_RELEASE);
    unlock(tr);
}

/* Move the records out: the ring continues in *spare (tr->size bytes), and
 * *spare becomes the buffer that holds them; returns their bytes.  Only a
 * pointer swap under the lock (the program's threads record while the caller
 * copies them out), so a decoder thread that is preempted holds no one up. */
uint64_t sud_trace_take(struct sud_trace *tr, int tid, uint8_t **spare)
{
    lock(tr, tid);
    uint64_t n = tr->pos;
    uint8_t *full = tr->data;
    tr->data = *spare;
    tr->pos = 0;
    tr->last = ~0ull;
    unlock(tr);
    *spare = full;
    return n;
}

/* In a forked child: the parent's records are the parent's. */
void sud_trace_forget(struct sud_trace *tr)
{
    tr->pos = 0;
    tr->last = ~0ull;
    __atomic_store_n(&tr->lock, 0, __ATOMIC_RELEASE);
}
