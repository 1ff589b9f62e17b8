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
 * (~0.5-1 us, its own syscall); otherwise the kernel checks the address. */
static long vm_rw(uint64_t addr, void *buf, size_t n, int write)
{
    if (sud_vsig_active() && addr + n >= addr && addr + n <= 0x800000000000ull) {
        long r = write ? sud_probe_copy((void *)(uintptr_t)addr, buf, n) : sud_probe_copy(buf, (const void *)(uintptr_t)addr, n);
        if (r == 0)
            return (long)n;
        errno = EFAULT;
        return -1;
    }
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
