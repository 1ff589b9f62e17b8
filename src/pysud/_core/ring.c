/* ring.c - records out of the core's rings: the trace recorder's ring (sud_trace.c)
 * set-up and records, and the per-thread ring of calls run in C (deferred).
 */
#include "core.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

PyObject *policy_trace_start(PolicyObject *self, PyObject *args)
{
    unsigned long long size;
    unsigned int flags;
    if (!PyArg_ParseTuple(args, "KI", &size, &flags))
        return NULL;
    if (self->p->trace) {
        PyErr_SetString(PyExc_RuntimeError, "this policy already records");
        return NULL;
    }
    if (size < 65536 || size > (1ull << 32)) {
        PyErr_SetString(PyExc_ValueError, "ring size must be 64 KiB .. 4 GiB");
        return NULL;
    }
    struct sud_trace *tr = mmap(NULL, sizeof *tr, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tr == MAP_FAILED)
        return PyErr_SetFromErrno(PyExc_OSError);
    tr->data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    self->trace_stage = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tr->data == MAP_FAILED || self->trace_stage == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        if (tr->data != MAP_FAILED)
            munmap(tr->data, size);
        if (self->trace_stage != MAP_FAILED)
            munmap(self->trace_stage, size);
        self->trace_stage = NULL;
        munmap(tr, sizeof *tr);
        return NULL;
    }
    tr->size = size;
    tr->flags = flags;
    tr->last = ~0ull;
    __atomic_store_n(&self->p->trace, tr, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

/* trace_capture(nr, maxrec, ops): ops a sequence of (phase, kind, arg, lenarg, scale, plus, max) */
PyObject *policy_trace_capture(PolicyObject *self, PyObject *args)
{
    long nr;
    unsigned int maxrec;
    PyObject *ops;
    if (!PyArg_ParseTuple(args, "lIO", &nr, &maxrec, &ops))
        return NULL;
    struct sud_trace *tr = self->p->trace;
    if (!tr) {
        PyErr_SetString(PyExc_RuntimeError, "trace_start() first");
        return NULL;
    }
    if (nr < 0 || nr >= SUD_NSYSCALLS) {
        PyErr_Format(PyExc_ValueError, "syscall number %ld out of range", nr);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(ops, "ops must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > SUD_CAP_OPS || maxrec > tr->size / 4) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many capture operations or too large a record");
        return NULL;
    }
    struct sud_cap_op cap[SUD_CAP_OPS];
    memset(cap, 0, sizeof cap);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char phase, kind, arg, lenarg;
        unsigned int scale, plus, max;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "bbbbIII", &phase, &kind, &arg, &lenarg, &scale,
                              &plus, &max)) {
            Py_DECREF(seq);
            return NULL;
        }
        if (phase < SUD_CAP_ENTRY || phase > SUD_CAP_EXIT || kind < SUD_CAP_CSTR || kind > SUD_CAP_FIXED ||
            arg > 5 || lenarg > 5 || scale > 65535) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "bad capture operation");
            return NULL;
        }
        cap[i] = (struct sud_cap_op){phase, kind, arg, lenarg, (uint16_t)scale, 0, plus, max};
    }
    Py_DECREF(seq);
    memcpy(tr->cap[nr], cap, sizeof cap);
    tr->maxrec[nr] = maxrec;
    Py_RETURN_NONE;
}

PyObject *policy_trace_take(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    struct sud_trace *tr = self->p->trace;
    if (!tr)
        return PyBytes_FromStringAndSize(NULL, 0);
    /* The ring continues in the spare buffer, and the records are in trace_stage after
     * it.  With the GIL held: two threads taking at once must not swap the same spare
     * (the lock is held for a pointer swap; the recorder never waits for the GIL). */
    uint64_t n = sud_trace_take(tr, (int)syscall(SYS_gettid), &self->trace_stage);
    return PyBytes_FromStringAndSize((const char *)self->trace_stage, (Py_ssize_t)n);
}

PyObject *policy_trace_forget(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    if (self->p->trace)
        sud_trace_forget(self->p->trace);
    Py_RETURN_NONE;
}

PyObject *policy_trace_lost(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->p->trace ? self->p->trace->lost : 0);
}

PyObject *deferred_list(struct sud_thread *t)
{
    PyObject *l = PyList_New(0);
    if (!l)
        return NULL;
    for (uint32_t i = 0; i < t->ndeferred; i++) {
        struct sud_deferred *d = &t->deferred[i];
        PyObject *rec = Py_BuildValue("(K(KKKKKK)LK)", (unsigned long long)d->nr, d->args[0], d->args[1],
                                      d->args[2], d->args[3], d->args[4], d->args[5], (long long)d->result,
                                      d->call_addr);
        if (!rec || PyList_Append(l, rec) < 0) {
            Py_XDECREF(rec);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(rec);
    }
    t->ndeferred = 0;
    return l;
}

/* deferred_lost() -> calls run in C on this thread that found the ring full
 * (their handlers never heard of them) since the last call; zeroes it. */
PyObject *m_deferred_lost(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t)
        return PyLong_FromLong(0);
    uint32_t n = t->deferred_lost;
    t->deferred_lost = 0;
    return PyLong_FromUnsignedLong(n);
}

PyObject *m_take_deferred(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t || !t->ndeferred)
        return PyList_New(0);
    return deferred_list(t);
}
