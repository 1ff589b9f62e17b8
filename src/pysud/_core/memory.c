/* memory.c - memory and raw calls: read/write memory with a clean error for bad
 * addresses, map and unmap code, a raw syscall from the gate.
 */
#include "core.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* While a program runs the core's fault handler recovers a fault in
 * sud_probe_copy: a plain copy (~20 ns) instead of a process_vm_readv/writev
 * (~0.5-1 us, its own syscall), unless the thread has SIGSEGV or SIGBUS
 * blocked (the fault would kill the process); otherwise the kernel checks the
 * address. */
static long vm_rw(uint64_t addr, void *buf, size_t n, int write)
{
    if (sud_vsig_active() && addr + n >= addr && addr + n <= 0x800000000000ull && sud_faults_deliverable()) {
        long r = write ? sud_probe_copy((void *)(uintptr_t)addr, buf, n) : sud_probe_copy(buf, (const void *)(uintptr_t)addr, n);
        if (r == 0)
            return (long)n;
        errno = EFAULT;
        return -1;
    }
    struct iovec local = {buf, n}, remote = {(void *)(uintptr_t)addr, n};
    return syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
}

int core_checked_read(uint64_t addr, void *buf, size_t n) { return vm_rw(addr, buf, n, 0) == (long)n ? 0 : -1; }

/* The OSError subclass a bad address raises (set_memory_error; pysud's GuestMemoryError). */
static PyObject *memory_error;

/* set_memory_error(cls): bad addresses raise cls(errno, message) from now on. */
PyObject *m_set_memory_error(PyObject *m, PyObject *cls)
{
    (void)m;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)PyExc_OSError)) {
        PyErr_SetString(PyExc_TypeError, "set_memory_error() takes a subclass of OSError");
        return NULL;
    }
    Py_XSETREF(memory_error, Py_NewRef(cls));
    Py_RETURN_NONE;
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
        PyErr_SetObject(memory_error ? memory_error : PyExc_OSError, v);
        Py_DECREF(v);
    }
    return NULL;
}

static int u64_arg(PyObject *o, unsigned long long *out)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "an int is needed, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = PyLong_AsUnsignedLongLongMask(o); /* -1 is 0xff..ff, as the program's register holds it */
    return PyErr_Occurred() ? -1 : 0;
}

/* write_u64(addr, value) / write_u32(addr, value): one little-endian integer (its low 64 or 32
 * bits) at addr, through the same checked copy as write_memory. */
static PyObject *write_uint(PyObject *const *args, Py_ssize_t nargs, size_t size, const char *name)
{
    unsigned long long addr, v;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s(addr, value) takes 2 arguments (%zd given)", name, nargs);
        return NULL;
    }
    if (u64_arg(args[0], &addr) < 0 || u64_arg(args[1], &v) < 0)
        return NULL;
    uint32_t v32 = (uint32_t)v;
    uint64_t v64 = v;
    long r = vm_rw(addr, size == 8 ? (void *)&v64 : (void *)&v32, size, 1);
    if (r != (long)size) {
        errno = r < 0 ? errno : EFAULT;
        return vm_error("write", (Py_ssize_t)size, addr);
    }
    Py_RETURN_NONE;
}

PyObject *m_write_u64(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    return write_uint(args, nargs, 8, "write_u64");
}

PyObject *m_write_u32(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    return write_uint(args, nargs, 4, "write_u32");
}

/* read_u64s(addr, n) -> tuple of n little-endian u64 at addr (n <= 64), checked as read_memory. */
PyObject *m_read_u64s(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    unsigned long long addr, n;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "read_u64s(addr, n) takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (u64_arg(args[0], &addr) < 0 || u64_arg(args[1], &n) < 0)
        return NULL;
    uint64_t v[64];
    if (n > 64) {
        PyErr_SetString(PyExc_ValueError, "read_u64s reads at most 64 values");
        return NULL;
    }
    long r = n ? vm_rw(addr, v, n * 8, 0) : 0;
    if (r != (long)(n * 8)) {
        errno = r < 0 ? errno : EFAULT;
        return vm_error("read", (Py_ssize_t)(n * 8), addr);
    }
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (unsigned long long i = 0; t && i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLongLong(v[i]);
        if (!x) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, x);
    }
    return t;
}

PyObject *m_read_memory(PyObject *m, PyObject *args)
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

PyObject *m_write_memory(PyObject *m, PyObject *args)
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
PyObject *m_map_code(PyObject *m, PyObject *arg)
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

PyObject *m_unmap(PyObject *m, PyObject *args)
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
PyObject *m_syscall(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
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
