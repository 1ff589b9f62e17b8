/* frame.c - the Frame type: one intercepted call's registers, call.native(), call.exit_guest().
 */
#include "core.h"

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
            if (nr < 0 || nr > INT32_MAX) {
                /* the kernel reads only the low 32 bits: 2**32 + 39 would be getpid */
                PyErr_Format(PyExc_ValueError, "system call number %R is out of range 0..2**31-1", val);
                return NULL;
            }
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

/* call.exit_program(value): when this call returns, every thread of the
 * running program leaves it, and run_guest() returns value on its first
 * thread (execve from any thread; exit_group is the same in C). */
static PyObject *frame_exit_program(PyObject *self, PyObject *arg)
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
    sud_group_exit(f->thread, (long)v);
    f->rax = (uint64_t)v;
    f->flags |= SUD_FRAME_EXIT | SUD_FRAME_DIRTY;
    Py_RETURN_NONE;
}

/* The program's vector state at the call, as the 512-byte FXSAVE image (x87,
 * MXCSR at 24, XMM0-15 at 160): the legacy region of the XSAVE area the
 * dispatch saved before Python ran (every path: trap, direct entry, rewritten
 * site).  XSAVEC/XSAVEOPT leave a component in its initial state unwritten
 * (its XSTATE_BV bit clear): those bytes read as the initial state. */
#define FX_SIZE 512
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_XMM 160
#define FX_XMM_END 416
#define XS_BV 512

static const uint8_t *frame_fx(struct sud_frame *f)
{
    if (!(f->flags & SUD_FRAME_XSAVED) || !f->xsave) {
        PyErr_SetString(PyExc_RuntimeError, "this call's vector state was not saved (it did not reach Python)");
        return NULL;
    }
    return (const uint8_t *)f->xsave;
}

static PyObject *frame_vector_state(PyObject *self, PyObject *unused)
{
    (void)unused;
    FrameObject *o = (FrameObject *)self;
    if (!o->live) {
        PyErr_SetString(PyExc_RuntimeError, "this call has returned to the foreign code");
        return NULL;
    }
    const uint8_t *fx = frame_fx(o->live);
    if (!fx)
        return NULL;
    uint8_t out[FX_SIZE];
    memcpy(out, fx, FX_SIZE);
    uint64_t bv;
    memcpy(&bv, fx + XS_BV, 8);
    if (!(bv & 1)) { /* x87 in its initial state: FCW 0x37f, the rest zero */
        memset(out, 0, FX_MXCSR);
        memset(out + 32, 0, FX_XMM - 32);
        out[0] = 0x7f;
        out[1] = 0x03;
    }
    if (!(bv & 2)) /* SSE registers in their initial state: zero (MXCSR is always saved) */
        memset(out + FX_XMM, 0, FX_XMM_END - FX_XMM);
    return PyBytes_FromStringAndSize((const char *)out, FX_SIZE);
}

/* call.set_vector_state(fx): the program resumes with the x87, MXCSR and
 * XMM0-15 of this FXSAVE image (the upper halves of YMM/ZMM keep theirs). */
