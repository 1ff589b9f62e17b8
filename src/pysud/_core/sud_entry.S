/* sud_entry.S - the core's assembly: the gate (every syscall instruction the
 * core executes itself), the way into and out of dispatch, and the common
 * part of the thunks that flip the selector around a wrapped native call.
 */
#include "sud.h"

/* ------------------------------------------------------------------------
 * The gate.  Its own page-aligned section: in exclusive mode pysud arms with
 * this section as the allowed region, so these syscalls always run directly.
 * ---------------------------------------------------------------------- */
        .section .text.pysud_gate,"ax",@progbits
        .balign 4096
        .globl sud_gate_start
        .hidden sud_gate_start
sud_gate_start:

/* long sud_gate_syscall6(nr, a1, a2, a3, a4, a5, a6) */
        .globl sud_gate_syscall6
        .hidden sud_gate_syscall6
        .type sud_gate_syscall6, @function
sud_gate_syscall6:
        mov     %rdi, %rax
        mov     %rsi, %rdi
        mov     %rdx, %rsi
        mov     %rcx, %rdx
        mov     %r8, %r10
        mov     %r9, %r8
        mov     8(%rsp), %r9
        xor     %ecx, %ecx              /* 0 until the kernel enters: a signal at the syscall sees it not started */
        syscall
        ret
        .size sud_gate_syscall6, .-sud_gate_syscall6

/* long sud_gate_int80(nr, a1..a6): the i386 convention, for int $0x80 calls */
        .globl sud_gate_int80
        .hidden sud_gate_int80
        .type sud_gate_int80, @function
sud_gate_int80:
        push    %rbx
        push    %rbp
        mov     %rdi, %rax
        mov     %rsi, %rbx
        mov     %rcx, %r10
        mov     %rdx, %rcx
        mov     %r10, %rdx
        mov     %r8, %rsi
        mov     %r9, %rdi
        mov     24(%rsp), %rbp
        int     $0x80
        pop     %rbp
        pop     %rbx
        ret
        .size sud_gate_int80, .-sud_gate_int80

/* long sud_gate_syscall_cp(struct sud_thread *t, long nr, const long a[6])
 * A call made on a program thread's behalf.  Between sud_cp_begin and the
 * syscall instruction it checks, as glibc's and musl's cancellation points
 * do, whether the thread holds a signal for the program or must exit; a
 * signal handler that interrupts this window moves RIP to sud_cp_cancel, so
 * a signal can never arrive "just before" the call and leave it blocking.
 * RCX is 0 until SYSCALL writes the return address into it: at
 * sud_cp_syscall, RCX 0 means the call has not started, anything else that
 * the kernel has rewound an interrupted call to restart it. */
        .globl sud_gate_syscall_cp, sud_cp_begin, sud_cp_syscall, sud_cp_cancel
        .hidden sud_gate_syscall_cp, sud_cp_begin, sud_cp_syscall, sud_cp_cancel
        .type sud_gate_syscall_cp, @function
sud_gate_syscall_cp:
        mov     %rdi, %r11
        mov     %rsi, %rax
        mov     0(%rdx), %rdi
        mov     8(%rdx), %rsi
        mov     24(%rdx), %r10
        mov     32(%rdx), %r8
        mov     40(%rdx), %r9
        mov     16(%rdx), %rdx
        xor     %ecx, %ecx
sud_cp_begin:
        cmpq    $0, T_VPENDING(%r11)
        jne     sud_cp_cancel
        cmpl    $0, T_EXITREQ(%r11)
        jne     sud_cp_cancel
sud_cp_syscall:
        syscall
        ret
sud_cp_cancel:
        mov     $-SUD_CP_NOT_STARTED, %rax
        ret
        .size sud_gate_syscall_cp, .-sud_gate_syscall_cp

/* a signal restorer that is never dispatched (used by the benchmark floor) */
        .globl sud_gate_restorer
        .hidden sud_gate_restorer
sud_gate_restorer:
        mov     $15, %eax
        syscall
        ud2

/* rt_sigreturn at the interrupted RSP (RAX already holds its number) */
        .globl sud_gate_rt_sigreturn
        .hidden sud_gate_rt_sigreturn
