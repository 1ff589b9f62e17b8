/* arm.c - arming: set-up, per-thread arming and the selector, the gate and hazard
 * ranges, the ptrace configuration calls and what the machine provides.
 */
#include "core.h"
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

PyObject *errno_error(int neg)
{
    errno = -neg;
    return PyErr_SetFromErrno(PyExc_OSError);
}

PyObject *m_init(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    int r = sud_init();
    if (r)
        return errno_error(r);
    Py_RETURN_NONE;
}

PyObject *m_arm(PyObject *m, PyObject *args)
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

PyObject *m_disarm(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    int r = sud_disarm();
    if (r)
        return errno_error(r);
    Py_RETURN_NONE;
}

/* (op, offset, len, selector, tid, policy_is) for this thread, or None */
PyObject *m_thread_state(PyObject *m, PyObject *pol)
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
PyObject *m_armed_as(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
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

PyObject *m_set_selector(PyObject *m, PyObject *arg)
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

PyObject *m_get_selector(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    struct sud_thread *t = sud_self;
    if (!t)
        Py_RETURN_NONE;
    return PyLong_FromLong(t->selector);
}

PyObject *m_selector_address(PyObject *m, PyObject *unused)
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
PyObject *m_prctl_raw(PyObject *m, PyObject *args)
{
    (void)m;
    long long op;
    unsigned long long off, len, sel;
    if (!PyArg_ParseTuple(args, "LKKK", &op, &off, &len, &sel))
        return NULL;
    return PyLong_FromLong(sud_prctl_raw((long)op, (long)off, (long)len, (void *)(uintptr_t)sel));
}

PyObject *m_gate_range(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)sud_gate_start,
                         (unsigned long long)(uintptr_t)sud_gate_end);
}

PyObject *m_hazard_ranges(PyObject *m, PyObject *unused)
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

PyObject *m_ptrace_get_config(PyObject *m, PyObject *args)
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

PyObject *m_ptrace_set_config(PyObject *m, PyObject *args)
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

PyObject *m_features(PyObject *m, PyObject *unused)
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
