/* module.c - the entry of pysud's native core (module pysud._core): the
 * method table, the constants and module init.  The glue itself is split by
 * topic (frame.c, policy.c, ring.c, trace_format.c, hook.c, arm.c, memory.c, bench.c,
 * guest.c), all sharing core.h.
 *
 * Plain values in, plain values out: registers, addresses, errno numbers.
 * What they mean is decided in Python (the Python modules of src/pysud).
 */
#include "core.h"

#define CORE_API 1

static PyMethodDef module_methods[] = {
    {"run_guest", m_run_guest, METH_VARARGS, "run_guest(entry, sp, mask=-1, keep_pending=False) -> value given to exit_guest()."},
    {"direct_entry_address", m_direct_entry_address, METH_NOARGS, "Address of the flip-switch entry."},
    {"thread_block", m_thread_block, METH_NOARGS, "This armed thread's block (RCX for the direct entry)."},
    {"rewrite_config", m_rewrite_config, METH_VARARGS, "rewrite_config(policy, on, locator) -> enabled."},
    {"rewrite_sites", m_rewrite_sites, METH_NOARGS, "[(site_end, nr, state, reason, trampoline)]."},
    {"rewrite_forget", m_rewrite_forget, METH_NOARGS, "Examine every site afresh (a new image)."},
    {"rewrite_planner", m_rewrite_planner, METH_O, "rewrite_planner(fn): decides sites no pattern matches."},
    {"rewrite_signal_rip", m_rewrite_signal_rip, METH_VARARGS, "Where a signal at rip is delivered (trampolines: the site)."},
    {"rewrite_entry", m_rewrite_entry, METH_NOARGS, "The address of sud_rewrite_entry."},
    {"rewrite_direct_count", m_rewrite_direct_count, METH_O, "Calls of a policy that entered without a trap."},
    {"path_filter", m_path_filter, METH_VARARGS, "path_filter(policy, nr, arg, prefixes or None)."},
    {"range_filter", m_range_filter, METH_VARARGS, "range_filter(policy, nr, arg, lo, hi)."},
    {"reset_signals", m_reset_signals, METH_VARARGS, "reset_signals(keep_ignored, ignored=0): the program's dispositions."},
    {"last_fault", m_last_fault, METH_NOARGS, "(sig, code, addr, regs) of the signal a program died of."},
    {"guest_mask", m_guest_mask, METH_NOARGS, "The program's signal mask when run_guest(mask=...) ended."},
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
    {"vfork_release", m_vfork_release, METH_NOARGS,
     "In a vfork child (a vfork run as a fork): let the parent go on, with the child's copy of its stack."},
    {"vfork_fd", m_vfork_fd, METH_NOARGS, "In a vfork child: its end of the channel to the parent (pysud's), else -1."},
    {"hazard_ranges", m_hazard_ranges, METH_NOARGS, "Text ranges of the host's libc and ld.so."},
    {"thunk", m_thunk, METH_VARARGS, "thunk(target, policy) -> address."},
    {"take_deferred", m_take_deferred, METH_NOARGS, "Records of calls run in C on this thread."},
    {"take_unreported", m_take_unreported, METH_NOARGS,
     "[(nr, args, call_addr, exc)]: handler errors on this thread whose report itself failed."},
    {"deferred_lost", m_deferred_lost, METH_NOARGS, "Calls run in C on this thread that found no room."},
    {"format_records", m_format_records, METH_VARARGS,
     "format_records(data, off, programs, prefixes, errors, error_fn, strsize, durations) -> (text, off, n, stop)."},
    {"read_memory", m_read_memory, METH_VARARGS, "read_memory(addr, n) -> bytes."},
    {"write_memory", m_write_memory, METH_VARARGS, "write_memory(addr, data)."},
    {"write_u64", (PyCFunction)(void (*)(void))m_write_u64, METH_FASTCALL, "write_u64(addr, value): 8 bytes."},
    {"write_u32", (PyCFunction)(void (*)(void))m_write_u32, METH_FASTCALL, "write_u32(addr, value): 4 bytes."},
    {"read_u64s", (PyCFunction)(void (*)(void))m_read_u64s, METH_FASTCALL, "read_u64s(addr, n) -> n u64s."},
    {"set_memory_error", m_set_memory_error, METH_O, "set_memory_error(cls): what a bad address raises."},
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
    if (PyType_Ready(&Frame_Type) < 0 || PyType_Ready(&Policy_Type) < 0 || core_args_ready() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    sud_python_hook = python_hook;
    sud_guest_thread_hook = guest_thread_hook;
    sud_fork_hook = fork_hook;
    sud_orphan_hook = orphan_hook;
    Py_INCREF(&Frame_Type);
    Py_INCREF(&Policy_Type);
    Py_INCREF(&ArgLayout_Type);
    if (PyModule_AddObject(m, "Frame", (PyObject *)&Frame_Type) < 0 ||
        PyModule_AddObject(m, "Policy", (PyObject *)&Policy_Type) < 0 ||
        PyModule_AddObject(m, "ArgLayout", (PyObject *)&ArgLayout_Type) < 0 ||
        PyModule_AddIntConstant(m, "CORE_API", CORE_API) < 0 ||
        PyModule_AddIntConstant(m, "REWRITE_PLAN_AFTER", SUD_REWRITE_PLAN_AFTER) < 0 ||
        PyModule_AddIntConstant(m, "ACT_PYTHON", SUD_ACT_PYTHON) < 0 ||
        PyModule_AddIntConstant(m, "ACT_NATIVE", SUD_ACT_NATIVE) < 0 ||
        PyModule_AddIntConstant(m, "ACT_ERRNO", SUD_ACT_ERRNO) < 0 ||
        PyModule_AddIntConstant(m, "ACT_RETURN", SUD_ACT_RETURN) < 0 ||
        PyModule_AddIntConstant(m, "ACT_TRACE", SUD_ACT_TRACE) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_TIMING", SUD_TRACE_TIMING) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_CPUTIME", SUD_TRACE_CPUTIME) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_REC_SIZE", sizeof(struct sud_rec)) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_CAP_SIZE", sizeof(struct sud_cap)) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_CAP_OPS", SUD_CAP_OPS) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_REC_FULL", SUD_REC_FULL) < 0 ||
        PyModule_AddIntConstant(m, "TRACE_REC_SIGNAL", SUD_REC_SIGNAL) < 0 ||
        PyModule_AddIntConstant(m, "NSYSCALLS", SUD_NSYSCALLS) < 0 ||
        PyModule_AddIntConstant(m, "AUDIT_ARCH_X86_64", SUD_AUDIT_ARCH_X86_64) < 0 ||
        PyModule_AddIntConstant(m, "AUDIT_ARCH_I386", SUD_AUDIT_ARCH_I386) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