sud_gate_rt_sigreturn:
        syscall
        ud2

/* req (in %r11) -> the syscall's number and arguments */
        .macro LOAD_CLONE_ARGS
        mov     8(%r11), %rdi
        mov     16(%r11), %rsi
        mov     24(%r11), %rdx
        mov     32(%r11), %r10
        mov     40(%r11), %r8
        mov     48(%r11), %r9
        mov     0(%r11), %rax
        .endm

/* long sud_gate_clone(struct sud_clone_req *req)
 * req: {nr, a[6], fs, regs*}.  Loads the trapped frame's registers, so that a
 * child sees what it would have seen after its own syscall, and issues the
 * call.  Two ways out for the child:
 *   same stack (fork-like): it returns here, like the parent, with RAX 0;
 *   new stack: it jumps to the address the caller stored at new_sp - 8. */
        .globl sud_gate_clone
        .hidden sud_gate_clone
        .type sud_gate_clone, @function
sud_gate_clone:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rdi, %r11              /* req */
        mov     64(%r11), %rcx          /* frame */
        mov     104(%rcx), %rbx         /* frame->rbx (offset 13*8) */
        mov     64(%rcx), %rbp          /* frame->rbp (8*8) */
        mov     24(%rcx), %r12
        mov     16(%rcx), %r13
        mov     8(%rcx), %r14
        mov     0(%rcx), %r15
        mov     72(%r11), %r10          /* newstack flag */
        test    %r10, %r10
        jnz     2f
        LOAD_CLONE_ARGS
        syscall
1:      pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        ret
2:      /* new stack: switch FS to the caller's first, so the child starts with it */
        mov     56(%r11), %rax
        cmpl    $0, sud_have_fsgsbase(%rip)
        je      3f
        wrfsbase %rax
3:      LOAD_CLONE_ARGS
        syscall
        test    %rax, %rax
        jnz     4f
        /* child.  A forked one (no CLONE_VM) re-arms itself first: the caller
         * left {selector value, len, offset, op, &selector} below the address
         * at new_sp - 8; &selector is 0 when there is nothing to arm. */
        cmpq    $0, -16(%rsp)
        je      5f
        mov     %rdi, -56(%rsp)
        mov     %rsi, -64(%rsp)
        mov     %rdx, -72(%rsp)
        mov     %r10, -80(%rsp)
        mov     %r8, -88(%rsp)
        mov     $157, %eax              /* prctl(PR_SET_SYSCALL_USER_DISPATCH, op, off, len, sel) */
        mov     $SUD_PR_SET_SYSCALL_USER_DISPATCH, %edi
        mov     -24(%rsp), %rsi
        mov     -32(%rsp), %rdx
        mov     -40(%rsp), %r10
        mov     -16(%rsp), %r8
        syscall
        mov     -16(%rsp), %rcx
        movzbl  -48(%rsp), %eax
        movb    %al, (%rcx)             /* the selector the foreign code had */
        mov     -56(%rsp), %rdi
        mov     -64(%rsp), %rsi
        mov     -72(%rsp), %rdx
        mov     -80(%rsp), %r10
        mov     -88(%rsp), %r8
        xor     %eax, %eax
5:      mov     -8(%rsp), %rcx          /* continue the foreign code */
        jmp     *%rcx
4:      /* parent: host FS back (the caller restores it too; this keeps C safe) */
        jmp     1b
        .size sud_gate_clone, .-sud_gate_clone

        .balign 4096
        .globl sud_gate_end
        .hidden sud_gate_end
sud_gate_end:

/* ------------------------------------------------------------------------
 * Into and out of dispatch.
 * ---------------------------------------------------------------------- */
        .text
/* The flip-switch entry: a call from foreign code that a compatibility
 * boundary (e.g. an ntdll stub) sends here instead of executing `syscall`.
 * No kernel entry: the selector is flipped to ALLOW in user space and the
 * same frame the SIGSYS handler would build is built here.
 * In: the registers of a syscall instruction (RAX = number, args), with
 * RCX = struct sud_thread *, R11 = the address to resume at (as after the
 * syscall).  Out (through sud_resume): RAX = result, RCX = resume address,
 * R11 = RFLAGS, everything else as it was. */
