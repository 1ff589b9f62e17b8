/* trace_format.c - lines of completed trace records, from templates Python
 * compiled (pysud.trace._fast): the hot path of `pysud trace`.
 *
 * The core still knows nothing of what a call means.  Python gives, per
 * syscall number, a template: literal text (the name, "(", ", ", ")"), and
 * for each argument one of a few operations on registers and captured bytes
 * (a signed decimal, a pointer, a quoted string as strace quotes it, a
 * buffer, or "call this Python function on the register"), and how the
 * result prints.  This file only runs templates over records, in order, and
 * stops at the first record it has no template for, or whose thread has no
 * prefix yet: Python prints that one and calls again, so lines keep their
 * order.
 */
#include "core.h"

/* One 8-byte instruction of a template: op, argument, capture slot, flags, parameter. */
struct fmt_insn {
    uint8_t op, arg, slot, flags;
    uint32_t param;
};

enum {
    F_LIT = 1,   /* objs[param]: bytes */
    F_S32 = 2,   /* a < 2**31 as is, else the low 32 bits signed */
    F_S64 = 3,
    F_U64 = 4,
    F_HEX = 5,   /* 0 or 0x... */
    F_PTR = 6,   /* NULL or 0x... */
    F_DIRFD = 7, /* AT_FDCWD or signed 32 */
    F_CALL = 8,  /* objs[param](a) -> str (ASCII, else Python prints the line) */
    F_CSTR = 9,  /* capture slot as a C string of at most param bytes */
    F_BUF = 10,  /* capture slot as a buffer; size from ret (BUF_RET) or argument param */
    F_RES_DEC = 20,
    F_RES_HEX = 21,
    F_RES_CALL = 22, /* objs[param](ret) for a result that is not an error */
};
enum { BUF_RET = 1, BUF_FAILED_PTR = 2, BUF_HEX = 4 };
enum { STOP_END = 0, STOP_RECORD = 1, STOP_TID = 2 };

struct out {
    char *p;
    size_t len, cap;
};

static int grow(struct out *o, size_t n)
{
    if (o->len + n <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 65536;
    while (cap < o->len + n)
        cap *= 2;
    char *p = PyMem_Realloc(o->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    o->p = p;
    o->cap = cap;
    return 0;
}

static int put(struct out *o, const char *s, size_t n)
{
    if (grow(o, n) < 0)
        return -1;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return 0;
}

/* v in decimal (negative: a minus sign and the magnitude), without printf (the hot path) */
static int put_dec(struct out *o, uint64_t v, int negative)
{
    char b[24], *e = b + sizeof b, *d = e;
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        *--d = '-';
    return put(o, d, (size_t)(e - d));
}

static int put_u64(struct out *o, uint64_t v) { return put_dec(o, v, 0); }

static int put_s64(struct out *o, int64_t v)
{
    return v < 0 ? put_dec(o, (uint64_t)0 - (uint64_t)v, 1) : put_dec(o, (uint64_t)v, 0);
}

static int put_ptr(struct out *o, uint64_t v, const char *zero)
{
    if (!v)
        return put(o, zero, strlen(zero));
    char b[24], *e = b + sizeof b, *d = e;
    do {
        *--d = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    *--d = 'x';
    *--d = '0';
    return put(o, d, (size_t)(e - d));
}

/* strace's string_quote (pysud.trace.decoders.quote): C escapes, printable as is, octal for
 * the rest (three digits when an octal digit follows), or every byte in hex. */
static int quote(struct out *o, const uint8_t *s, size_t n, int hex)
{
    if (grow(o, 4 * n + 2) < 0)
        return -1;
    char *d = o->p + o->len;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (hex) {
            *d++ = '\\';
            *d++ = 'x';
            *d++ = "0123456789abcdef"[c >> 4];
            *d++ = "0123456789abcdef"[c & 15];
            continue;
        }
        switch (c) {
        case '"': *d++ = '\\'; *d++ = '"'; continue;
        case '\\': *d++ = '\\'; *d++ = '\\'; continue;
        case '\f': *d++ = '\\'; *d++ = 'f'; continue;
        case '\n': *d++ = '\\'; *d++ = 'n'; continue;
        case '\r': *d++ = '\\'; *d++ = 'r'; continue;
        case '\t': *d++ = '\\'; *d++ = 't'; continue;
        case '\v': *d++ = '\\'; *d++ = 'v'; continue;
        }
        if (c >= 32 && c < 127) {
            *d++ = (char)c;
            continue;
        }
        *d++ = '\\';
        if (i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7') {
            *d++ = (char)('0' + (c >> 6));
            *d++ = (char)('0' + ((c >> 3) & 7));
        } else if (c >= 64) {
            *d++ = (char)('0' + (c >> 6));
            *d++ = (char)('0' + ((c >> 3) & 7));
        } else if (c >= 8) {
            *d++ = (char)('0' + (c >> 3));
        }
        *d++ = (char)('0' + (c & 7));
    }
    *d++ = '"';
    o->len = (size_t)(d - o->p);
    return 0;
}

/* str(fn(v)) appended; 1: not ASCII (Python prints the line), -1: error. */
static int put_call(struct out *o, PyObject *fn, PyObject *v)
{
    if (!v)
        return -1;
    PyObject *s = PyObject_CallOneArg(fn, v);
    Py_DECREF(v);
    if (!s)
        return -1;
    if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s)) {
        Py_DECREF(s);
        return 1;
    }
    int r = put(o, (const char *)PyUnicode_DATA(s), (size_t)PyUnicode_GET_LENGTH(s));
    Py_DECREF(s);
    return r;
}

