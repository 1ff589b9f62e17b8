/* policy.c - the Policy type: per-syscall actions, direct handlers, counters; thunks
 * (sud_dispatch.c reads the actions; module.c exports the type).
 */
#include "core.h"
#include <sys/mman.h>

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

/* The policy's handlers are usually bound methods of the Dispatcher that owns
 * it: a cycle, which the collector breaks through these two. */
static int policy_traverse(PolicyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->callback);
    Py_VISIT(self->deferred);
    Py_VISIT(self->on_result);
    Py_VISIT(self->on_error);
    Py_VISIT(self->native_token);
    Py_VISIT(self->on_orphan);
    Py_VISIT(self->frame_type);
    for (int i = 0; i < SUD_NSYSCALLS; i++)
        Py_VISIT(self->handlers[i]);
    return 0;
}

static int policy_clear(PolicyObject *self)
{
    if (self->p)
        self->p->hook_ctx = NULL; /* from now on its calls run natively: no handler is left */
    Py_CLEAR(self->callback);
    Py_CLEAR(self->deferred);
    Py_CLEAR(self->on_result);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->native_token);
    Py_CLEAR(self->on_orphan);
    Py_CLEAR(self->frame_type);
    for (int i = 0; i < SUD_NSYSCALLS; i++)
        Py_CLEAR(self->handlers[i]);
    return 0;
}

static void policy_dealloc(PolicyObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->p) {
        self->p->hook_ctx = NULL; /* armed threads now run calls natively */
        if (self->trace_stage) /* its size is the ring's, which goes with the last reference */
            munmap(self->trace_stage, self->p->trace->size);
        sud_policy_decref(self->p); /* (armed threads and thunks may keep the C policy) */
        self->p = NULL;
    }
    policy_clear(self);
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

/* set_actions(table): set_action for every number at once (a Dispatcher's default: one call, not
 * one per number); table holds a struct sud_action per number, in order, native-endian. */
static PyObject *policy_set_actions(PolicyObject *self, PyObject *arg)
{
    Py_buffer table;
    if (PyObject_GetBuffer(arg, &table, PyBUF_SIMPLE) < 0)
        return NULL;
    if (table.len != (Py_ssize_t)sizeof self->p->act) {
        PyBuffer_Release(&table);
        PyErr_Format(PyExc_ValueError, "action table: %d entries of %d bytes", SUD_NSYSCALLS,
                     (int)sizeof(struct sud_action));
        return NULL;
    }
    struct sud_action v[SUD_NSYSCALLS];
    memcpy(v, table.buf, sizeof v); /* (the buffer may be unaligned) */
    PyBuffer_Release(&table);
    for (int i = 0; i < SUD_NSYSCALLS; i++) {
        if (v[i].kind < SUD_ACT_PYTHON || v[i].kind > SUD_ACT_TRACE) {
            PyErr_Format(PyExc_ValueError, "action table: unknown action kind for number %d", i);
            return NULL;
        }
    }
    for (int i = 0; i < SUD_NSYSCALLS; i++) { /* as set_action: the kind last, for armed threads */
        struct sud_action *a = &self->p->act[i];
        a->value = v[i].value;
        a->hazard = v[i].hazard;
        __atomic_store_n(&a->kind, v[i].kind, __ATOMIC_RELEASE);
    }
    Py_RETURN_NONE;
}

/* actions(): the table as set_actions takes it (what armed threads read now) */
static PyObject *policy_actions(PolicyObject *self, PyObject *unused)
{
    (void)unused;
    struct sud_action v[SUD_NSYSCALLS];
    for (int i = 0; i < SUD_NSYSCALLS; i++) {
        v[i].kind = __atomic_load_n(&self->p->act[i].kind, __ATOMIC_ACQUIRE);
        v[i].hazard = self->p->act[i].hazard;
        v[i].value = self->p->act[i].value;
    }
    return PyBytes_FromStringAndSize((const char *)v, sizeof v);
}

/* set_renumber(keep_lo, keep_len, table): calls from outside the range take
 * number table[nr] (table: native-endian uint16 per number; b"" turns it off).
 * Set it before threads make calls with the policy. */
