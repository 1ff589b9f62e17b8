/* module.c - the CPython glue of pysud's native core (module pysud._core).
 *
 * Plain values in, plain values out: registers, addresses, errno numbers.
 * What they mean is decided in Python (the Python modules of src/pysud).
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sud.h"

#define CORE_API 1

/* ------------------------------------------------------------------ Frame */

typedef struct {
    PyObject_HEAD struct sud_frame *live; /* valid only while its handler runs */
    struct sud_frame snap;                /* what it held when the handler returned */
} FrameObject;

static PyTypeObject Frame_Type;

static struct sud_frame *frame_view(FrameObject *o) { return o->live ? o->live : &o->snap; }

static struct sud_frame *frame_live(FrameObject *o)
{
    if (!o->live) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this call has returned to the foreign code; its registers can no longer be changed");
        return NULL;
    }
    if (o->live->thread != sud_self) {
        PyErr_SetString(PyExc_RuntimeError, "a call can only be answered from the thread that made it");
        return NULL;
    }
    return o->live;
}

static PyObject *reg_get(PyObject *self, void *off)
{
    return PyLong_FromUnsignedLongLong(*(uint64_t *)((char *)frame_view((FrameObject *)self) + (size_t)off));
}

static int reg_set(PyObject *self, PyObject *v, void *off)
{
    struct sud_frame *f = frame_live((FrameObject *)self);
    if (!f)
        return -1;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "registers cannot be deleted");
        return -1;
    }
    uint64_t x;
    if (PyLong_Check(v) && _PyLong_Sign(v) < 0) {
        long long s = PyLong_AsLongLong(v);
        if (s == -1 && PyErr_Occurred())
            return -1;
        x = (uint64_t)s;
    } else {
        x = PyLong_AsUnsignedLongLong(v);
        if (x == (uint64_t)-1 && PyErr_Occurred())
            return -1;
    }
    *(uint64_t *)((char *)f + (size_t)off) = x;
    f->flags |= SUD_FRAME_DIRTY;
    return 0;
}

#define REG(name) {#name, reg_get, reg_set, NULL, (void *)offsetof(struct sud_frame, name)}
#define REG_RO(name, attr) {attr, reg_get, NULL, NULL, (void *)offsetof(struct sud_frame, name)}

static PyObject *frame_get_arch(PyObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(frame_view((FrameObject *)self)->arch);
}
static PyObject *frame_get_selector(PyObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(frame_view((FrameObject *)self)->selector);
}
static PyObject *frame_get_tid(PyObject *self, void *c)
{
    (void)c;
    struct sud_thread *t = frame_view((FrameObject *)self)->thread;
    return PyLong_FromLong(t ? t->tid : 0);
}
static PyObject *frame_get_live(PyObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(((FrameObject *)self)->live != NULL);
}
static PyObject *frame_get_dirty(PyObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(frame_view((FrameObject *)self)->flags & SUD_FRAME_DIRTY);
}

/* The six arguments as the kernel reads them for this call's ABI (the core
 * needs this to run calls natively; tests check it against pysud._abi). */
static PyObject *frame_get_args(PyObject *self, void *c)
{
    (void)c;
    long a[6];
    sud_frame_args(frame_view((FrameObject *)self), a);
    return Py_BuildValue("(kkkkkk)", (unsigned long)a[0], (unsigned long)a[1], (unsigned long)a[2],
                         (unsigned long)a[3], (unsigned long)a[4], (unsigned long)a[5]);
}