static PyObject *frame_set_vector_state(PyObject *self, PyObject *arg)
{
    struct sud_frame *f = frame_live((FrameObject *)self);
    if (!f)
        return NULL;
    uint8_t *fx = (uint8_t *)frame_fx(f);
    if (!fx)
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    if (b.len != FX_SIZE) {
        PyBuffer_Release(&b);
        PyErr_Format(PyExc_ValueError, "a vector state is a %d-byte FXSAVE image, not %zd bytes", FX_SIZE, b.len);
        return NULL;
    }
    const uint8_t *in = b.buf;
    uint32_t mxcsr, mask;
    memcpy(&mxcsr, in + FX_MXCSR, 4);
    memcpy(&mask, fx + FX_MXCSR_MASK, 4);
    if (!mask)
        mask = 0xffbf;
    if (mxcsr & ~mask) { /* XRSTOR would fault on the way back */
        PyBuffer_Release(&b);
        PyErr_Format(PyExc_ValueError, "MXCSR %#x sets reserved bits (mask %#x)", mxcsr, mask);
        return NULL;
    }
    memcpy(fx, in, FX_MXCSR_MASK);                           /* x87 control/status, MXCSR */
    memcpy(fx + 32, in + 32, FX_XMM_END - 32);               /* ST0-7, XMM0-15 */
    uint64_t bv;
    memcpy(&bv, fx + XS_BV, 8);
    bv |= 3; /* x87 and SSE now come from the image */
    memcpy(fx + XS_BV, &bv, 8);
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyMethodDef frame_methods[] = {
    {"vector_state", frame_vector_state, METH_NOARGS,
     "vector_state() -> bytes: the program's x87/MXCSR/XMM0-15 at this call, as a 512-byte FXSAVE image."},
    {"set_vector_state", frame_set_vector_state, METH_O,
     "set_vector_state(fx): resume the program with this 512-byte FXSAVE image's x87, MXCSR and XMM0-15."},
    {"exit_program", frame_exit_program, METH_O,
     "Leave the running guest program on all its threads; run_guest() returns the value."},
    {"exit_guest", frame_exit_guest, METH_O, "Leave the running guest program; run_guest() returns the value."},
    {"native", (PyCFunction)(void (*)(void))frame_native, METH_FASTCALL | METH_KEYWORDS,
     "native(*args, nr=None) -> int: run the call natively now and return its raw result."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Frame_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pysud._core.Frame",
    .tp_basicsize = sizeof(FrameObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The registers of one intercepted system call (base of pysud.Syscall).",
    .tp_getset = frame_getset,
    .tp_methods = frame_methods,
};

/* ---------------------------------------------------------------- arguments read when asked for
 *
 * ArgLayout(registers, stack_offset, count): a calling convention as data (Python names it):
 * the first arguments in these registers (names of Frame's), the rest 8 bytes apart from
 * rsp + stack_offset.  layout(frame) is an ArgView: a sequence of `count` ints that reads an
 * argument only when it is asked for (a slice's stack arguments in one checked copy; an
 * unreadable stack slot reads as 0), so a handler that takes its first arguments does not pay
 * for the rest. */
#define ARG_REGS_MAX 8
#define ARG_COUNT_MAX 32

typedef struct {
    PyObject_HEAD size_t reg_off[ARG_REGS_MAX];
    int nreg, count;
    uint64_t stack_off;
} ArgLayoutObject;

typedef struct {
    PyObject_HEAD FrameObject *frame;
    ArgLayoutObject *layout;
} ArgViewObject;

static PyTypeObject ArgView_Type;

static PyObject *layout_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *regs;
    unsigned long long off;
    int count;
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "ArgLayout(registers, stack_offset, count) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OKi", &regs, &off, &count))
        return NULL;
    PyObject *seq = PySequence_Fast(regs, "registers: a sequence of register names");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > ARG_REGS_MAX || count < 0 || count > ARG_COUNT_MAX) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d registers and %d arguments", ARG_REGS_MAX, ARG_COUNT_MAX);
        return NULL;
    }
    ArgLayoutObject *o = (ArgLayoutObject *)type->tp_alloc(type, 0);
    if (!o) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *name = PyUnicode_Check(PySequence_Fast_GET_ITEM(seq, i))
                               ? PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i))
                               : NULL;
        PyGetSetDef *g = frame_getset;
        while (name && g->name && (strcmp(g->name, name) != 0 || g->get != reg_get))
            g++;
        if (!name || !g->name) {
            Py_DECREF(seq);
            Py_DECREF(o);
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "not a register of Frame's: %R", PySequence_Fast_GET_ITEM(seq, i));
            return NULL;
        }
        o->reg_off[i] = (size_t)g->closure;
    }
    Py_DECREF(seq);
    o->nreg = (int)n;
    o->count = count;
    o->stack_off = off;
    return (PyObject *)o;
}

static PyObject *layout_call(PyObject *self, PyObject *args, PyObject *kw)
{
    PyObject *frame;
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "layout(frame) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!", &Frame_Type, &frame))
        return NULL;
    ArgViewObject *v = PyObject_New(ArgViewObject, &ArgView_Type);
    if (!v)
        return NULL;
    v->frame = (FrameObject *)Py_NewRef(frame);
    v->layout = (ArgLayoutObject *)Py_NewRef(self);
    return (PyObject *)v;
}

PyTypeObject ArgLayout_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pysud._core.ArgLayout",
    .tp_basicsize = sizeof(ArgLayoutObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ArgLayout(registers, stack_offset, count): a calling convention; layout(frame) -> ArgView.",
    .tp_new = layout_new,
    .tp_call = layout_call,
};

static void view_dealloc(PyObject *self)
{
    ArgViewObject *v = (ArgViewObject *)self;
    Py_DECREF(v->frame);
    Py_DECREF(v->layout);
    PyObject_Free(self);
}

static Py_ssize_t view_len(PyObject *self) { return ((ArgViewObject *)self)->layout->count; }

