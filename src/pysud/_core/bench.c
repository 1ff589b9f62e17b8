/* bench.c - benchmark loops (pysud bench): the syscall instructions here are
 * outside the gate, so they trap when the thread's selector says BLOCK.
 */
#include "core.h"
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

static inline long raw_syscall0(long nr)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
    return r;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* bench_loop(nr, n, block) -> ns for n calls of syscall nr (no arguments),
 * with the selector at BLOCK during the loop when block is true. */
PyObject *m_bench_loop(PyObject *m, PyObject *args)
{
    (void)m;
    long nr, n;
    int block;
    if (!PyArg_ParseTuple(args, "llp", &nr, &n, &block))
        return NULL;
    struct sud_thread *t = sud_self;
    if (block && (!t || t->op == SUD_OP_OFF)) {
        PyErr_SetString(PyExc_RuntimeError, "this thread is not armed");
        return NULL;
    }
    uint64_t t0, t1;
    Py_BEGIN_ALLOW_THREADS if (block) t->selector = SUD_FILTER_BLOCK;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        raw_syscall0(nr);
    t1 = now_ns();
    if (block)
        t->selector = SUD_FILTER_ALLOW;
    Py_END_ALLOW_THREADS return PyLong_FromUnsignedLongLong(t1 - t0);
}

/* bench_floor(nr, n, run_call=False) -> ns for n trapped calls answered by a
 * minimal C SIGSYS handler (the floor any SUD design pays), which runs the
 * call natively when run_call is true.  The thread must be armed. */
PyObject *m_bench_floor(PyObject *m, PyObject *args)
{
    (void)m;
    long nr, n;
    int run_call = 0;
    if (!PyArg_ParseTuple(args, "ll|p", &nr, &n, &run_call))
        return NULL;
    struct sud_thread *t = sud_self;
    if (!t || t->op != SUD_OP_EXCLUSIVE_ON || !t->gate_allowed) {
        PyErr_SetString(PyExc_RuntimeError, "arm this thread in exclusive mode with the gate allowed first");
        return NULL;
    }
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } ksa = {run_call ? (void *)sud_floor_native_handler : (void *)sud_floor_handler,
             SA_SIGINFO | 0x04000000 /* SA_RESTORER */, sud_gate_restorer, 0},
      kold;
    uint64_t t0 = 0, t1 = 0;
    long r;
    Py_BEGIN_ALLOW_THREADS r = sud_gate_syscall6(SYS_rt_sigaction, SIGSYS, (long)&ksa, (long)&kold, 8, 0, 0);
    if (r == 0) {
        t->selector = SUD_FILTER_BLOCK;
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            raw_syscall0(nr);
        t1 = now_ns();
        t->selector = SUD_FILTER_ALLOW;
        sud_gate_syscall6(SYS_rt_sigaction, SIGSYS, (long)&kold, 0, 8, 0, 0);
    }
    Py_END_ALLOW_THREADS if (r) return errno_error((int)r);
    return PyLong_FromUnsignedLongLong(t1 - t0);
}
