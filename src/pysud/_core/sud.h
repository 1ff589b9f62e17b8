/* sud.h - the one header shared by every file of pysud's native core.
 *
 * The core knows registers, signals, stacks and the selector byte; it knows
 * nothing of syscall names or what a call means (that lives in Python).
 *
 * Layout constants used by the assembly (sud_entry.S) are defined here as
 * plain numbers and checked against the C structs with _Static_assert, so a
 * change to one that forgets the other does not compile.
 */
#ifndef PYSUD_SUD_H
#define PYSUD_SUD_H

/* ---- kernel interface (numbers from include/uapi/linux/prctl.h) ---- */
#define SUD_PR_SET_SYSCALL_USER_DISPATCH 59
#define SUD_OP_OFF 0
#define SUD_OP_EXCLUSIVE_ON 1
#define SUD_OP_INCLUSIVE_ON 2
#define SUD_FILTER_ALLOW 0
#define SUD_FILTER_BLOCK 1
#define SUD_SI_CODE_USER_DISPATCH 2
#define SUD_AUDIT_ARCH_X86_64 0xc000003eu
#define SUD_AUDIT_ARCH_I386 0x40000003u
#define SUD_PTRACE_SET_CONFIG 0x4210
#define SUD_PTRACE_GET_CONFIG 0x4211

/* ---- sizes ---- */
#define SUD_NSYSCALLS 512          /* x86-64 table slots with a fast-path action */
#define SUD_AREA_SIZE (256 * 1024) /* per-thread area: struct + signal stack, aligned to its size */
#define SUD_DSTACK_SIZE (8 * 1024 * 1024) /* dispatch stack (Python handlers run here) */
#define SUD_SHADOW_ENTRIES 1024    /* nested wrapped calls per thread */
#define SUD_DEFERRED_RING 512 /* past this, calls are counted as lost (deferred_lost) */
#define SUD_THREAD_MAGIC 0x5053554454485244ull /* "PSUDTHRD" */
#define SUD_REDZONE 128
#define SUD_DFLAGS_SLOT 0x8000 /* dispatch stack offset where sud_direct_entry saves RFLAGS */

/* ---- offsets into struct sud_thread used by the assembly ---- */
#define T_SELQ 8       /* quadword whose first byte is the selector */
#define T_POLICY 16
#define T_TARGET 24
#define T_NEWPOL 32
#define T_SSP 40
#define T_SSP_END 48
#define T_HOSTFS 80
#define T_HOSTRSP 88
#define T_DSTACK_LO 96
#define T_DSTACK_HI 104
#define T_DRIP 112
#define T_DRSP 120
#define T_EXITREQ 136
#define T_VPENDING 168
#define T_RESUMEF 184

/* ---- offsets into struct sud_frame used by the assembly ---- */
#define F_RAX 112
#define F_RIP 120
#define F_RSP 144
#define F_XSAVE 184
#define F_THREAD 192
#define F_FLAGS 213
#define SUD_FRAME_DIRTY 1  /* a register was written by a handler */
#define SUD_FRAME_XSAVED 2 /* vector state saved in the XSAVE area */
#define SUD_FRAME_EXIT 4   /* leave the guest: sud_run_guest returns RAX */
#define SUD_FRAME_TRAP 8   /* trapped by SIGSYS from a 2-byte `syscall`: RIP - 2 re-runs the call */
#define SUD_CP_NOT_STARTED 513 /* -ERESTARTNOINTR: sud_gate_syscall_cp did not enter the kernel */
#define SUD_CP_RERUN 514       /* -ERESTARTNOHAND: only a host glibc signal interrupted it: run it again */
#define SUD_FRAME_DIRECT 16 /* came in through a direct entry (no kernel trap) */

#ifndef __ASSEMBLER__
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Fast-path actions, chosen per syscall number by Python. */
enum sud_action_kind {
    SUD_ACT_PYTHON = 0, /* call the policy's Python hook */
    SUD_ACT_NATIVE = 1, /* run the call natively, in C */
    SUD_ACT_ERRNO = 2,  /* fail with -value */
    SUD_ACT_RETURN = 3, /* return value without running it */
    SUD_ACT_TRACE = 4,  /* record it in the policy's trace ring, run it natively (sud_trace.c) */
};