/* Arguments [lo, hi) into out: registers from the frame, stack slots in one checked copy (all
 * zero if it fails: the program's stack ends there). */
static void view_read(ArgViewObject *v, Py_ssize_t lo, Py_ssize_t hi, uint64_t *out)
{
    const struct sud_frame *f = frame_view(v->frame);
    const ArgLayoutObject *l = v->layout;
    Py_ssize_t i = lo;
    for (; i < hi && i < l->nreg; i++)
        *out++ = *(const uint64_t *)((const char *)f + l->reg_off[i]);
    if (i < hi) {
        size_t n = (size_t)(hi - i) * 8;
        if (core_checked_read(f->rsp + l->stack_off + (uint64_t)(i - l->nreg) * 8, out, n) != 0)
            memset(out, 0, n);
    }
}

static PyObject *view_item(PyObject *self, Py_ssize_t i)
{
    ArgViewObject *v = (ArgViewObject *)self;
    if (i < 0 || i >= v->layout->count) {
        PyErr_SetString(PyExc_IndexError, "argument index out of range");
        return NULL;
    }
    uint64_t x;
    view_read(v, i, i + 1, &x);
    return PyLong_FromUnsignedLongLong(x);
}

/* A tuple of arguments [lo, hi) step 1, or of the given indices. */
static PyObject *view_tuple(ArgViewObject *v, Py_ssize_t lo, Py_ssize_t hi)
{
    uint64_t x[ARG_COUNT_MAX];
    Py_ssize_t n = hi > lo ? hi - lo : 0;
    if (n)
        view_read(v, lo, hi, x);
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *e = PyLong_FromUnsignedLongLong(x[i]);
        if (!e) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, e);
    }
    return t;
}

static PyObject *view_subscript(PyObject *self, PyObject *key)
{
    ArgViewObject *v = (ArgViewObject *)self;
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += v->layout->count;
        return view_item(self, i);
    }
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0)
            return NULL;
        Py_ssize_t n = PySlice_AdjustIndices(v->layout->count, &start, &stop, step);
        if (step == 1)
            return view_tuple(v, start, start + n);
        PyObject *all = view_tuple(v, 0, v->layout->count);
        if (!all)
            return NULL;
        PyObject *r = PyObject_GetItem(all, key);
        Py_DECREF(all);
        return r;
    }
    PyErr_Format(PyExc_TypeError, "argument indices are ints or slices, not %.100s", Py_TYPE(key)->tp_name);
    return NULL;
}

static PyObject *view_all(PyObject *self) { return view_tuple((ArgViewObject *)self, 0, view_len(self)); }

static PyObject *view_repr(PyObject *self)
{
    PyObject *t = view_all(self);
    if (!t)
        return NULL;
    PyObject *r = PyObject_Repr(t);
    Py_DECREF(t);
    return r;
}

static PyObject *view_richcompare(PyObject *self, PyObject *other, int op)
{
    PyObject *a = view_all(self);
    if (!a)
        return NULL;
    PyObject *b = PyObject_TypeCheck(other, &ArgView_Type) ? view_all(other) : Py_NewRef(other);
    if (!b) {
        Py_DECREF(a);
        return NULL;
    }
    PyObject *r = PyTuple_Check(b) ? PyObject_RichCompare(a, b, op) : Py_NewRef(Py_NotImplemented);
    Py_DECREF(a);
    Py_DECREF(b);
    return r;
}

static PyObject *view_iter(PyObject *self)
{
    PyObject *t = view_all(self);
    if (!t)
        return NULL;
    PyObject *it = PyObject_GetIter(t);
    Py_DECREF(t);
    return it;
}

static PySequenceMethods view_as_sequence = {
    .sq_length = view_len,
    .sq_item = view_item,
};
static PyMappingMethods view_as_mapping = {
    .mp_length = view_len,
    .mp_subscript = view_subscript,
};

static PyTypeObject ArgView_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pysud._core.ArgView",
    .tp_basicsize = sizeof(ArgViewObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "One call's arguments in an ArgLayout's convention, each read when asked for.",
    .tp_dealloc = view_dealloc,
    .tp_as_sequence = &view_as_sequence,
    .tp_as_mapping = &view_as_mapping,
    .tp_repr = view_repr,
    .tp_richcompare = view_richcompare,
    .tp_iter = view_iter,
    .tp_hash = PyObject_HashNotImplemented,
};

int core_args_ready(void) { return PyType_Ready(&ArgLayout_Type) < 0 || PyType_Ready(&ArgView_Type) < 0 ? -1 : 0; }