/* The body of both direct entries; frame_flags marks the frame. */
        .macro DIRECT_ENTRY frame_flags
        movb    $SUD_FILTER_ALLOW, T_SELQ(%rcx)
        mov     %r11, T_DRIP(%rcx)
        mov     %rsp, T_DRSP(%rcx)
        /* The caller's RFLAGS, before an instruction here changes them: pushed
         * into a slot near the bottom of the dispatch stack (the SIGSYS path
         * keeps its lowest 64 KiB unused; a signal handler that runs on this
         * stack meanwhile still has 32 KiB below). */
        mov     T_DSTACK_LO(%rcx), %rsp
        lea     SUD_DFLAGS_SLOT+8(%rsp), %rsp
        pushfq
        mov     T_DRSP(%rcx), %rsp
        /* the frame: at the top of the dispatch stack, or below the red zone
         * when the caller already runs on it (a handler called foreign code) */
        mov     T_DSTACK_HI(%rcx), %r11
        cmp     T_DSTACK_LO(%rcx), %rsp
        jbe     1f
        cmp     %r11, %rsp
        ja      1f
        lea     -SUD_REDZONE(%rsp), %r11
1:      sub     $216, %r11
        and     $-64, %r11
        lea     F_RIP(%r11), %rsp
        push    %rax
        push    %rbx
        push    %rcx
        push    %rdx
        push    %rsi
        push    %rdi
        push    %rbp
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        /* RSP = frame now */
        mov     T_DRIP(%rcx), %rax
        mov     %rax, F_RIP(%rsp)
        mov     %rax, 96(%rsp)          /* frame->rcx: what syscall leaves in RCX */
        mov     %rax, 168(%rsp)         /* call_addr */
        mov     T_DSTACK_LO(%rcx), %rax
        mov     SUD_DFLAGS_SLOT(%rax), %rax
        mov     %rax, 136(%rsp)         /* rflags, as the caller had them */
        mov     %rax, 32(%rsp)          /* frame->r11 */
        mov     T_DRSP(%rcx), %rax
        mov     %rax, F_RSP(%rsp)
        mov     sud_user_cs(%rip), %rax
        mov     %rax, 128(%rsp)
        mov     sud_user_ss(%rip), %rax
        mov     %rax, 152(%rsp)
        mov     F_RAX(%rsp), %rax
        mov     %rax, 160(%rsp)         /* nr */
        mov     %rcx, F_THREAD(%rsp)
        movq    $0, 200(%rsp)           /* prev */
        movl    $0xc000003e, 208(%rsp)      /* AUDIT_ARCH_X86_64 */
        movb    $SUD_FILTER_BLOCK, 212(%rsp) /* the selector to resume with */
        movb    $\frame_flags, F_FLAGS(%rsp)
        /* XSAVE area below the frame, header cleared */
        mov     %rsp, %rax
        sub     sud_xsave_size(%rip), %rax
        and     $-64, %rax
        mov     %rax, F_XSAVE(%rsp)
        movq    $0, 512(%rax)
        movq    $0, 520(%rax)
        movq    $0, 528(%rax)
        movq    $0, 536(%rax)
        movq    $0, 544(%rax)
        movq    $0, 552(%rax)
        movq    $0, 560(%rax)
        movq    $0, 568(%rax)
        /* FS: the frame keeps the caller's, dispatch runs with the host's */
        mov     %rsp, %rdi
        cmpl    $0, sud_have_fsgsbase(%rip)
        je      2f
        rdfsbase %rdx
        mov     %rdx, 176(%rdi)
        cmp     T_HOSTFS(%rcx), %rdx
        je      3f
        mov     T_HOSTFS(%rcx), %rdx
        wrfsbase %rdx
        jmp     3f
