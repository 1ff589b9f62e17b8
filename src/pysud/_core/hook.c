/* hook.c - the Python hook: what a trapped call does when Python answers it
 * (sud_dispatch.c calls sud_python_hook outside signal context), and the
 * Python thread state of the threads the core starts for a program.
 */
#include "core.h"

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

/* One frame object per thread is reused while no handler keeps it. */
static __thread FrameObject *spare;

/* Errors that even the error path could not report (on_error itself raised,
 * e.g. RecursionError at the recursion limit): (nr, args, call_addr, exc),
 * kept in C for take_unreported(), so they are never lost. */
static __thread PyObject *unreported;

static void keep_unreported(struct sud_frame *f, PyObject *exc)
{
    long a[6];
    sud_frame_args(f, a);
    if (!unreported)
        unreported = PyList_New(0);
    PyObject *rec = Py_BuildValue("(k(kkkkkk)KO)", (unsigned long)f->nr, (unsigned long)a[0], (unsigned long)a[1],
                                  (unsigned long)a[2], (unsigned long)a[3], (unsigned long)a[4],
                                  (unsigned long)a[5], (unsigned long long)f->call_addr, exc ? exc : Py_None);
    if (!unreported || !rec || PyList_Append(unreported, rec) < 0)
        PyErr_WriteUnraisable(exc ? exc : Py_None); /* out of memory: the last resort */
    Py_XDECREF(rec);
    PyErr_Clear();
}

PyObject *m_take_unreported(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    PyObject *l = unreported ? unreported : PyList_New(0);
    unreported = NULL;
    return l;
}

void python_hook(struct sud_frame *f)
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
            PyObject *r2 = NULL, *exc = NULL;
            if (!done && r && r == po->native_token && po->native_token != Py_None) {
                run_native = 1; /* after the GIL is released: no second GIL round trip */
                done = 1;
                r2 = Py_NewRef(Py_None);
            } else if (!done && r) {
                r2 = PyObject_CallFunctionObjArgs(po->on_result, (PyObject *)fo, r, NULL);
            } else if (!r) {
                exc = fetch_exception();
                r2 = PyObject_CallFunctionObjArgs(po->on_error, (PyObject *)fo, exc, NULL);
            } else {
                r2 = Py_NewRef(Py_None);
            }
            Py_XDECREF(r);
            if (!r2) {
                /* the handler's error (or on_result's) could not be reported */
                if (exc) {
                    PyErr_Clear();
                    keep_unreported(f, exc);
                } else {
                    PyObject *e = fetch_exception();
                    keep_unreported(f, e);
                    Py_DECREF(e);
                }
                f->rax = (uint64_t)-ENOSYS;
            }
            Py_XDECREF(exc);
            Py_XDECREF(r2);
        } else {
            PyObject *r = PyObject_CallOneArg(po->callback, (PyObject *)fo);
            if (!r) {
                /* The Python side turns handler errors into results; this is a
                 * last resort that keeps the foreign code's result defined. */
                PyObject *e = fetch_exception();
                keep_unreported(f, e);
                Py_DECREF(e);
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

/* The fork protocol os.fork follows, around a fork of foreign code: the GIL
 * and the interpreter's fork locks are held across it, so the child (one
 * thread, a copy of this one) finds them in a state it can use, and
 * os.register_at_fork callbacks run.  On the dispatch stack, host TLS. */
void fork_hook(int phase)
{
    static __thread PyGILState_STATE g;
    if (!Py_IsInitialized())
        return;
    if (phase == SUD_FORK_PREPARE) {
        g = PyGILState_Ensure();
        PyOS_BeforeFork();
    } else {
        if (phase == SUD_FORK_CHILD)
            PyOS_AfterFork_Child();
        else
            PyOS_AfterFork_Parent();
        PyGILState_Release(g);
    }
}

/* A process forked by a program thread other than the first: that thread
 * has left the program (value as run_guest would return it).  The policy's
 * on_orphan(value) decides the process's exit status (and may run the next
 * image of an execve first). */
long orphan_hook(struct sud_thread *t, long value)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PolicyObject *po = t->policy ? (PolicyObject *)t->policy->hook_ctx : NULL;
    long status = value;
    if (po && po->on_orphan) {
        PyObject *r = PyObject_CallFunction(po->on_orphan, "l", value);
        if (r && PyLong_Check(r)) {
            status = PyLong_AsLong(r);
        } else if (!r) {
            PyErr_Print(); /* nothing above this thread to raise to */
            status = 1;
        }
        Py_XDECREF(r);
        PyErr_Clear();
    }
    PyGILState_Release(g);
    return status;
}

/* A program thread ends: if a handler asked threading for it (call.thread),
 * threading made it a _DummyThread, which it keeps in threading._active for
 * ever (under an ident a later thread may get): forget it, as threading does
 * when the threads it starts itself end. */
static void forget_dummy_thread(void)
{
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *mod = name ? PyImport_GetModule(name) : NULL; /* only if imported */
    Py_XDECREF(name);
    PyObject *active = mod ? PyObject_GetAttrString(mod, "_active") : NULL;
    PyObject *dummy = mod ? PyObject_GetAttrString(mod, "_DummyThread") : NULL;
    PyObject *key = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    PyObject *th = active && key && PyDict_Check(active) ? PyDict_GetItemWithError(active, key) : NULL;
    if (th && dummy && PyObject_IsInstance(th, dummy) == 1)
        PyDict_DelItem(active, key);
    PyErr_Clear();
    Py_XDECREF(key);
    Py_XDECREF(dummy);
    Py_XDECREF(active);
    Py_XDECREF(mod);
}

/* Threads the core starts for a guest keep one Python thread state for their
 * whole life, so handlers on them do not create and destroy one per call. */
void guest_thread_hook(int start)
{
    static __thread PyThreadState *ts;
    if (start) {
        PyGILState_Ensure();
        ts = PyEval_SaveThread();
    } else if (ts) {
        PyEval_RestoreThread(ts);
        Py_CLEAR(spare); /* the thread ends: its frame object goes with it */
        forget_dummy_thread();
        PyGILState_Release(PyGILState_UNLOCKED);
        ts = NULL;
    }
}