struct sud_action {
    int32_t kind;
    int32_t hazard; /* never enter Python when called from the host's libc/ld.so */
    int64_t value;
};

/* One record of a call that was run in C because entering Python was unsafe. */
struct sud_deferred {
    uint64_t nr, args[6], result, call_addr;
};

struct sud_frame;
struct sud_thread;

/* ---- the trace recorder (sud_trace.c); record layouts are read by pysud.trace._records ---- */
#define SUD_CAP_OPS 4
enum { SUD_CAP_ENTRY = 1, SUD_CAP_EXIT = 2 };                   /* phase */
enum { SUD_CAP_CSTR = 1, SUD_CAP_ARG = 2, SUD_CAP_RET = 3, SUD_CAP_FIXED = 4 }; /* kind */
enum { SUD_CAP_OK = 0, SUD_CAP_FAULT = 1, SUD_CAP_NULL = 2, SUD_CAP_TRUNC = 3 }; /* status */
enum { SUD_REC_CALL = 1, SUD_REC_EXIT = 2, SUD_REC_FULL = 3, SUD_REC_SIGNAL = 4 };
#define SUD_TRACE_TIMING 1
#define SUD_TRACE_CPUTIME 2 /* times are the thread's CPU time (strace -c without -w), not the clock */

/* What to read for one argument: CSTR up to max bytes (stops after the NUL,
 * which it keeps: status OK; TRUNC when no NUL came); ARG
 * a[lenarg] * scale + plus bytes; RET result bytes; FIXED plus bytes; all
 * at most max. */
struct sud_cap_op {
    uint8_t phase, kind, arg, lenarg;
    uint16_t scale, pad;
    uint32_t plus, max;
};

/* One capture in a record, followed by len bytes padded to 8. */
struct sud_cap {
    uint8_t arg, phase, status, pad;
    uint32_t len;
    uint64_t addr;
};

/* One record: CALL (entry), EXIT, FULL (entry and exit together) or SIGNAL
 * (nr = signal, followed by the siginfo); captures follow the header. */
struct sud_rec {
    uint32_t size; /* bytes including the header, a multiple of 8 */
    uint16_t kind, nr;
    int32_t tid;
    uint32_t ncap;
    uint64_t t_entry, t_exit; /* CLOCK_REALTIME ns, with SUD_TRACE_TIMING */
    int64_t args[6];
    int64_t ret;
};

struct sud_trace {
    volatile int32_t lock; /* tid of the holder, 0 when free */
    uint32_t flags;
    uint64_t size;         /* bytes of data */
    volatile uint64_t pos; /* bytes written */
    uint64_t last;         /* offset of the last record */
    uint64_t lost;         /* records that found no room */
    uint32_t maxrec[SUD_NSYSCALLS]; /* room a call needs; 0: not recorded */
    struct sud_cap_op cap[SUD_NSYSCALLS][SUD_CAP_OPS];
    uint8_t *data;
};
int sud_trace_room(const struct sud_trace *tr, long nr);
uint64_t sud_trace_entry(struct sud_trace *tr, struct sud_thread *t, long nr, const long a[6]);
void sud_trace_exit(struct sud_trace *tr, struct sud_thread *t, long nr, const long a[6], long ret, uint64_t off);
void sud_trace_signal(struct sud_trace *tr, struct sud_thread *t, int sig, const siginfo_t *si);
void sud_trace_sigreturn(struct sud_trace *tr, struct sud_thread *t, uint64_t frame);
uint64_t sud_trace_take(struct sud_trace *tr, int tid, uint8_t **spare);
/* A copy that answers -EFAULT instead of faulting, while sud_vsig_active(). */
long sud_probe_copy(void *dst, const void *src, uint64_t n);
extern char sud_probe_copy_insn[], sud_probe_copy_fixup[];
int sud_vsig_active(void);
int sud_faults_deliverable(void); /* sud_trace.c: the recoverable copy is safe on this thread */
void sud_trace_forget(struct sud_trace *tr);

/* An argument filter (sud_filter.c): the call reaches Python only when
 * argument arg names a path that starts with one of the prefixes (nprefix >
 * 0), or, with no prefixes, when its low 32 bits lie in [lo, hi]. */