2:      /* no fsgsbase: ask the kernel (from the core, which is never dispatched) */
        sub     $64, %rax
        and     $-16, %rax
        mov     %rax, %rsp
        push    %rdi
        push    %rcx
        call    sud_get_fs
        pop     %rcx
        pop     %rdi
        mov     %rax, 176(%rdi)
        cmp     T_HOSTFS(%rcx), %rax
        je      3f
        push    %rdi
        push    %rcx
        mov     T_HOSTFS(%rcx), %rdi
        call    sud_set_fs
        pop     %rcx
        pop     %rdi
3:      mov     F_XSAVE(%rdi), %rax
        sub     $64, %rax
        and     $-16, %rax
        mov     %rax, %rsp
        jmp     sud_dispatch_entry
        .endm

        .globl sud_direct_entry
        .hidden sud_direct_entry
        .type sud_direct_entry, @function
sud_direct_entry:
        DIRECT_ENTRY SUD_FRAME_DIRECT
        .size sud_direct_entry, .-sud_direct_entry

/* The entry of rewritten syscall sites (sud_rewrite.c): as sud_direct_entry,
 * and the frame also says TRAP, since a `syscall` instruction stands at
 * RIP - 2 (the site's own, left in place), so a call cancelled for a signal
 * is re-run from there as a trapped one is. */
        .globl sud_rewrite_entry
        .hidden sud_rewrite_entry
        .type sud_rewrite_entry, @function
sud_rewrite_entry:
        DIRECT_ENTRY SUD_FRAME_DIRECT|SUD_FRAME_TRAP
        .size sud_rewrite_entry, .-sud_rewrite_entry

/* Entered by sigreturn (the SIGSYS handler rewrote RIP/RSP/RDI): RDI = frame,
 * RSP 16-byte aligned on the dispatch stack, selector ALLOW, host FS. */
        .globl sud_dispatch_entry
        .hidden sud_dispatch_entry
        .type sud_dispatch_entry, @function
sud_dispatch_entry:
        cld
        push    %rdi
        push    %rdi
        call    sud_dispatch
        mov     %rax, %rdi
        /* fall through */
/* Back to the trapped code: vector state, FS, selector, every GPR, then
 * iretq, which loads RIP, RFLAGS and RSP at once without touching the
 * foreign stack or its red zone. */
        .globl sud_resume
        .hidden sud_resume
sud_resume:
        testb   $SUD_FRAME_EXIT, F_FLAGS(%rdi)
        jnz     sud_guest_return
        mov     %rdi, %rsp
        mov     F_THREAD(%rsp), %rax
        mov     %rsp, T_RESUMEF(%rax)
        testb   $SUD_FRAME_XSAVED, F_FLAGS(%rsp)
        jz      3f
        mov     F_XSAVE(%rsp), %rcx
        mov     $-1, %eax
        mov     $-1, %edx
        xrstor64 (%rcx)
3:
        mov     F_THREAD(%rsp), %rax
        mov     176(%rsp), %rsi         /* frame->fs_base */
        cmp     T_HOSTFS(%rax), %rsi
        je      2f
        cmpl    $0, sud_have_fsgsbase(%rip)
        je      1f
        wrfsbase %rsi
        jmp     2f
1:      mov     $0x1002, %edi           /* arch_prctl(ARCH_SET_FS, fs) */
        mov     $158, %eax
        syscall
        mov     F_THREAD(%rsp), %rax
2:
/* The last check before the trapped code runs again: a signal the core held
 * for the program, or an exit, since the dispatch ended.  A signal that
 * arrives from here to the iretq is held and sends RIP back here (with RSP =
 * the frame), so none waits for the program's next system call. */
        .globl sud_resume_check
        .hidden sud_resume_check
sud_resume_check:
        mov     F_THREAD(%rsp), %rax
        cmpq    $0, T_VPENDING(%rax)
        jne     5f
        cmpl    $0, T_EXITREQ(%rax)
        jne     5f
