/* core.h - the header shared by the CPython glue of pysud's native core
 * (module.c and the topic files frame.c, policy.c, ring.c, trace_format.c, hook.c, arm.c,
 * memory.c, bench.c, guest.c).  Signal-context files include only sud.h.
 */
#ifndef PYSUD_CORE_H
#define PYSUD_CORE_H

#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <Python.h>
#include <errno.h>
#include <string.h>

#include "sud.h"

/* ---- frame.c */
typedef struct {
    PyObject_HEAD struct sud_frame *live; /* valid only while its handler runs */
    struct sud_frame snap;                /* what it held when the handler returned */
} FrameObject;

extern PyTypeObject Frame_Type;
extern PyTypeObject ArgLayout_Type;
int core_args_ready(void);

/* ---- policy.c */
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
    PyObject *on_orphan;  /* on_orphan(value) -> status: see sud_orphan_hook, or NULL */
} PolicyObject;

extern PyTypeObject Policy_Type;
struct sud_policy *policy_arg(PyObject *o);
PyObject *m_thunk(PyObject *m, PyObject *args);

/* ---- trace_format.c: lines of completed trace records from Python's templates */
PyObject *m_format_records(PyObject *m, PyObject *args);

/* ---- ring.c: the trace ring (Policy methods) and the deferred-call ring */
PyObject *policy_trace_start(PolicyObject *self, PyObject *args);
PyObject *policy_trace_capture(PolicyObject *self, PyObject *args);
PyObject *policy_trace_take(PolicyObject *self, PyObject *unused);
PyObject *policy_trace_forget(PolicyObject *self, PyObject *unused);
PyObject *policy_trace_lost(PolicyObject *self, PyObject *unused);
PyObject *deferred_list(struct sud_thread *t);
PyObject *m_take_deferred(PyObject *m, PyObject *unused);
PyObject *m_deferred_lost(PyObject *m, PyObject *unused);

/* ---- hook.c */
void python_hook(struct sud_frame *f);
PyObject *m_take_unreported(PyObject *m, PyObject *unused);
void guest_thread_hook(int start);
void fork_hook(int phase);
long orphan_hook(struct sud_thread *t, long value);

/* ---- arm.c */
PyObject *errno_error(int neg);
PyObject *m_init(PyObject *m, PyObject *unused);
PyObject *m_arm(PyObject *m, PyObject *args);
PyObject *m_disarm(PyObject *m, PyObject *unused);
PyObject *m_thread_state(PyObject *m, PyObject *pol);
PyObject *m_armed_as(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *m_set_selector(PyObject *m, PyObject *arg);
PyObject *m_get_selector(PyObject *m, PyObject *unused);
PyObject *m_selector_address(PyObject *m, PyObject *unused);
PyObject *m_prctl_raw(PyObject *m, PyObject *args);
PyObject *m_gate_range(PyObject *m, PyObject *unused);
PyObject *m_vfork_release(PyObject *m, PyObject *unused);
PyObject *m_vfork_fd(PyObject *m, PyObject *unused);
PyObject *m_hazard_ranges(PyObject *m, PyObject *unused);
PyObject *m_ptrace_get_config(PyObject *m, PyObject *args);
PyObject *m_ptrace_set_config(PyObject *m, PyObject *args);
PyObject *m_features(PyObject *m, PyObject *unused);

/* ---- memory.c */
PyObject *m_read_memory(PyObject *m, PyObject *args);
PyObject *m_write_memory(PyObject *m, PyObject *args);
PyObject *m_set_memory_error(PyObject *m, PyObject *cls);
/* n bytes at addr into buf through the checked copy: 0, or -1 for a bad address. */
int core_checked_read(uint64_t addr, void *buf, size_t n);
PyObject *m_write_u64(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *m_write_u32(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *m_read_u64s(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *m_map_code(PyObject *m, PyObject *arg);
PyObject *m_unmap(PyObject *m, PyObject *args);
PyObject *m_syscall(PyObject *m, PyObject *const *args, Py_ssize_t nargs);

/* ---- bench.c */
PyObject *m_bench_loop(PyObject *m, PyObject *args);
PyObject *m_bench_floor(PyObject *m, PyObject *args);

/* ---- guest.c */
PyObject *m_run_guest(PyObject *m, PyObject *args);
PyObject *m_direct_entry_address(PyObject *m, PyObject *unused);
PyObject *m_thread_block(PyObject *m, PyObject *unused);
PyObject *m_reset_signals(PyObject *m, PyObject *args);
PyObject *m_last_fault(PyObject *m, PyObject *unused);
PyObject *m_guest_mask(PyObject *m, PyObject *unused);

/* ---- rewrite.c: the ways below the SIGSYS floor (site rewriting, the path filter) */
PyObject *m_rewrite_config(PyObject *m, PyObject *args);
PyObject *m_rewrite_sites(PyObject *m, PyObject *unused);
PyObject *m_rewrite_forget(PyObject *m, PyObject *unused);
PyObject *m_rewrite_planner(PyObject *m, PyObject *fn);
PyObject *m_rewrite_signal_rip(PyObject *m, PyObject *args);
PyObject *m_rewrite_entry(PyObject *m, PyObject *unused);
PyObject *m_rewrite_direct_count(PyObject *m, PyObject *pol);
PyObject *m_path_filter(PyObject *m, PyObject *args);
PyObject *m_range_filter(PyObject *m, PyObject *args);

#endif