#define SUD_PREFIX_MAX 32
#define SUD_FILTERS 16
struct sud_path_filter {
    uint8_t arg, nprefix, len[4];
    uint32_t lo, hi;
    char prefix[4][SUD_PREFIX_MAX];
};

/* The per-dispatcher policy.  Owned by a Python object; an armed thread
 * holds a reference (refs) so it outlives the object while still in use. */
struct sud_policy {
    struct sud_action act[SUD_NSYSCALLS];
    struct sud_action other; /* numbers >= SUD_NSYSCALLS and int $0x80 calls */
    uint64_t count[SUD_NSYSCALLS];
    uint64_t count_other;
    int64_t refs;
    struct sud_trace *trace; /* the recorder's ring, or NULL */
    void *hook_ctx; /* opaque to the core: the glue's Python object */
    int32_t rewrite;          /* patch trapped sites (sud_rewrite.c) */
    uint32_t rewrite_locator; /* offset from the GS base of the thread block pointer */
    uint64_t count_direct;    /* calls that came through sud_direct_entry (no kernel trap) */
    uint8_t path_filter[SUD_NSYSCALLS]; /* 1 + index into filters, 0: none */
    struct sud_path_filter filters[SUD_FILTERS];
    /* Two numberings in one process (sud_dispatch): a call made from outside
     * [keep_lo, keep_lo + keep_len) with a number below nrenumber is taken as
     * renumber[nr]; calls from inside the range keep theirs.  0: off. */
    uint32_t nrenumber;
    uint16_t renumber[SUD_NSYSCALLS];
    uint64_t keep_lo, keep_len;
};

/* A trapped call's registers.  The first 20 quadwords are restored by
 * sud_resume with pops and iretq, in this order. */
struct sud_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t rip, cs, rflags, rsp, ss;
    uint64_t nr;         /* 160: syscall number (RAX at the trap) */
    uint64_t call_addr;  /* 168: si_call_addr, the address after the syscall instruction */
    uint64_t fs_base;    /* 176: restored on resume */
    uint64_t xsave;      /* 184: 64-byte aligned XSAVE area */
    struct sud_thread *thread; /* 192 */
    struct sud_frame *prev;    /* 200: enclosing frame when dispatches nest */
    uint32_t arch;       /* 208: si_arch */
    uint8_t selector;    /* 212: selector at the trap, restored on resume */
    uint8_t flags;       /* 213 */
    uint8_t pad[2];
};


struct sud_thread {
    uint64_t magic;          /* 0 */
    volatile uint8_t selector; /* 8: the byte the kernel reads */
    uint8_t selq_pad[7];
    struct sud_policy *policy; /* 16 */
    uint64_t target;         /* 24 */
    uint64_t newpol;         /* 32 */
    uint64_t *ssp;           /* 40 */
    uint64_t *ssp_end;       /* 48 */
    /* arming */
    int op;                  /* SUD_OP_*, OFF when disarmed */
    int gate_allowed;        /* the core's gate lies in the allowed range */
    uint64_t offset, len;
    uint64_t host_fs;
    uint64_t host_rsp;       /* 88: where sud_run_guest left the host's stack */
    char *dstack_lo, *dstack_hi; /* 96, 104: the dispatch stack */
    uint64_t direct_rip, direct_rsp; /* 112, 120: scratch of sud_direct_entry */
    int tid;
    int guest_depth;         /* sud_run_guest calls in progress (0 or 1) */
    /* guest programs (sud_guest.c) */
    volatile int exit_requested; /* the program is exiting: leave the guest at the next chance */
    int group;               /* the program this thread runs (tid of its first thread), 0 if none */
    int gpid;                /* the process that registered it (a fork child's copies do not count) */
    uint64_t clear_tid;      /* the guest's CLONE_CHILD_CLEARTID / set_tid_address word */
    struct sud_thread *gnext; /* registry of threads running guest code */
    /* the program's signals (sud_vsig.c) */
    volatile uint64_t vpending;  /* 168: signals held for the program until the dispatch ends */
    volatile int vrestart;       /* EINTR came from an interrupted call (1: restart with SA_RESTART)
                                    or from one that never started (2: always re-run) */
    volatile int vfatal;         /* the program dies of this signal */
    struct sud_frame *resume_frame; /* 184: the frame sud_resume is restoring */
    volatile uint64_t vblocked;  /* held signals the core blocked in the thread's mask */
    siginfo_t vinfo[65];
    /* memory */
    stack_t old_altstack;
    struct sud_frame *top;   /* innermost frame being dispatched */
    /* calls made safe by the core, reported to Python afterwards */
    struct sud_deferred deferred[SUD_DEFERRED_RING];
    uint32_t ndeferred, deferred_lost;
    /* virtualised so foreign code cannot break the mechanism */
    stack_t virt_altstack;
    int virt_altstack_set;
    uint64_t shadow[3 * SUD_SHADOW_ENTRIES];
    struct sud_thread *self; /* the GS base points here for rewritten sites (sud_rewrite.c) */
    int kop;                 /* the kernel's dispatch mode for this thread as last set (-1: */
    uint64_t koffset, klen;  /* armed with another selector); its range */
    /* Does the thread's mask block SIGSEGV or SIGBUS (the recorder's recoverable copy needs
     * them)?  0: unknown (asked of the kernel at the next copy), 1: no, 2: yes.  Every place
     * the core sees the program's mask change sets it back to 0. */
    int faults_blocked;
};