6:      movzbl  212(%rsp), %ecx         /* frame->selector */
        movb    %cl, T_SELQ(%rax)
        /* RCX = RIP and R11 = RFLAGS, as SYSCALL leaves them (no TF): the way
         * back needs no iretq: the flags come from the frame, then RSP, then a
         * jmp through RCX (the foreign stack and red zone are never written) */
        mov     F_RIP(%rsp), %rcx
        cmp     96(%rsp), %rcx          /* frame->rcx */
        jne     7f
        mov     136(%rsp), %rcx         /* frame->rflags */
        cmp     32(%rsp), %rcx          /* frame->r11 */
        jne     7f
        test    $0x100, %ecx
        jnz     7f
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rbp
        pop     %rdi
        pop     %rsi
        pop     %rdx
        pop     %rcx
        pop     %rbx
        pop     %rax
        lea     16(%rsp), %rsp          /* past rip and cs */
        popfq
        mov     (%rsp), %rsp
        jmp     *%rcx
7:
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rbp
        pop     %rdi
        pop     %rsi
        pop     %rdx
        pop     %rcx
        pop     %rbx
        pop     %rax
        iretq
        .globl sud_resume_end
        .hidden sud_resume_end
sud_resume_end:
5:      /* deliver or leave (sud_resume_pending, on the dispatch stack below the
         * frame's XSAVE area), then start over; 0: nothing to do here */
        mov     %rsp, %rdi
        mov     F_XSAVE(%rdi), %rsp
        sub     $64, %rsp
        and     $-16, %rsp
        push    %rdi
        push    %rdi
        call    sud_resume_pending
        pop     %rdi
        pop     %rdi
        test    %eax, %eax
        jnz     sud_resume
        mov     %rdi, %rsp
        mov     F_THREAD(%rsp), %rax
        jmp     6b
        .size sud_dispatch_entry, .-sud_dispatch_entry

/* long sud_run_guest(entry, sp, thread): enter a loaded program as the
 * kernel would after execve (registers zero, RSP at argc), with the selector
 * at BLOCK.  Comes back through sud_guest_return when a handler ends it. */
        .globl sud_run_guest
        .hidden sud_run_guest
        .type sud_run_guest, @function
sud_run_guest:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, T_HOSTRSP(%rdx)
        mov     %rdi, %r11
        movb    $SUD_FILTER_BLOCK, T_SELQ(%rdx)
        mov     %rsi, %rsp
        xor     %eax, %eax
        xor     %ebx, %ebx
        xor     %ecx, %ecx
        xor     %edx, %edx              /* no rtld_fini */
        xor     %esi, %esi
        xor     %edi, %edi
        xor     %ebp, %ebp
        xor     %r8d, %r8d
        xor     %r9d, %r9d
        xor     %r10d, %r10d
        xor     %r12d, %r12d
        xor     %r13d, %r13d
        xor     %r14d, %r14d
        xor     %r15d, %r15d
        jmp     *%r11
        .size sud_run_guest, .-sud_run_guest

/* long sud_enter_guest(frame, thread): start guest code with the frame's
 * registers (the frame lies on the thread's dispatch stack); comes back
 * through sud_guest_return like sud_run_guest. */
        .globl sud_enter_guest
        .hidden sud_enter_guest
        .type sud_enter_guest, @function
sud_enter_guest:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, T_HOSTRSP(%rsi)
        jmp     sud_resume
        .size sud_enter_guest, .-sud_enter_guest

/* From the kick signal (RDI = thread, selector ALLOW, host FS already): the
 * program is exiting; leave the guest with the group's status. */
        .globl sud_guest_abort
        .hidden sud_guest_abort
        .type sud_guest_abort, @function
sud_guest_abort:
        mov     T_HOSTRSP(%rdi), %rsp
        fninit
        ldmxcsr sud_mxcsr_default(%rip)
        cld
        sub     $8, %rsp
        call    sud_guest_aborted       /* (thread) -> status */
        add     $8, %rsp
        jmp     1f
        .size sud_guest_abort, .-sud_guest_abort

/* From sud_resume when the frame says EXIT: back on the host's stack, selector
 * ALLOW, host FS (dispatch already runs with it), default FP environment. */
        .type sud_guest_return, @function
sud_guest_return:
        mov     F_THREAD(%rdi), %rdx
        mov     F_RAX(%rdi), %rax
        movb    $SUD_FILTER_ALLOW, T_SELQ(%rdx)
        mov     T_HOSTRSP(%rdx), %rsp
