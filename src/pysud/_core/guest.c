/* guest.c - running a program in this process: run_guest() and what the program's
 * threads, signals and faults expose to Python (sud_guest.c, sud_vsig.c).
 */
#include "core.h"
#include <sys/syscall.h>
#include <time.h>

/* The program's mask when its last run_guest(mask=...) on this thread ended. */
static __thread uint64_t guest_mask_at_end;

/* Signals held back in the kernel between images (run_guest with a mask):
 * all but the synchronous faults, SIGSYS and the kick, which the core needs. */
#define BIT(s) (1ull << ((s) - 1))
static const uint64_t between_images =
    ~(BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGSEGV) | BIT(SIGBUS) | BIT(SIGILL) | BIT(SIGFPE) | BIT(SIGTRAP) |
      BIT(SIGSYS) | BIT(SUD_SIG_KICK));

/* run_guest(entry, sp, mask=-1) -> int: run a loaded program on this (armed)
 * thread until a handler calls exit_guest(); the GIL is released meanwhile.
 * With a mask (the caller holds the asynchronous signals blocked while it
 * loads an image): the program starts with that mask once its signals are
 * virtual, and when it ends the asynchronous signals are blocked again before
 * the host's handlers are back, so none reaches Python between two images;
 * guest_mask() is then the program's mask (execve keeps it).  The mask is 64
 * bits, signal 64 the top one; -1 (every bit: a kernel mask never holds
 * SIGKILL's) means none.  With keep_pending (an execve's next image), the
 * signals that were pending for the program when the last run_guest with a
 * mask ended on this thread are pending for it again (one of each number: a
 * real-time signal queued twice arrives once). */
PyObject *m_run_guest(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long entry, sp, mask = ~0ull;
    int keep_pending = 0;
    if (!PyArg_ParseTuple(args, "KK|Kp", &entry, &sp, &mask, &keep_pending))
        return NULL;
    struct sud_thread *t = sud_self;
    if (!t || t->op == SUD_OP_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "this thread is not armed");
        return NULL;
    }
    if (t->guest_depth) {
        PyErr_SetString(PyExc_RuntimeError, "a guest program is already running on this thread");
        return NULL;
    }
    long r;
    t->guest_depth++;
    sud_guest_register(t, t->tid);
    sud_vsig_begin();
    /* The program's mask, set only now that its signals are virtual: signals
     * the caller blocked while it loaded the image reach the program. */
    if (mask != ~0ull)
        sud_gate_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0, 0);
    sud_guest_kept_signals(t, keep_pending);
    t->faults_blocked = 0;
    Py_BEGIN_ALLOW_THREADS r = sud_run_guest(entry, sp, t);
    /* The program has ended on this thread: its other threads end too (a
     * thread's exit here is the program's exit), before its memory goes. */
    for (int i = 0; sud_group_count(t->group, t) > 0; i++) {
        if (i % 100 == 0)
            sud_group_exit(t, t->exit_requested ? sud_group_status : r);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (t->exit_requested)
        r = sud_group_status;
    sud_guest_unregister(t);
    /* Signals held for the program when it ended stay with it (with a mask:
     * kept for an execve's next image). */
    sud_guest_keep_signals(t, mask != ~0ull);
    if (mask != ~0ull) {
        uint64_t held = between_images, was = 0;
        sud_gate_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&held, (long)&was, 8, 0, 0);
        guest_mask_at_end = was;
    }
    sud_vsig_end();
    Py_END_ALLOW_THREADS t->guest_depth--;
    return PyLong_FromLong(r);
}

/* guest_mask() -> the program's signal mask when run_guest(mask=...) last ended here. */
PyObject *m_guest_mask(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyLong_FromUnsignedLongLong(guest_mask_at_end);
}

/* direct_entry_address() -> the flip-switch entry (see sud_direct_entry). */
PyObject *m_direct_entry_address(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)sud_direct_entry);
}

/* thread_block() -> this armed thread's block, the RCX sud_direct_entry wants. */
PyObject *m_thread_block(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t || t->op == SUD_OP_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "this thread is not armed");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)t);
}

/* reset_signals(keep_ignored, ignored=0): a new program starts with default
 * dispositions, but for the signals in the mask `ignored` (bit s-1), which
 * start ignored (those its parent left ignored); after execve, the ones the
 * program ignored stay ignored (keep_ignored). */
PyObject *m_reset_signals(PyObject *m, PyObject *args)
{
    (void)m;
    int keep;
    unsigned long long ignored = 0;
    if (!PyArg_ParseTuple(args, "p|K", &keep, &ignored))
        return NULL;
    sud_vsig_reset(keep, (uint64_t)ignored);
    Py_RETURN_NONE;
}

/* last_fault() -> None or (sig, si_code, address, {register: value}) */
PyObject *m_last_fault(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    if (!sud_last_fault.sig)
        Py_RETURN_NONE;
    static const char *names[23] = {"r8",  "r9",  "r10", "r11", "r12", "r13",    "r14", "r15",
                                    "rdi", "rsi", "rbp", "rbx", "rdx", "rax",    "rcx", "rsp",
                                    "rip", "rflags", "csgsfs", "err", "trapno", "oldmask", "cr2"};
    PyObject *regs = PyDict_New();
    if (!regs)
        return NULL;
    for (int i = 0; i < 23; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(sud_last_fault.gregs[i]);
        if (!v || PyDict_SetItemString(regs, names[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(regs);
            return NULL;
        }
        Py_DECREF(v);
    }
    return Py_BuildValue("(iiKN)", sud_last_fault.sig, sud_last_fault.code,
                         (unsigned long long)sud_last_fault.addr, regs);
}

/* vfork_release(): an in-process execve passed the kernel's checks (sud_dispatch.c, "vfork"). */
PyObject *m_vfork_release(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    sud_vfork_release();
    Py_RETURN_NONE;
}

PyObject *m_vfork_fd(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyLong_FromLong(sud_vfork_fd());
}