_Static_assert(offsetof(struct sud_thread, selector) == T_SELQ, "T_SELQ");
_Static_assert(offsetof(struct sud_thread, policy) == T_POLICY, "T_POLICY");
_Static_assert(offsetof(struct sud_thread, target) == T_TARGET, "T_TARGET");
_Static_assert(offsetof(struct sud_thread, newpol) == T_NEWPOL, "T_NEWPOL");
_Static_assert(offsetof(struct sud_thread, ssp) == T_SSP, "T_SSP");
_Static_assert(offsetof(struct sud_thread, ssp_end) == T_SSP_END, "T_SSP_END");
_Static_assert(offsetof(struct sud_thread, host_fs) == T_HOSTFS, "T_HOSTFS");
_Static_assert(offsetof(struct sud_thread, host_rsp) == T_HOSTRSP, "T_HOSTRSP");
_Static_assert(offsetof(struct sud_thread, dstack_lo) == T_DSTACK_LO, "T_DSTACK_LO");
_Static_assert(offsetof(struct sud_thread, dstack_hi) == T_DSTACK_HI, "T_DSTACK_HI");
_Static_assert(offsetof(struct sud_thread, direct_rip) == T_DRIP, "T_DRIP");
_Static_assert(offsetof(struct sud_thread, direct_rsp) == T_DRSP, "T_DRSP");
_Static_assert(offsetof(struct sud_thread, exit_requested) == T_EXITREQ, "T_EXITREQ");
_Static_assert(offsetof(struct sud_thread, vpending) == T_VPENDING, "T_VPENDING");
_Static_assert(offsetof(struct sud_thread, resume_frame) == T_RESUMEF, "T_RESUMEF");
_Static_assert(sizeof(struct sud_frame) == 216, "frame size used by sud_direct_entry");
_Static_assert(offsetof(struct sud_frame, rax) == F_RAX, "F_RAX");
_Static_assert(offsetof(struct sud_frame, rip) == F_RIP, "F_RIP");
_Static_assert(offsetof(struct sud_frame, rsp) == F_RSP, "F_RSP");
_Static_assert(offsetof(struct sud_frame, xsave) == F_XSAVE, "F_XSAVE");
_Static_assert(offsetof(struct sud_frame, thread) == F_THREAD, "F_THREAD");
_Static_assert(offsetof(struct sud_frame, flags) == F_FLAGS, "F_FLAGS");
_Static_assert(sizeof(struct sud_thread) < SUD_AREA_SIZE / 2, "thread area too small");

/* ---- process-wide facts, set once by sud_init (sud_thread.c) ---- */
extern uint64_t sud_xsave_size;  /* bytes of the XSAVE area for enabled features */
extern uint64_t sud_xsave_mask;  /* XCR0 */
extern uint64_t sud_xsave_std_size; /* bytes of a standard-format XSAVE image (signal frames) */
extern int sud_have_fsgsbase;
extern int sud_have_xsavec;
extern uint64_t sud_user_cs, sud_user_ss;
extern uint32_t sud_mxcsr_default;
extern int sud_debug_enabled;
extern uintptr_t sud_hazard_lo[4], sud_hazard_hi[4];
extern int sud_nhazard;
extern __thread struct sud_thread *sud_self;