1:      fninit
        ldmxcsr sud_mxcsr_default(%rip)
        cld
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        ret
        .size sud_guest_return, .-sud_guest_return

/* void sud_xsave(struct sud_frame *f): save the trapped code's vector state
 * before code that may use vector registers runs (Python), and give that code
 * the default MXCSR and x87 control word.  sud_resume restores it. */
        .globl sud_xsave
        .hidden sud_xsave
        .type sud_xsave, @function
sud_xsave:
        testb   $SUD_FRAME_XSAVED, F_FLAGS(%rdi)
        jnz     3f                      /* saved already: the state now is the interpreter's */
        mov     F_XSAVE(%rdi), %rcx
        mov     sud_xsave_mask(%rip), %eax
        mov     sud_xsave_mask+4(%rip), %edx
        cmpl    $0, sud_have_xsavec(%rip)
        je      1f
        xsavec64 (%rcx)                 /* compact: skips components in their initial state */
        jmp     2f
1:      xsave64 (%rcx)
2:      fninit
        ldmxcsr sud_mxcsr_default(%rip)
        orb     $SUD_FRAME_XSAVED, F_FLAGS(%rdi)
3:      ret
        .size sud_xsave, .-sud_xsave

/* ------------------------------------------------------------------------
 * Thunks.  A per-target thunk is `movabs $target,%r11; movabs $policy,%r10;
 * jmp *sud_thunk_common`.  The common part saves the return address, the
 * policy and the selector on the thread's shadow stack (never on the C
 * stack: stack arguments stay where the target expects them), sets BLOCK,
 * calls the target, and on return restores the selector before anything else.
 * ---------------------------------------------------------------------- */
        .globl sud_thunk_common
        .hidden sud_thunk_common
        .type sud_thunk_common, @function
sud_thunk_common:
        push    %r11
        mov     sud_self@gottpoff(%rip), %r11
        mov     %fs:(%r11), %r11
        test    %r11, %r11
        jz      9f
        pop     T_TARGET(%r11)
        mov     %r10, T_NEWPOL(%r11)
        mov     T_SSP(%r11), %r10
        cmp     T_SSP_END(%r11), %r10
        jae     8f
        pop     0(%r10)                 /* return address */
        push    T_POLICY(%r11)
        pop     8(%r10)
        push    T_SELQ(%r11)
        pop     16(%r10)
        push    T_NEWPOL(%r11)
        pop     T_POLICY(%r11)
        add     $24, %r10
        mov     %r10, T_SSP(%r11)
        movb    $SUD_FILTER_BLOCK, T_SELQ(%r11)
        call    *T_TARGET(%r11)
        mov     sud_self@gottpoff(%rip), %r11
        mov     %fs:(%r11), %r11
        mov     T_SSP(%r11), %r10
        sub     $24, %r10
        push    16(%r10)
        pop     T_SELQ(%r11)            /* selector first */
        mov     %r10, T_SSP(%r11)
        push    8(%r10)
        pop     T_POLICY(%r11)
        push    0(%r10)
        ret
8:      call    sud_thunk_fatal_depth
9:      call    sud_thunk_fatal_unarmed
        .size sud_thunk_common, .-sud_thunk_common

/* long sud_probe_copy(void *dst, const void *src, size_t n): 0, or -EFAULT when
 * src is not readable.  The one instruction that may fault is
 * sud_probe_copy_insn; the core's SIGSEGV/SIGBUS handler (sud_vsig.c), when it
 * is installed, resumes a fault there at sud_probe_copy_fixup. */
        .text
        .globl sud_probe_copy, sud_probe_copy_insn, sud_probe_copy_fixup
        .type sud_probe_copy, @function
sud_probe_copy:
        mov %rdx, %rcx
sud_probe_copy_insn:
        rep movsb
        xor %eax, %eax
        ret
sud_probe_copy_fixup:
        mov $-14, %rax
        ret
        .size sud_probe_copy, .-sud_probe_copy

        .section .note.GNU-stack,"",@progbits
