/* rewrite.c - the CPython glue of the ways below the SIGSYS floor: site
 * rewriting (sud_rewrite.c: switch it on for a policy, list the sites the core
 * examined, forget them) and the path filter (sud_filter.c). */
#include "core.h"

#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>


struct host_ranges {
    uint64_t lo[512], hi[512];
    int n;
};

static int add_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct host_ranges *r = data;
    for (int i = 0; i < info->dlpi_phnum && r->n < 512; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        r->lo[r->n] = lo & ~4095ul;
        r->hi[r->n] = (lo + ph->p_memsz + 4095) & ~4095ul;
        r->n++;
    }
    return 0;
}

/* rewrite_config(policy, on, locator) -> bool: patch this policy's trapped
 * sites from now on.  locator: the thread block's offset from the GS base
 * (None: the Linux way, GS base = the thread block).  The host's objects
 * loaded now are never patched.  False when the CPU lacks FSGSBASE. */
PyObject *m_rewrite_config(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *pol, *loc;
    int on;
    if (!PyArg_ParseTuple(args, "OpO", &pol, &on, &loc))
        return NULL;
    struct sud_policy *p = policy_arg(pol);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "rewrite_config needs a policy");
        return NULL;
    }
    uint32_t locator = SUD_REWRITE_LINUX_LOCATOR;
    if (loc != Py_None) {
        unsigned long v = PyLong_AsUnsignedLong(loc);
        if (PyErr_Occurred())
            return NULL;
        if (v > 0x7fffffff) {
            PyErr_SetString(PyExc_ValueError, "locator must fit a disp32");
            return NULL;
        }
        locator = (uint32_t)v;
    }
    int fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0; /* HWCAP2_FSGSBASE: the trampoline's rdgsbase */
    if (on && fsgsbase) {
        struct host_ranges *r = calloc(1, sizeof *r);
        if (!r)
            return PyErr_NoMemory();
        dl_iterate_phdr(add_object, r);
        sud_rewrite_set_host(r->lo, r->hi, r->n);
        free(r);
    }
    p->rewrite_locator = locator;
    __atomic_store_n(&p->rewrite, on && fsgsbase, __ATOMIC_RELEASE);
    return PyBool_FromLong(p->rewrite);
}

/* The planner: a Python callable (end, before, after) -> (length, pad, disp)
 * or -reason, asked about trapped sites none of the core's patterns matches. */
static PyObject *planner;

static int plan_hook(uint64_t end, const uint8_t *before, int nbefore, const uint8_t *after, int nafter, int64_t *pad,
                     int *disp)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int r = -1, d = 0; /* -1: WHY_PATTERN */
    long long p = 0;
    PyObject *fn = planner ? Py_NewRef(planner) : NULL;
    PyObject *res = fn ? PyObject_CallFunction(fn, "Ky#y#", (unsigned long long)end, (const char *)before,
                                               (Py_ssize_t)nbefore, (const char *)after, (Py_ssize_t)nafter)
                       : NULL;
    if (res && PyLong_Check(res)) {
        r = (int)PyLong_AsLong(res);
    } else if (res && !PyArg_ParseTuple(res, "iLi", &r, &p, &d)) {
        r = -1;
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(fn ? fn : Py_None); /* a broken planner: the site keeps trapping */
        r = -1;
    }
    Py_XDECREF(res);
    Py_XDECREF(fn);
    PyGILState_Release(g);
    *pad = p;
    *disp = d;
    return r;
}

/* rewrite_planner(fn): fn(end, before, after) decides sites no pattern of the
 * core matches (None: only the patterns). */
PyObject *m_rewrite_planner(PyObject *m, PyObject *fn)
{
    (void)m;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "rewrite_planner needs a callable or None");
        return NULL;
    }
    PyObject *old = planner;
    planner = fn == Py_None ? NULL : Py_NewRef(fn);
    sud_rewrite_plan = planner ? plan_hook : NULL;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* rewrite_sites() -> [(site_end, nr, state, reason, trampoline)]: every site
 * examined so far.  state 1 patched, 2 left trapping (reason says why). */