static PyGetSetDef frame_getset[] = {
    {"args", frame_get_args, NULL, NULL, NULL},
    REG(rax), REG(rbx), REG(rcx), REG(rdx), REG(rsi), REG(rdi), REG(rbp), REG(rsp),
    REG(r8), REG(r9), REG(r10), REG(r11), REG(r12), REG(r13), REG(r14), REG(r15),
    REG(rip), REG(rflags), REG(fs_base),
    REG_RO(nr, "nr"), REG_RO(call_addr, "call_addr"),
    {"arch", frame_get_arch, NULL, NULL, NULL},
    {"selector", frame_get_selector, NULL, NULL, NULL},
    {"tid", frame_get_tid, NULL, NULL, NULL},
    {"live", frame_get_live, NULL, NULL, NULL},
    {"dirty", frame_get_dirty, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static int long_arg(PyObject *o, long *out)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "system call arguments are ints, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    if (_PyLong_Sign(o) < 0)
        *out = PyLong_AsLong(o);
    else
        *out = (long)PyLong_AsUnsignedLong(o);
    return PyErr_Occurred() ? -1 : 0;
}

/* call.native(*args, nr=None) -> int: run the call natively now, from the
 * handler, with the care the core takes for clone/fork/signal calls.  Given
 * arguments replace the call's own (missing ones keep theirs); the foreign
 * code's registers are not changed.  Returns the raw result (-errno). */
static PyObject *frame_native(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    struct sud_frame *f = frame_live((FrameObject *)self);
    if (!f)
        return NULL;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n > 6) {
        PyErr_SetString(PyExc_TypeError, "a system call has at most six arguments");
        return NULL;
    }
    long a[6], nr = (long)f->nr;
    sud_frame_args(f, a);
    for (Py_ssize_t i = 0; i < n; i++)
        if (long_arg(args[i], &a[i]) < 0)
            return NULL;
    if (kwnames) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k), *val = args[n + k];
            if (!PyUnicode_Check(key) || PyUnicode_CompareWithASCIIString(key, "nr") != 0) {
                PyErr_Format(PyExc_TypeError, "native() got an unexpected keyword argument %R", key);
                return NULL;
            }
            if (val != Py_None && long_arg(val, &nr) < 0)
                return NULL;
        }
    }
    long r;
    Py_BEGIN_ALLOW_THREADS r = sud_native(f, nr, a);
    Py_END_ALLOW_THREADS return PyLong_FromLong(r);
}

/* call.exit_guest(value): when this call returns, leave the guest program and
 * make run_guest() return value (exit, exit_group, a fatal signal...). */
static PyObject *frame_exit_guest(PyObject *self, PyObject *arg)
{
    struct sud_frame *f = frame_live((FrameObject *)self);
    if (!f)
        return NULL;
    if (f->thread->guest_depth <= 0) {
        PyErr_SetString(PyExc_RuntimeError, "no guest program is running on this thread (see pysud.run)");
        return NULL;
    }
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    f->rax = (uint64_t)v;
    f->flags |= SUD_FRAME_EXIT | SUD_FRAME_DIRTY;
    Py_RETURN_NONE;
}