static PyObject *policy_set_renumber(PolicyObject *self, PyObject *args)
{
    unsigned long long lo, len;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "KKy*", &lo, &len, &table))
        return NULL;
    Py_ssize_t n = table.len / 2;
    if (table.len % 2 || n > SUD_NSYSCALLS) {
        PyBuffer_Release(&table);
        PyErr_Format(PyExc_ValueError, "renumber table: up to %d uint16 entries", SUD_NSYSCALLS);
        return NULL;
    }
    const uint16_t *v = table.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (v[i] >= SUD_NSYSCALLS) {
            PyBuffer_Release(&table);
            PyErr_Format(PyExc_ValueError, "renumber table: entry %zd is %u, out of range", i, v[i]);
            return NULL;
        }
    }
    struct sud_policy *p = self->p;
    __atomic_store_n(&p->nrenumber, 0, __ATOMIC_RELEASE);
    memcpy(p->renumber, v, (size_t)n * 2);
    p->keep_lo = lo;
    p->keep_len = len;
    __atomic_store_n(&p->nrenumber, (uint32_t)n, __ATOMIC_RELEASE);
    PyBuffer_Release(&table);
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

/* set_on_orphan(callable or None): see orphan_hook (hook.c) */
static PyObject *policy_set_on_orphan(PolicyObject *self, PyObject *h)
{
    if (h != Py_None && !PyCallable_Check(h)) {
        PyErr_SetString(PyExc_TypeError, "on_orphan must be callable or None");
        return NULL;
    }
    PyObject *old = self->on_orphan;
    self->on_orphan = h == Py_None ? NULL : Py_NewRef(h);
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

static PyMethodDef policy_methods[] = {
    {"trace_start", (PyCFunction)policy_trace_start, METH_VARARGS, "trace_start(ring_bytes, flags): record calls."},
    {"trace_capture", (PyCFunction)policy_trace_capture, METH_VARARGS,
     "trace_capture(nr, maxrec, ops): what a recorded call's record holds."},
    {"trace_take", (PyCFunction)policy_trace_take, METH_NOARGS, "The records so far, as bytes; empties the ring."},
    {"trace_forget", (PyCFunction)policy_trace_forget, METH_NOARGS, "Drop the records (a forked child)."},
    {"trace_lost", (PyCFunction)policy_trace_lost, METH_NOARGS, "Records that found no room."},
    {"set_action", (PyCFunction)policy_set_action, METH_VARARGS,
     "set_action(nr, kind, value, hazard); nr -1 sets the action for other calls."},
    {"set_actions", (PyCFunction)policy_set_actions, METH_O,
     "set_actions(table): every number's action at once (kind, hazard: int32; value: int64; each)."},
    {"actions", (PyCFunction)policy_actions, METH_NOARGS, "Every number's action, as set_actions takes them."},
    {"set_handler", (PyCFunction)policy_set_handler, METH_VARARGS, "set_handler(nr, handler or None)."},
    {"set_renumber", (PyCFunction)policy_set_renumber, METH_VARARGS,
     "set_renumber(keep_lo, keep_len, table): calls from outside the range take table[nr] (uint16 each)."},
    {"set_on_orphan", (PyCFunction)policy_set_on_orphan, METH_O,
     "set_on_orphan(f): f(value) -> exit status, in a process forked by a program's later thread."},
    {"counts", (PyCFunction)policy_counts, METH_NOARGS, "Calls seen, by number."},
    {"reset_counts", (PyCFunction)policy_reset_counts, METH_NOARGS, "Zero the counters."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Policy_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pysud._core.Policy",
    .tp_basicsize = sizeof(PolicyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Per-syscall actions and the Python hook of one dispatcher.",
    .tp_new = policy_new,
    .tp_dealloc = (destructor)policy_dealloc,
    .tp_traverse = (traverseproc)policy_traverse,
    .tp_clear = (inquiry)policy_clear,
    .tp_methods = policy_methods,
};

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

PyObject *m_thunk(PyObject *m, PyObject *args)
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