/* The glue's Python entry: fills in the frame's result. */
extern void (*sud_python_hook)(struct sud_frame *f);
/* The glue's fork protocol around a fork of foreign code (a new process):
 * SUD_FORK_PREPARE before it, SUD_FORK_PARENT / SUD_FORK_CHILD after it
 * (the interpreter's locks are held across the fork, as os.fork does). */
enum { SUD_FORK_PREPARE = 0, SUD_FORK_PARENT = 1, SUD_FORK_CHILD = 2 };
extern void (*sud_fork_hook)(int phase);
/* The glue's answer when, in a process forked by a program thread that is not
 * the program's first, that thread leaves the program (no Python loop waits
 * for it there): the process's exit status. */
extern long (*sud_orphan_hook)(struct sud_thread *t, long value);
/* The glue's check for calls that were run in C instead of Python. */

/* ---- assembly (sud_entry.S) ---- */
extern char sud_gate_start[], sud_gate_end[];
extern char sud_gate_rt_sigreturn[], sud_gate_restorer[];
long sud_gate_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
long sud_gate_int80(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
/* A call on a program thread's behalf that a held signal or an exit can cancel
 * before it enters the kernel: -SUD_CP_NOT_STARTED then (see sud_vsig.c). */
long sud_gate_syscall_cp(struct sud_thread *t, long nr, const long a[6]);
extern char sud_cp_begin[], sud_cp_syscall[], sud_cp_cancel[];
/* Layout known to sud_gate_clone. */
struct sud_clone_req {
    long nr;            /* 0 */
    long a[6];          /* 8 */
    uint64_t fs;        /* 56: FS base for a child on a new stack */
    struct sud_frame *frame; /* 64: registers the child starts with */
    uint64_t newstack;  /* 72: the child jumps to *(new_sp - 8) */
};
long sud_gate_clone(struct sud_clone_req *req);
void sud_dispatch_entry(void);
/* The flip-switch way in: jumped to, not called, with the registers of a
 * syscall instruction, RCX = the thread, R11 = where to resume. */
void sud_direct_entry(void);
void sud_rewrite_entry(void); /* the same for rewritten sites: the frame also says TRAP */
void sud_xsave(struct sud_frame *f);
/* sud_resume's last check, from sud_resume_check to sud_resume_end: signals
 * held or an exit requested since the dispatch ended (sud_dispatch.c). */
extern char sud_resume_check[], sud_resume_end[];
int sud_resume_pending(struct sud_frame *f);
/* Run a guest from its entry point on its own stack, selector BLOCK, until a
 * handler sets SUD_FRAME_EXIT; returns the frame's RAX then. */
long sud_run_guest(uint64_t entry, uint64_t sp, struct sud_thread *t);
/* Enter guest code with a whole register set (a frame on t's dispatch stack);
 * returns the frame's RAX when a handler ends the guest on this thread. */
long sud_enter_guest(struct sud_frame *f, struct sud_thread *t);
/* Leave the guest at once, from anywhere on t (used by the kick signal). */
void sud_guest_abort(void);
extern char sud_thunk_common[];

/* ---- signal context (sud_signal.c): async-signal-safe only ---- */
void sud_sigsys_handler(int sig, siginfo_t *si, void *uc);
void sud_set_chained(const struct sigaction *old);
void sud_floor_handler(int sig, siginfo_t *si, void *uc);        /* benchmark floor */
void sud_floor_native_handler(int sig, siginfo_t *si, void *uc); /* floor + the call */
void sud_frame_args(const struct sud_frame *f, long a[6]);
void sud_rearm_after_fork(void);

/* ---- dispatch, outside signal context (sud_dispatch.c) ---- */
struct sud_frame *sud_dispatch(struct sud_frame *f);
long sud_native(struct sud_frame *f, long nr, const long a[6]);

/* ---- rewriting syscall sites (sud_rewrite.c) ---- */
void sud_rewrite_trapped(struct sud_frame *f, uint32_t locator);
void sud_rewrite_thread_new(struct sud_thread *t);
int sud_rewrite_dispatched(const struct sud_thread *t, struct sud_frame *f);
void sud_rewrite_prctl_done(long op, long offset, long len, const void *selector);
void sud_rewrite_set_host(const uint64_t *lo, const uint64_t *hi, int n);
int sud_rewrite_sites(uint64_t (*out)[5], int max);
void sud_rewrite_forget(void);
extern int (*sud_rewrite_plan)(uint64_t end, const uint8_t *before, int nbefore, const uint8_t *after, int nafter,
                               int64_t *pad, int *disp); /* the glue's planner, for sites no pattern matches */
uint64_t sud_rewrite_signal_rip(uint64_t rip, uint64_t r11); /* signal context: a trampoline's rip as the site's */
uint64_t sud_rewrite_fault_fixup(uint64_t rip); /* signal context: a fault in the GS check: resume here */
int sud_filter_wants(const struct sud_policy *p, const struct sud_frame *f);
#define SUD_REWRITE_LINUX_LOCATOR ((uint32_t)offsetof(struct sud_thread, self))
#define SUD_REWRITE_PLAN_AFTER 8 /* a site no pattern matches goes to the planner at this trap */

/* ---- guest threads and program exit (sud_guest.c) ---- */
#define SUD_SIG_KICK 63 /* real-time signal that tells a guest thread its program is exiting */
extern void (*sud_guest_thread_hook)(int start); /* glue: interpreter state for core-made threads */
extern volatile long sud_group_status;
long sud_spawn_guest_thread(struct sud_frame *f, uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid,
                            uint64_t tls);
void sud_guest_register(struct sud_thread *t, int group);
void sud_guest_unregister(struct sud_thread *t);
void sud_group_exit(struct sud_thread *self, long status);
int sud_group_count(int group, struct sud_thread *except);
void sud_kick_handler(int sig, siginfo_t *si, void *uc);
long sud_guest_aborted(struct sud_thread *t);
void sud_guest_keep_signals(struct sud_thread *t, int keeping);
void sud_guest_kept_signals(struct sud_thread *t, int requeue);
int sud_any_guest_tid(void);

/* ---- the program's signals (sud_vsig.c): signal-context safe ---- */
struct sud_kaction { /* the kernel's struct sigaction */
    uint64_t handler, flags, restorer, mask;
};
struct sud_fault { /* how the program died, for Python */
    int sig, code;
    uint64_t addr;
    uint64_t gregs[23];
};
extern struct sud_fault sud_last_fault;
struct sud_thread *sud_thread_of(const void *uc);
int sud_on_signal_stack(const struct sud_thread *t, const void *uc);
void sud_leave_guest_now(struct sud_thread *t, void *uc);
int sud_vsig_begin(void);
void sud_vsig_end(void);
void sud_vsig_reset(int keep_ignored, uint64_t ignored);
long sud_vsig_sigaction(long sig, uint64_t act, uint64_t oact, long size);
void sud_vsig_deliver(struct sud_frame *f);
void sud_vsig_exec(int before);
void sud_vsig_retake(void);
void sud_vfork_release(void);
int sud_vfork_fd(void);
long sud_vsig_send(long nr, const long a[6]);
void sud_vsig_handler(int sig, siginfo_t *si, void *uc);
long sud_safe_copy(void *dst, const void *src, size_t n, int to_foreign);

/* ---- threads and arming (sud_thread.c) ---- */
int sud_init(void);
int sud_install_handler(int sig, void (*h)(int, siginfo_t *, void *), unsigned long flags, uint64_t mask,
                        struct sigaction *old);
int sud_arm(int op, uint64_t offset, uint64_t len, struct sud_policy *p);
int sud_disarm(void);
int sud_prctl_raw(long op, long offset, long len, void *selector);
struct sud_policy *sud_policy_new(void);
void sud_policy_decref(struct sud_policy *p);
void *sud_thunk_new(uint64_t target, struct sud_policy *p);
static inline uint64_t sud_rdfsbase(void)
{
    uint64_t v;
    __asm__ volatile("rdfsbase %0" : "=r"(v));
    return v;
}
static inline void sud_wrfsbase(uint64_t v) { __asm__ volatile("wrfsbase %0" ::"r"(v) : "memory"); }
uint64_t sud_get_fs(void);
void sud_set_fs(uint64_t v);
void sud_debug(const char *msg);
#endif /* __ASSEMBLER__ */
#endif