struct cap_view {
    int status; /* SUD_CAP_*, or -1: no such capture */
    const uint8_t *data;
    uint32_t len;
};

/* One record's line appended; 0 done, 1 Python must print it, -1 error. */
static int format_one(struct out *o, const struct sud_rec *r, const struct cap_view *caps, int ncaps,
                      const struct fmt_insn *code, Py_ssize_t ninsn, PyObject *objs, const char *prefix,
                      Py_ssize_t prefix_len, PyObject *errors, PyObject *error_fn, uint32_t strsize,
                      int durations)
{
    size_t start = o->len;
    if (put(o, prefix, (size_t)prefix_len) < 0)
        return -1;
    const uint64_t *a = (const uint64_t *)r->args;
    int64_t ret = r->ret;
    int failed = ret < 0 && ret > -4096;
    for (Py_ssize_t j = 0; j < ninsn; j++) {
        const struct fmt_insn *in = &code[j];
        uint64_t v = in->arg < 6 ? a[in->arg] : 0;
        int rc = 0;
        switch (in->op) {
        case F_LIT: {
            PyObject *b = PyTuple_GET_ITEM(objs, in->param);
            rc = put(o, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
            break;
        }
        case F_S32:
            rc = v < 0x80000000ull ? put_u64(o, v) : put_s64(o, (int32_t)(uint32_t)v);
            break;
        case F_S64:
            rc = put_s64(o, (int64_t)v);
            break;
        case F_U64:
            rc = put_u64(o, v);
            break;
        case F_HEX:
            rc = put_ptr(o, v, "0");
            break;
        case F_PTR:
            rc = put_ptr(o, v, "NULL");
            break;
        case F_DIRFD:
            rc = (uint32_t)v == 0xffffff9cu ? put(o, "AT_FDCWD", 8)
                                             : put_s64(o, (int32_t)(uint32_t)v);
            break;
        case F_CALL:
            rc = put_call(o, PyTuple_GET_ITEM(objs, in->param), PyLong_FromUnsignedLongLong(v));
            break;
        case F_CSTR: {
            const struct cap_view *c = in->slot < ncaps ? &caps[in->slot] : NULL;
            if (c && c->status == SUD_CAP_NULL) {
                rc = put(o, "NULL", 4);
            } else if (!c || c->status == SUD_CAP_FAULT) {
                rc = put_ptr(o, v, "NULL");
            } else {
                const uint8_t *nul = memchr(c->data, 0, c->len);
                size_t lim = in->param;
                if (nul && (size_t)(nul - c->data) <= lim) {
                    rc = quote(o, c->data, (size_t)(nul - c->data), 0);
                } else {
                    rc = quote(o, c->data, c->len < lim ? c->len : lim, 0);
                    if (!rc)
                        rc = put(o, "...", 3);
                }
            }
            break;
        }
        case F_BUF: {
            if ((in->flags & BUF_FAILED_PTR) && failed) {
                rc = put_ptr(o, v, "NULL");
                break;
            }
            uint64_t size = (in->flags & BUF_RET) ? (uint64_t)ret : a[in->param];
            const struct cap_view *c = in->slot < ncaps ? &caps[in->slot] : NULL;
            int hex = in->flags & BUF_HEX;
            if (c && c->status == SUD_CAP_NULL) {
                rc = size ? put(o, "NULL", 4) : put(o, "\"\"", 2);
            } else if (!c || c->status == SUD_CAP_FAULT) {
                rc = put_ptr(o, v, "NULL");
            } else if (hex && !c->len) {
                rc = put(o, "\"\"", 2);
            } else if (size > strsize) {
                rc = quote(o, c->data, c->len < strsize ? c->len : strsize, hex);
                if (!rc)
                    rc = put(o, "...", 3);
            } else {
                rc = quote(o, c->data, c->len, hex);
            }
            break;
        }
        case F_RES_DEC:
        case F_RES_HEX:
        case F_RES_CALL: {
            size_t col = o->len - start;
            if (col < 39) {
                if (grow(o, 39 - col) < 0)
                    return -1;
                memset(o->p + o->len, ' ', 39 - col);
                o->len += 39 - col;
            }
            if (put(o, " = ", 3) < 0)
                return -1;
            if (failed) {
                PyObject *key = PyLong_FromLongLong(ret);
                if (!key)
                    return -1;
                PyObject *t = PyDict_GetItemWithError(errors, key); /* borrowed */
                if (!t) {
                    if (PyErr_Occurred()) {
                        Py_DECREF(key);
                        return -1;
                    }
                    PyObject *s = PyObject_CallOneArg(error_fn, key);
                    if (!s || !PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s)) {
                        Py_DECREF(key);
                        Py_XDECREF(s);
                        return s ? 1 : -1;
                    }
                    t = PyUnicode_AsASCIIString(s);
                    Py_DECREF(s);
                    if (!t || PyDict_SetItem(errors, key, t) < 0) {
                        Py_DECREF(key);
                        Py_XDECREF(t);
                        return -1;
                    }
                    Py_DECREF(t); /* the dict holds it */
                }
                Py_DECREF(key);
                rc = put(o, PyBytes_AS_STRING(t), (size_t)PyBytes_GET_SIZE(t));
            } else if (in->op == F_RES_DEC) {
                rc = put_s64(o, ret);
            } else if (in->op == F_RES_HEX) {
                rc = put_ptr(o, (uint64_t)ret, "0");
            } else {
                rc = put_call(o, PyTuple_GET_ITEM(objs, in->param), PyLong_FromLongLong(ret));
            }
            if (!rc && durations) {
                char b[48];
                int n = snprintf(b, sizeof b, " <%.6f>", (double)(int64_t)(r->t_exit - r->t_entry) / 1e9);
                rc = put(o, b, (size_t)n);
            }
            if (!rc)
                rc = put(o, "\n", 1);
            break;
        }
        default:
            rc = 1;
        }
        if (rc) {
            o->len = start; /* nothing of a line Python prints */
            return rc;
        }
    }
    return 0;
}