static PyMethodDef frame_methods[] = {
    {"exit_guest", frame_exit_guest, METH_O, "Leave the running guest program; run_guest() returns the value."},
    {"native", (PyCFunction)(void (*)(void))frame_native, METH_FASTCALL | METH_KEYWORDS,
     "native(*args, nr=None) -> int: run the call natively now and return its raw result."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Frame_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pysud._core.Frame",
    .tp_basicsize = sizeof(FrameObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The registers of one intercepted system call (base of pysud.Syscall).",
    .tp_getset = frame_getset,
    .tp_methods = frame_methods,
};

/* ----------------------------------------------------------------- Policy */

typedef struct {
    PyObject_HEAD struct sud_policy *p;
    PyObject *handlers[SUD_NSYSCALLS]; /* x86-64 handlers called directly, or NULL */
    PyObject *on_result;  /* on_result(frame, result): results that are not ints */
    PyObject *on_error;   /* on_error(frame, exc): a handler raised */
    PyObject *native_token; /* the result that means "run it natively" */
    PyObject *callback;   /* callback(frame) answers a call that has no direct handler */
    PyObject *deferred;   /* deferred(list_of_records) hears calls run in C */
    PyTypeObject *frame_type;
    uint8_t *trace_stage; /* where trace_take() moves records before they become bytes */
} PolicyObject;

static PyTypeObject Policy_Type;

static PyObject *policy_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *callback, *deferred, *on_result, *on_error, *native_token = Py_None;
    PyTypeObject *ft = &Frame_Type;
    static char *kwlist[] = {"callback", "deferred", "on_result", "on_error", "frame_type", "native_token", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO|O!O", kwlist, &callback, &deferred, &on_result, &on_error,
                                     &PyType_Type, &ft, &native_token))
        return NULL;
    if (!PyType_IsSubtype(ft, &Frame_Type)) {
        PyErr_SetString(PyExc_TypeError, "frame_type must derive from pysud._core.Frame");
        return NULL;
    }
    PolicyObject *self = (PolicyObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->p = sud_policy_new();
    if (!self->p) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->p->hook_ctx = self;
    Py_INCREF(callback);
    self->callback = callback;
    Py_INCREF(deferred);
    self->deferred = deferred;
    Py_INCREF(on_result);
    self->on_result = on_result;
    Py_INCREF(on_error);
    self->on_error = on_error;
    Py_INCREF(native_token);
    self->native_token = native_token;
    Py_INCREF(ft);
    self->frame_type = ft;
    return (PyObject *)self;
}

static void policy_dealloc(PolicyObject *self)
{
    if (self->p) {
        self->p->hook_ctx = NULL; /* armed threads now run calls natively */
        sud_policy_decref(self->p);
    }
    Py_XDECREF(self->callback);
    Py_XDECREF(self->deferred);
    Py_XDECREF(self->on_result);
    Py_XDECREF(self->on_error);
    Py_XDECREF(self->native_token);
    for (int i = 0; i < SUD_NSYSCALLS; i++)
        Py_CLEAR(self->handlers[i]);
    Py_XDECREF(self->frame_type);
    if (self->trace_stage && self->p)
        munmap(self->trace_stage, self->p->trace->size);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *policy_set_action(PolicyObject *self, PyObject *args)
{
    long nr, kind, hazard;
    long long value;
    if (!PyArg_ParseTuple(args, "lllL", &nr, &kind, &value, &hazard))
        return NULL;
    if (kind < SUD_ACT_PYTHON || kind > SUD_ACT_TRACE) {
        PyErr_SetString(PyExc_ValueError, "unknown action kind");
        return NULL;
    }
    struct sud_action *a;
    if (nr == -1)
        a = &self->p->other;
    else if (nr >= 0 && nr < SUD_NSYSCALLS)
        a = &self->p->act[nr];
    else {
        PyErr_Format(PyExc_ValueError, "syscall number %ld out of range", nr);
        return NULL;
    }
    a->value = value;
    a->hazard = (int32_t)hazard;
    __atomic_store_n(&a->kind, (int32_t)kind, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

/* set_handler(nr, handler_or_None): a handler the hook calls directly */
static PyObject *policy_set_handler(PolicyObject *self, PyObject *args)
{
    long nr;
    PyObject *h;
    if (!PyArg_ParseTuple(args, "lO", &nr, &h))
        return NULL;
    if (nr < 0 || nr >= SUD_NSYSCALLS) {
        PyErr_Format(PyExc_ValueError, "syscall number %ld out of range", nr);
        return NULL;
    }
    PyObject *old = self->handlers[nr];
    self->handlers[nr] = h == Py_None ? NULL : Py_NewRef(h);
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *policy_counts(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (int i = 0; i < SUD_NSYSCALLS; i++) {
        uint64_t c = __atomic_load_n(&self->p->count[i], __ATOMIC_RELAXED);
        if (c) {
            PyObject *k = PyLong_FromLong(i), *v = PyLong_FromUnsignedLongLong(c);
            if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
                Py_XDECREF(k);
                Py_XDECREF(v);
                Py_DECREF(d);
                return NULL;
            }
            Py_DECREF(k);
            Py_DECREF(v);
        }
    }
    uint64_t o = __atomic_load_n(&self->p->count_other, __ATOMIC_RELAXED);
    if (o) {
        PyObject *v = PyLong_FromUnsignedLongLong(o);
        if (!v || PyDict_SetItemString(d, "other", v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *policy_reset_counts(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    for (int i = 0; i < SUD_NSYSCALLS; i++)
        __atomic_store_n(&self->p->count[i], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&self->p->count_other, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&self->p->count_direct, 0, __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

/* ---- the trace recorder (sud_trace.c): ring set-up and records out */

static PyObject *policy_trace_start(PolicyObject *self, PyObject *args)
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
static PyObject *policy_trace_capture(PolicyObject *self, PyObject *args)
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

static PyObject *policy_trace_take(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    struct sud_trace *tr = self->p->trace;
    if (!tr)
        return PyBytes_FromStringAndSize(NULL, 0);
    uint64_t n;
    Py_BEGIN_ALLOW_THREADS n = sud_trace_take(tr, (int)syscall(SYS_gettid), self->trace_stage);
    Py_END_ALLOW_THREADS return PyBytes_FromStringAndSize((const char *)self->trace_stage, (Py_ssize_t)n);
}

static PyObject *policy_trace_forget(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    if (self->p->trace)
        sud_trace_forget(self->p->trace);
    Py_RETURN_NONE;
}

static PyObject *policy_trace_lost(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->p->trace ? self->p->trace->lost : 0);
}

static PyMethodDef policy_methods[] = {
    {"trace_start", (PyCFunction)policy_trace_start, METH_VARARGS, "trace_start(ring_bytes, flags): record calls."},
    {"trace_capture", (PyCFunction)policy_trace_capture, METH_VARARGS,
     "trace_capture(nr, maxrec, ops): what a recorded call's record holds."},
    {"trace_take", (PyCFunction)policy_trace_take, METH_NOARGS, "The records so far, as bytes; empties the ring."},
    {"trace_forget", (PyCFunction)policy_trace_forget, METH_NOARGS, "Drop the records (a forked child)."},
    {"trace_lost", (PyCFunction)policy_trace_lost, METH_NOARGS, "Records that found no room."},
    {"set_action", (PyCFunction)policy_set_action, METH_VARARGS,
     "set_action(nr, kind, value, hazard); nr -1 sets the action for other calls."},
    {"set_handler", (PyCFunction)policy_set_handler, METH_VARARGS, "set_handler(nr, handler or None)."},
    {"counts", (PyCFunction)policy_counts, METH_NOARGS, "Calls seen, by number."},
    {"reset_counts", (PyCFunction)policy_reset_counts, METH_NOARGS, "Zero the counters."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Policy_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pysud._core.Policy",
    .tp_basicsize = sizeof(PolicyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Per-syscall actions and the Python hook of one dispatcher.",
    .tp_new = policy_new,
    .tp_dealloc = (destructor)policy_dealloc,
    .tp_methods = policy_methods,
};

struct sud_policy *policy_arg(PyObject *o);
struct sud_policy *policy_arg(PyObject *o)
{
    if (o == Py_None)
        return NULL;
    if (!PyObject_TypeCheck(o, &Policy_Type)) {
        PyErr_SetString(PyExc_TypeError, "expected a pysud._core.Policy or None");
        return NULL;
    }
    return ((PolicyObject *)o)->p;
}

/* ----------------------------------------------------- the Python hook */

static PyObject *deferred_list(struct sud_thread *t)
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

static void deliver_deferred(struct sud_thread *t, PolicyObject *po)
{
    PyObject *l = deferred_list(t);
    if (!l) {
        PyErr_WriteUnraisable(po->deferred);
        return;
    }
    PyObject *r = PyObject_CallOneArg(po->deferred, l);
    Py_DECREF(l);
    if (!r)
        PyErr_WriteUnraisable(po->deferred);
    Py_XDECREF(r);
}

/* The raised exception as one object, with its traceback (3.12's PyErr_GetRaisedException). */
static PyObject *fetch_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (!value)
        value = Py_NewRef(Py_None);
    return value;
}

static void python_hook(struct sud_frame *f)
{
    PyGILState_STATE g = PyGILState_Ensure();
    struct sud_thread *t = f->thread;
    PolicyObject *po = t->policy ? (PolicyObject *)t->policy->hook_ctx : NULL;
    if (!po) {
        long a[6];
        sud_frame_args(f, a);
        f->rax = (uint64_t)sud_native(f, (long)f->nr, a);
        PyGILState_Release(g);
        return;
    }
    Py_INCREF(po);
    int run_native = 0;
    if (t->ndeferred)
        deliver_deferred(t, po);
    /* One frame object per thread is reused while no handler keeps it. */
    static __thread FrameObject *spare;
    FrameObject *fo = spare;
    spare = NULL;
    if (fo && Py_TYPE(fo) != po->frame_type) {
        Py_DECREF(fo);
        fo = NULL;
    }
    if (fo) {
        fo->snap.flags = 0;
    } else {
        fo = (FrameObject *)po->frame_type->tp_alloc(po->frame_type, 0);
    }
    if (!fo) {
        PyErr_WriteUnraisable(po->callback);
        f->rax = (uint64_t)-ENOSYS;
    } else {
        fo->live = f;
        PyObject *h = NULL;
        if (f->arch == SUD_AUDIT_ARCH_X86_64 && f->nr < SUD_NSYSCALLS)
            h = po->handlers[f->nr];
        if (h) {
            /* The common case without a Python frame in between: an int
             * result goes to RAX; anything else goes to on_result, and an
             * exception to on_error, which decide what it means. */
            Py_INCREF(h);
            PyObject *r = PyObject_CallOneArg(h, (PyObject *)fo);
            Py_DECREF(h);
            int done = 0;
            if (r && PyLong_CheckExact(r)) {
                int overflow;
                long long v = PyLong_AsLongLongAndOverflow(r, &overflow);
                if (!overflow && !(v == -1 && PyErr_Occurred())) {
                    f->rax = (uint64_t)v;
                    done = 1;
                }
                PyErr_Clear();
            }
            PyObject *r2 = NULL;
            if (!done && r && r == po->native_token && po->native_token != Py_None) {
                run_native = 1; /* after the GIL is released: no second GIL round trip */
                done = 1;
                r2 = Py_NewRef(Py_None);
            } else if (!done && r) {
                r2 = PyObject_CallFunctionObjArgs(po->on_result, (PyObject *)fo, r, NULL);
            } else if (!r) {
                PyObject *exc = fetch_exception();
                r2 = PyObject_CallFunctionObjArgs(po->on_error, (PyObject *)fo, exc, NULL);
                Py_XDECREF(exc);
            } else {
                r2 = Py_NewRef(Py_None);
            }
            Py_XDECREF(r);
            if (!r2) {
                PyErr_WriteUnraisable(po->on_error);
                f->rax = (uint64_t)-ENOSYS;
            }
            Py_XDECREF(r2);
        } else {
            PyObject *r = PyObject_CallOneArg(po->callback, (PyObject *)fo);
            if (!r) {
                /* The Python side turns handler errors into results; this is a
                 * last resort that keeps the foreign code's result defined. */
                PyErr_WriteUnraisable(po->callback);
                f->rax = (uint64_t)-ENOSYS;
            }
            Py_XDECREF(r);
        }
        fo->live = NULL;
        if (Py_REFCNT(fo) == 1 && !spare) {
            spare = fo; /* nobody kept it: reuse it for the next call */
        } else {
            fo->snap = *f; /* kept by the handler: it keeps what the call held */
            Py_DECREF(fo);
        }
    }
    Py_DECREF(po);
    PyGILState_Release(g);
    if (run_native) {
        long a[6];
        sud_frame_args(f, a);
        f->rax = (uint64_t)sud_native(f, (long)f->nr, a);
    }
}

/* -------------------------------------------------------------- functions */

static PyObject *errno_error(int neg)
{
    errno = -neg;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyObject *m_init(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    int r = sud_init();
    if (r)
        return errno_error(r);
    Py_RETURN_NONE;
}

static PyObject *m_arm(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *pol;
    int op;
    unsigned long long off, len;
    if (!PyArg_ParseTuple(args, "OiKK", &pol, &op, &off, &len))
        return NULL;
    struct sud_policy *p = policy_arg(pol);
    if (!p && PyErr_Occurred())
        return NULL;
    if (op != SUD_OP_EXCLUSIVE_ON && op != SUD_OP_INCLUSIVE_ON) {
        PyErr_SetString(PyExc_ValueError, "op must be EXCLUSIVE_ON (1) or INCLUSIVE_ON (2)");
        return NULL;
    }
    int r = sud_arm(op, off, len, p);
    if (r)
        return errno_error(r);
    Py_RETURN_NONE;
}

static PyObject *m_disarm(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    int r = sud_disarm();
    if (r)
        return errno_error(r);
    Py_RETURN_NONE;
}

/* (op, offset, len, selector, tid, policy_is) for this thread, or None */
static PyObject *m_thread_state(PyObject *m, PyObject *pol)
{
    (void)m;
    struct sud_thread *t = sud_self;
    if (!t)
        Py_RETURN_NONE;
    int same = pol != Py_None && PyObject_TypeCheck(pol, &Policy_Type) && t->policy == ((PolicyObject *)pol)->p;
    return Py_BuildValue("(iKKiiO)", t->op, (unsigned long long)t->offset, (unsigned long long)t->len, t->selector,
                         t->tid, same ? Py_True : Py_False);
}

/* Cheap: is this thread armed with (op, off, len) and this policy? */
static PyObject *m_armed_as(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    (void)nargs;
    struct sud_thread *t = sud_self;
    if (!t || t->op == SUD_OP_OFF || !PyObject_TypeCheck(args[0], &Policy_Type))
        Py_RETURN_FALSE;
    if (t->policy != ((PolicyObject *)args[0])->p || t->op != PyLong_AsLong(args[1]) ||
        t->offset != PyLong_AsUnsignedLongLong(args[2]) || t->len != PyLong_AsUnsignedLongLong(args[3]))
        Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

static PyObject *m_set_selector(PyObject *m, PyObject *arg)
{
    (void)m;
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (v != SUD_FILTER_ALLOW && v != SUD_FILTER_BLOCK) {
        PyErr_Format(PyExc_ValueError,
                     "selector must be ALLOW (0) or BLOCK (1), not %ld: the kernel kills the process "
                     "for any other value",
                     v);
        return NULL;
    }
    struct sud_thread *t = sud_self;
    if (!t || t->op == SUD_OP_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "this thread is not armed");
        return NULL;
    }
    int old = t->selector;
    t->selector = (uint8_t)v;
    return PyLong_FromLong(old);
}

static PyObject *m_get_selector(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t)
        Py_RETURN_NONE;
    return PyLong_FromLong(t->selector);
}

static PyObject *m_selector_address(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t)
        Py_RETURN_NONE;
    return PyLong_FromVoidPtr((void *)&t->selector);
}

/* prctl(PR_SET_SYSCALL_USER_DISPATCH, op, offset, len, selector) as given:
 * returns 0 or -errno.  For conformance tests; the kernel checks everything. */
static PyObject *m_prctl_raw(PyObject *m, PyObject *args)
{
    (void)m;
    long long op;
    unsigned long long off, len, sel;
    if (!PyArg_ParseTuple(args, "LKKK", &op, &off, &len, &sel))
        return NULL;
    return PyLong_FromLong(sud_prctl_raw((long)op, (long)off, (long)len, (void *)(uintptr_t)sel));
}

static PyObject *m_gate_range(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)sud_gate_start,
                         (unsigned long long)(uintptr_t)sud_gate_end);
}

static PyObject *m_hazard_ranges(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    int r = sud_init();
    if (r)
        return errno_error(r);
    PyObject *l = PyList_New(0);
    for (int i = 0; l && i < sud_nhazard; i++) {
        PyObject *t = Py_BuildValue("(KK)", (unsigned long long)sud_hazard_lo[i],
                                    (unsigned long long)sud_hazard_hi[i]);
        if (!t || PyList_Append(l, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(t);
    }
    return l;
}

static PyObject *m_thunk(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long target;
    PyObject *pol;
    if (!PyArg_ParseTuple(args, "KO", &target, &pol))
        return NULL;
    struct sud_policy *p = policy_arg(pol);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a thunk needs a policy");
        return NULL;
    }
    void *t = sud_thunk_new(target, p);
    if (!t)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromVoidPtr(t);
}

static PyObject *m_take_deferred(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t || !t->ndeferred)
        return PyList_New(0);
    return deferred_list(t);
}

static long vm_rw(uint64_t addr, void *buf, size_t n, int write)
{
    struct iovec local = {buf, n}, remote = {(void *)(uintptr_t)addr, n};
    return syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
}

/* read_memory(addr, n) -> bytes; a bad address raises OSError(EFAULT) instead of crashing. */
/* OSError(errno, "cannot read N bytes at 0x...: reason") */
static PyObject *vm_error(const char *verb, Py_ssize_t n, unsigned long long addr)
{
    int err = errno;
    char msg[128];
    snprintf(msg, sizeof msg, "cannot %s %zd bytes at %#llx: %s", verb, n, addr, strerror(err));
    PyObject *v = Py_BuildValue("(is)", err, msg);
    if (v) {
        PyErr_SetObject(PyExc_OSError, v);
        Py_DECREF(v);
    }
    return NULL;
}

static PyObject *m_read_memory(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long addr;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Kn", &addr, &n))
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative length");
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (!b || n == 0)
        return b;
    long r = vm_rw(addr, PyBytes_AS_STRING(b), (size_t)n, 0);
    if (r != n) {
        Py_DECREF(b);
        errno = r < 0 ? errno : EFAULT;
        return vm_error("read", n, addr);
    }
    return b;
}

static PyObject *m_write_memory(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long addr;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "Ky*", &addr, &buf))
        return NULL;
    long r = buf.len ? vm_rw(addr, buf.buf, (size_t)buf.len, 1) : 0;
    Py_ssize_t n = buf.len;
    PyBuffer_Release(&buf);
    if (r != n) {
        errno = r < 0 ? errno : EFAULT;
        return vm_error("write", n, addr);
    }
    Py_RETURN_NONE;
}

/* map_code(bytes) -> (address, size): mapped RW, copied, then made RX. */
static PyObject *m_map_code(PyObject *m, PyObject *arg)
{
    (void)m;
    Py_buffer buf;
    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    size_t size = ((size_t)buf.len + 4095) & ~4095ul;
    if (!size)
        size = 4096;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        PyBuffer_Release(&buf);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    memcpy(p, buf.buf, (size_t)buf.len);
    PyBuffer_Release(&buf);
    if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0) {
        munmap(p, size);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("(Kn)", (unsigned long long)(uintptr_t)p, (Py_ssize_t)size);
}

static PyObject *m_unmap(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long addr;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "Kn", &addr, &size))
        return NULL;
    if (munmap((void *)(uintptr_t)addr, (size_t)size) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* syscall(nr, a0..a5) -> int (raw result, -errno on failure) from the gate */
static PyObject *m_syscall(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    long v[7] = {0};
    if (nargs < 1 || nargs > 7) {
        PyErr_SetString(PyExc_TypeError, "syscall(nr, *up_to_six_args)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        v[i] = PyLong_AsLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            v[i] = (long)PyLong_AsUnsignedLong(args[i]);
            if (PyErr_Occurred())
                return NULL;
        }
    }
    long r;
    Py_BEGIN_ALLOW_THREADS r = sud_gate_syscall6(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    Py_END_ALLOW_THREADS return PyLong_FromLong(r);
}

static PyObject *m_ptrace_get_config(PyObject *m, PyObject *args)
{
    (void)m;
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid))
        return NULL;
    uint64_t cfg[4] = {0};
    if (syscall(SYS_ptrace, SUD_PTRACE_GET_CONFIG, pid, (void *)sizeof cfg, cfg) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return Py_BuildValue("(KKKK)", cfg[0], cfg[1], cfg[2], cfg[3]);
}

static PyObject *m_ptrace_set_config(PyObject *m, PyObject *args)
{
    (void)m;
    int pid;
    unsigned long long mode, sel, off, len;
    if (!PyArg_ParseTuple(args, "iKKKK", &pid, &mode, &sel, &off, &len))
        return NULL;
    uint64_t cfg[4] = {mode, sel, off, len};
    if (syscall(SYS_ptrace, SUD_PTRACE_SET_CONFIG, pid, (void *)sizeof cfg, cfg) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *m_features(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    int r = sud_init();
    if (r)
        return errno_error(r);
    return Py_BuildValue("{s:K,s:K,s:O,s:O,s:K,s:K}", "xsave_size", (unsigned long long)sud_xsave_size, "xsave_mask",
                         (unsigned long long)sud_xsave_mask, "fsgsbase", sud_have_fsgsbase ? Py_True : Py_False,
                         "xsavec", sud_have_xsavec ? Py_True : Py_False,
                         "hwcap2", (unsigned long long)getauxval(AT_HWCAP2), "area_size",
                         (unsigned long long)SUD_AREA_SIZE);
}

/* ---- benchmark loops: the syscall instruction below is outside the gate ---- */

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
static PyObject *m_bench_loop(PyObject *m, PyObject *args)
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
static PyObject *m_bench_floor(PyObject *m, PyObject *args)
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

/* run_guest(entry, sp) -> int: run a loaded program on this (armed) thread
 * until a handler calls exit_guest(); the GIL is released meanwhile. */
static PyObject *m_run_guest(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long entry, sp;
    if (!PyArg_ParseTuple(args, "KK", &entry, &sp))
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
    t->vpending = 0;
    t->vfatal = 0;
    sud_vsig_end();
    Py_END_ALLOW_THREADS t->guest_depth--;
    return PyLong_FromLong(r);
}

/* direct_entry_address() -> the flip-switch entry (see sud_direct_entry). */
static PyObject *m_direct_entry_address(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)sud_direct_entry);
}

/* thread_block() -> this armed thread's block, the RCX sud_direct_entry wants. */
static PyObject *m_thread_block(PyObject *m, PyObject *unused)
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

/* reset_signals(keep_ignored): a new program starts with default
 * dispositions; after execve, ignored signals stay ignored (POSIX). */
static PyObject *m_reset_signals(PyObject *m, PyObject *arg)
{
    (void)m;
    int keep = PyObject_IsTrue(arg);
    if (keep < 0)
        return NULL;
    sud_vsig_reset(keep);
    Py_RETURN_NONE;
}

/* last_fault() -> None or (sig, si_code, address, {register: value}) */
static PyObject *m_last_fault(PyObject *m, PyObject *unused)
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

/* Threads the core starts for a guest keep one Python thread state for their
 * whole life, so handlers on them do not create and destroy one per call. */
static void guest_thread_hook(int start)
{
    static __thread PyThreadState *ts;
    if (start) {
        PyGILState_Ensure();
        ts = PyEval_SaveThread();
    } else if (ts) {
        PyEval_RestoreThread(ts);
        PyGILState_Release(PyGILState_UNLOCKED);
        ts = NULL;
    }
}

PyObject *m_rewrite_config(PyObject *m, PyObject *args);
PyObject *m_rewrite_sites(PyObject *m, PyObject *unused);
PyObject *m_rewrite_forget(PyObject *m, PyObject *unused);
PyObject *m_rewrite_direct_count(PyObject *m, PyObject *pol);
PyObject *m_path_filter(PyObject *m, PyObject *args);

static PyMethodDef module_methods[] = {
    {"rewrite_config", m_rewrite_config, METH_VARARGS, "rewrite_config(policy, on, locator) -> enabled."},
    {"rewrite_sites", m_rewrite_sites, METH_NOARGS, "[(site_end, nr, state, reason, trampoline)]."},
    {"rewrite_forget", m_rewrite_forget, METH_NOARGS, "Examine every site afresh (a new image)."},
    {"rewrite_direct_count", m_rewrite_direct_count, METH_O, "Calls of a policy that entered without a trap."},
    {"path_filter", m_path_filter, METH_VARARGS, "path_filter(policy, nr, arg, prefixes or None)."},
    {"run_guest", m_run_guest, METH_VARARGS, "run_guest(entry, sp) -> value given to exit_guest()."},
    {"direct_entry_address", m_direct_entry_address, METH_NOARGS, "Address of the flip-switch entry."},
    {"thread_block", m_thread_block, METH_NOARGS, "This armed thread's block (RCX for the direct entry)."},
    {"reset_signals", m_reset_signals, METH_O, "reset_signals(keep_ignored): the program's dispositions."},
    {"last_fault", m_last_fault, METH_NOARGS, "(sig, code, addr, regs) of the signal a program died of."},
    {"init", m_init, METH_NOARGS, "Install the SIGSYS handler (idempotent)."},
    {"arm", m_arm, METH_VARARGS, "arm(policy, op, offset, len): arm this thread."},
    {"disarm", m_disarm, METH_NOARGS, "Disarm this thread."},
    {"thread_state", m_thread_state, METH_O, "(op, offset, len, selector, tid, same_policy) or None."},
    {"armed_as", (PyCFunction)(void (*)(void))m_armed_as, METH_FASTCALL, "armed_as(policy, op, off, len)."},
    {"set_selector", m_set_selector, METH_O, "Set this thread's selector; returns the old value."},
    {"get_selector", m_get_selector, METH_NOARGS, "This thread's selector, or None."},
    {"selector_address", m_selector_address, METH_NOARGS, "Address of this thread's selector."},
    {"prctl_raw", m_prctl_raw, METH_VARARGS, "prctl_raw(op, offset, len, selector_addr) -> 0 or -errno."},
    {"gate_range", m_gate_range, METH_NOARGS, "(start, end) of the core's gate section."},
    {"hazard_ranges", m_hazard_ranges, METH_NOARGS, "Text ranges of the host's libc and ld.so."},
    {"thunk", m_thunk, METH_VARARGS, "thunk(target, policy) -> address."},
    {"take_deferred", m_take_deferred, METH_NOARGS, "Records of calls run in C on this thread."},
    {"read_memory", m_read_memory, METH_VARARGS, "read_memory(addr, n) -> bytes."},
    {"write_memory", m_write_memory, METH_VARARGS, "write_memory(addr, data)."},
    {"map_code", m_map_code, METH_O, "map_code(bytes) -> (addr, size)."},
    {"unmap", m_unmap, METH_VARARGS, "unmap(addr, size)."},
    {"syscall", (PyCFunction)(void (*)(void))m_syscall, METH_FASTCALL, "Raw syscall from the gate."},
    {"ptrace_get_config", m_ptrace_get_config, METH_VARARGS, "PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG."},
    {"ptrace_set_config", m_ptrace_set_config, METH_VARARGS, "PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG."},
    {"features", m_features, METH_NOARGS, "What the CPU and core provide."},
    {"bench_loop", m_bench_loop, METH_VARARGS, "bench_loop(nr, n, block) -> ns."},
    {"bench_floor", m_bench_floor, METH_VARARGS, "bench_floor(nr, n) -> ns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "pysud._core", "pysud's native core: SIGSYS, registers, stacks, arming.", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void)
{
    if (PyType_Ready(&Frame_Type) < 0 || PyType_Ready(&Policy_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    sud_python_hook = python_hook;
    sud_guest_thread_hook = guest_thread_hook;
    Py_INCREF(&Frame_Type);
    Py_INCREF(&Policy_Type);
    if (PyModule_AddObject(m, "Frame", (PyObject *)&Frame_Type) < 0 ||
        PyModule_AddObject(m, "Policy", (PyObject *)&Policy_Type) < 0 ||
        PyModule_AddIntConstant(m, "CORE_API", CORE_API) < 0 ||
        PyModule_AddIntConstant(m, "ACT_PYTHON", SUD_ACT_PYTHON) < 0 ||
        PyModule_AddIntConstant(m, "ACT_NATIVE", SUD_ACT_NATIVE) < 0 ||
        PyModule_AddIntConstant(m, "ACT_ERRNO", SUD_ACT_ERRNO) < 0 ||
        PyModule_AddIntConstant(m, "ACT_RETURN", SUD_ACT_RETURN) < 0 ||
        PyModule_AddIntConstant(m, "ACT_TRACE", SUD_ACT_TRACE) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_TIMING", SUD_TRACE_TIMING) < 0 ||
        PyModule_AddIntConstant(m, "NSYSCALLS", SUD_NSYSCALLS) < 0 ||
        PyModule_AddIntConstant(m, "AUDIT_ARCH_X86_64", SUD_AUDIT_ARCH_X86_64) < 0 ||
        PyModule_AddIntConstant(m, "AUDIT_ARCH_I386", SUD_AUDIT_ARCH_I386) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