PyObject *m_rewrite_sites(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    uint64_t(*out)[5] = malloc(8192 * sizeof *out);
    if (!out)
        return PyErr_NoMemory();
    int n;
    Py_BEGIN_ALLOW_THREADS;
    n = sud_rewrite_sites(out, 8192);
    Py_END_ALLOW_THREADS;
    if (n < 0) {
        free(out);
        PyErr_SetString(PyExc_RuntimeError, "the site table stayed locked");
        return NULL;
    }
    PyObject *l = PyList_New(0);
    for (int i = 0; l && i < n; i++) {
        PyObject *t = Py_BuildValue("(KKKKK)", (unsigned long long)out[i][0], (unsigned long long)out[i][1],
                                    (unsigned long long)out[i][2], (unsigned long long)out[i][3],
                                    (unsigned long long)out[i][4]);
        if (!t || PyList_Append(l, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(l);
            break;
        }
        Py_DECREF(t);
    }
    free(out);
    return l;
}

/* rewrite_forget(): a new image: examine every site afresh. */
PyObject *m_rewrite_forget(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    sud_rewrite_forget();
    Py_RETURN_NONE;
}

/* rewrite_signal_rip(rip, r11=0) -> the address a signal that interrupts rip
 * (with that R11) is delivered at (a trampoline's: its site's); for tests. */
PyObject *m_rewrite_signal_rip(PyObject *m, PyObject *args)
{
    (void)m;
    unsigned long long rip, r11 = 0;
    if (!PyArg_ParseTuple(args, "K|K", &rip, &r11))
        return NULL;
    return PyLong_FromUnsignedLongLong(sud_rewrite_signal_rip(rip, r11));
}

/* rewrite_entry() -> the address of sud_rewrite_entry; for tests. */
PyObject *m_rewrite_entry(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyLong_FromUnsignedLongLong((uint64_t)sud_rewrite_entry);
}

/* rewrite_direct_count(policy) -> calls of the policy that entered without a
 * kernel trap (rewritten sites and the flip switch). */
PyObject *m_rewrite_direct_count(PyObject *m, PyObject *pol)
{
    (void)m;
    struct sud_policy *p = policy_arg(pol);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "rewrite_direct_count needs a policy");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(__atomic_load_n(&p->count_direct, __ATOMIC_RELAXED));
}

/* Put filter pf in force for nr (a slot of its own, reused when nr had one). */
static PyObject *set_filter(struct sud_policy *p, int nr, const struct sud_path_filter *pf)
{
    int slot = p->path_filter[nr];
    if (!slot) {
        uint8_t used[SUD_FILTERS] = {0};
        for (int i = 0; i < SUD_NSYSCALLS; i++)
            if (p->path_filter[i])
                used[p->path_filter[i] - 1] = 1;
        for (int i = 0; i < SUD_FILTERS && !slot; i++)
            if (!used[i])
                slot = i + 1;
        if (!slot) {
            PyErr_SetString(PyExc_ValueError, "no room for another argument filter");
            return NULL;
        }
    }
    p->path_filter[nr] = 0; /* no half-written filter is ever in force */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    p->filters[slot - 1] = *pf;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    p->path_filter[nr] = (uint8_t)slot;
    Py_RETURN_NONE;
}

static struct sud_policy *filter_args(PyObject *pol, int nr, int arg)
{
    struct sud_policy *p = policy_arg(pol);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a filter needs a policy");
        return NULL;
    }
    if (nr < 0 || nr >= SUD_NSYSCALLS || arg < 0 || arg > 5) {
        PyErr_SetString(PyExc_ValueError, "filter: nr or argument index out of range");
        return NULL;
    }
    return p;
}

/* path_filter(policy, nr, arg, prefixes): calls nr reach Python only when
 * argument arg is a path starting with one of prefixes (bytes, at most 4,
 * each shorter than 32 bytes); None clears the filter (of either kind). */
PyObject *m_path_filter(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *pol, *prefixes;
    int nr, arg;
    if (!PyArg_ParseTuple(args, "OiiO", &pol, &nr, &arg, &prefixes))
        return NULL;
    struct sud_policy *p = filter_args(pol, nr, arg);
    if (!p)
        return NULL;
    if (prefixes == Py_None) {
        p->path_filter[nr] = 0;
        Py_RETURN_NONE;
    }
    struct sud_path_filter pf = {.arg = (uint8_t)arg};
    PyObject *seq = PySequence_Fast(prefixes, "prefixes must be a sequence of bytes");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > 4) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "path_filter takes 1 to 4 prefixes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PySequence_Fast_GET_ITEM(seq, i);
        char *s;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(b, &s, &len) < 0 || len < 1 || len >= SUD_PREFIX_MAX) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a prefix is 1 to 31 bytes");
            return NULL;
        }
        memcpy(pf.prefix[i], s, (size_t)len);
        pf.len[i] = (uint8_t)len;
    }
    pf.nprefix = (uint8_t)n;
    Py_DECREF(seq);
    return set_filter(p, nr, &pf);
}

/* range_filter(policy, nr, arg, lo, hi): calls nr reach Python only when the
 * low 32 bits of argument arg lie in [lo, hi] (a descriptor, a flag word). */
PyObject *m_range_filter(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *pol;
    int nr, arg;
    unsigned int lo, hi;
    if (!PyArg_ParseTuple(args, "OiiII", &pol, &nr, &arg, &lo, &hi))
        return NULL;
    struct sud_policy *p = filter_args(pol, nr, arg);
    if (!p)
        return NULL;
    struct sud_path_filter pf = {.arg = (uint8_t)arg, .lo = lo, .hi = hi};
    return set_filter(p, nr, &pf);
}