/* format_records(data, off, programs, prefixes, errors, error_fn, strsize, durations)
 *   -> (text, off, count, stop)
 * programs[nr]: None or (code bytes of struct fmt_insn, objs tuple); prefixes: tid -> bytes;
 * errors: result -> bytes (filled from error_fn). Formats completed records from off on until
 * the end of data (stop 0), a record it cannot format (stop 1) or a thread without a prefix
 * (stop 2); off is where it stopped. */
PyObject *m_format_records(PyObject *m, PyObject *args)
{
    (void)m;
    Py_buffer data;
    Py_ssize_t off;
    PyObject *programs, *prefixes, *errors, *error_fn;
    unsigned int strsize;
    int durations;
    if (!PyArg_ParseTuple(args, "y*nO!O!O!OIp", &data, &off, &PyList_Type, &programs, &PyDict_Type, &prefixes,
                          &PyDict_Type, &errors, &error_fn, &strsize, &durations))
        return NULL;
    struct out o = {NULL, 0, 0};
    const uint8_t *base = data.buf;
    Py_ssize_t end = data.len, nprog = PyList_GET_SIZE(programs), count = 0;
    int stop = STOP_END;
    int32_t last_tid = 0;
    const char *prefix = NULL;
    Py_ssize_t prefix_len = 0;
    PyObject *prefix_obj = NULL; /* a reference for the cached tid's prefix */
    if (off < 0)
        off = end;
    while (off + (Py_ssize_t)sizeof(struct sud_rec) <= end) {
        struct sud_rec r;
        memcpy(&r, base + off, sizeof r);
        if (r.size < sizeof r || (Py_ssize_t)r.size > end - off || r.kind != SUD_REC_FULL || r.nr >= nprog ||
            r.ncap > SUD_CAP_OPS) {
            stop = STOP_RECORD;
            break;
        }
        PyObject *prog = PyList_GET_ITEM(programs, r.nr);
        if (prog == Py_None || !PyTuple_Check(prog) || PyTuple_GET_SIZE(prog) != 2) {
            stop = STOP_RECORD;
            break;
        }
        if (!prefix || r.tid != last_tid) {
            PyObject *key = PyLong_FromLong(r.tid);
            if (!key)
                goto error;
            PyObject *p = PyDict_GetItemWithError(prefixes, key);
            Py_DECREF(key);
            if (!p) {
                if (PyErr_Occurred())
                    goto error;
                stop = STOP_TID;
                break;
            }
            if (!PyBytes_Check(p)) {
                PyErr_SetString(PyExc_TypeError, "prefixes must be bytes");
                goto error;
            }
            Py_INCREF(p);
            Py_XDECREF(prefix_obj);
            prefix_obj = p;
            prefix = PyBytes_AS_STRING(p);
            prefix_len = PyBytes_GET_SIZE(p);
            last_tid = r.tid;
        }
        struct cap_view caps[SUD_CAP_OPS];
        Py_ssize_t p = off + (Py_ssize_t)sizeof r, rend = off + (Py_ssize_t)r.size;
        int bad = 0;
        for (uint32_t j = 0; j < r.ncap; j++) {
            struct sud_cap c;
            if (p + (Py_ssize_t)sizeof c > rend) {
                bad = 1;
                break;
            }
            memcpy(&c, base + p, sizeof c);
            p += sizeof c;
            if ((Py_ssize_t)c.len > rend - p) {
                bad = 1;
                break;
            }
            caps[j] = (struct cap_view){c.status, base + p, c.len};
            p += (Py_ssize_t)((c.len + 7) & ~7u);
        }
        PyObject *code = PyTuple_GET_ITEM(prog, 0), *objs = PyTuple_GET_ITEM(prog, 1);
        if (bad || !PyBytes_Check(code) || !PyTuple_Check(objs) || PyBytes_GET_SIZE(code) % sizeof(struct fmt_insn)) {
            stop = STOP_RECORD;
            break;
        }
        int rc = format_one(&o, &r, caps, (int)r.ncap, (const struct fmt_insn *)PyBytes_AS_STRING(code),
                            PyBytes_GET_SIZE(code) / (Py_ssize_t)sizeof(struct fmt_insn), objs, prefix, prefix_len,
                            errors, error_fn, strsize, durations);
        if (rc < 0)
            goto error;
        if (rc > 0) {
            stop = STOP_RECORD;
            break;
        }
        off += r.size;
        count++;
    }
    if (stop == STOP_END && off < end)
        stop = STOP_RECORD; /* a truncated record: Python says what is wrong with it */
    Py_XDECREF(prefix_obj);
    PyBuffer_Release(&data);
    PyObject *text = PyBytes_FromStringAndSize(o.p ? o.p : "", (Py_ssize_t)o.len);
    PyMem_Free(o.p);
    if (!text)
        return NULL;
    return Py_BuildValue("(Nnni)", text, off, count, stop);
error:
    Py_XDECREF(prefix_obj);
    PyBuffer_Release(&data);
    PyMem_Free(o.p);
    return NULL;
}
