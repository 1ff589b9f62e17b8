/* One NT call, three ways to its number: read from the exported stub (Hell's Gate), the index
 * among the Zw* exports sorted by address (SysWhispers2), and the selected Windows build's number
 * typed in at build time (-DNR_NtClose=... for the calls used: "hard-coded").  Each way makes the
 * same calls with the program's own `syscall`; a last way calls the exported stubs themselves.
 * Every call goes through nt_call_preserving, which checks that what the Windows x64 convention
 * keeps (rbx rbp rdi rsi r12-r15 xmm6-15, MXCSR, the x87 control word) comes back unchanged.  The
 * output names the numbers, so the test compares them with the build's table; it is the same for
 * every way. */
#include "nt.h"

/* ---- ntdll's exports, found as position-independent shellcode finds them */
typedef struct LIST_ENTRY { struct LIST_ENTRY *Flink, *Blink; } LIST_ENTRY;
static char *find_ntdll(void)
{
    char *ldr = *(char **)(nt_peb() + 0x18);
    LIST_ENTRY *head = (LIST_ENTRY *)(ldr + 0x10), *e;   /* InLoadOrderModuleList */
    for (e = head->Flink; e != head; e = e->Flink) {
        UNICODE_STRING *name = (UNICODE_STRING *)((char *)e + 0x58);
        const WCHAR *w = name->Buffer;
        if (name->Length == 18 && (w[0] | 32) == 'n' && (w[1] | 32) == 't' && (w[2] | 32) == 'd'
            && (w[3] | 32) == 'l' && (w[4] | 32) == 'l' && w[5] == '.')
            return *(char **)((char *)e + 0x30);
    }
    return 0;
}
static int same(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }
static char *ntdll;
static unsigned *exp_dir(void) { char *pe = ntdll + *(int *)(ntdll + 0x3c); return (unsigned *)(ntdll + *(unsigned *)(pe + 0x88)); }
static unsigned char *export_address(const char *want)
{
    unsigned *exp = exp_dir(), *names = (unsigned *)(ntdll + exp[8]), *funcs = (unsigned *)(ntdll + exp[7]);
    unsigned short *ords = (unsigned short *)(ntdll + exp[9]);
    for (unsigned i = 0; i < exp[6]; i++)
        if (same(ntdll + names[i], want)) return (unsigned char *)ntdll + funcs[ords[i]];
    return 0;
}

/* Hell's Gate: `mov r10, rcx; mov eax, NN` at the start of the exported stub. */
static long hells_gate(const char *name)
{
    unsigned char *p = export_address(name);
    if (!p || p[0] != 0x4c || p[1] != 0x8b || p[2] != 0xd1 || p[3] != 0xb8) return -1;
    return *(unsigned *)(p + 4);
}

/* SysWhispers2: the call's rank among the Zw* exports sorted by address. */
static long syswhispers2(const char *name)
{
    unsigned *exp = exp_dir(), *names = (unsigned *)(ntdll + exp[8]), *funcs = (unsigned *)(ntdll + exp[7]);
    unsigned short *ords = (unsigned short *)(ntdll + exp[9]);
    char zw[128]; int j;
    zw[0] = 'Z'; zw[1] = 'w';
    for (j = 2; name[j] && j < 127; j++) zw[j] = name[j];
    zw[j] = 0;
    unsigned char *mine = export_address(zw);
    if (!mine) return -1;
    long rank = 0;
    for (unsigned i = 0; i < exp[6]; i++) {
        const char *n = ntdll + names[i];
        if (n[0] == 'Z' && n[1] == 'w' && (unsigned char *)ntdll + funcs[ords[i]] < mine) rank++;
    }
    return rank;
}

#ifdef NR_NtClose
static long hard_coded(const char *name)
{
    if (same(name, "NtWriteFile")) return NR_NtWriteFile;
    if (same(name, "NtQuerySystemTime")) return NR_NtQuerySystemTime;
    if (same(name, "NtCreateEvent")) return NR_NtCreateEvent;
    if (same(name, "NtSetEvent")) return NR_NtSetEvent;
    if (same(name, "NtClose")) return NR_NtClose;
    if (same(name, "NtCreateTimer")) return NR_NtCreateTimer;
    return -1;
}
#endif

/* fn(args[0..9]) in the Windows x64 convention with every non-volatile register set to a pattern;
 * the result goes to args[0]; returns a bit per register that came back changed
 * (0 rbx, 1 rbp, 2 rdi, 3 rsi, 4-7 r12-r15, 8-17 xmm6-15 low half, 18-27 high half, 28 MXCSR,
 * 29 the x87 control word). */
unsigned long long nt_call_preserving(void *fn, unsigned long long *args);
#define PAT(i) "0x5a" #i "00c3c3a5a5"
#define SETX(i) "movabs $" PAT(i) ", %r10\n movq %r10, %xmm" #i "\n movabs $" PAT(i) "1, %r10\n pinsrq $1, %r10, %xmm" #i "\n"
#define CHKX(i, bit) \
    "movq %xmm" #i ", %r10\n movabs $" PAT(i) ", %rcx\n cmp %rcx, %r10\n je 1f\n bts $" #bit ", %rax\n1:\n" \
    "pextrq $1, %xmm" #i ", %r10\n movabs $" PAT(i) "1, %rcx\n cmp %rcx, %r10\n je 1f\n bts $(" #bit "+10), %rax\n1:\n"
#define CHKR(reg, pat, bit) "movabs $" pat ", %rcx\n cmp %rcx, %" reg "\n je 1f\n bts $" #bit ", %rax\n1:\n"
__asm__(".text\n.globl nt_call_preserving\nnt_call_preserving:\n"
        "push %rbx\n push %rbp\n push %rdi\n push %rsi\n push %r12\n push %r13\n push %r14\n push %r15\n"
        "sub $0x108, %rsp\n"
        "movdqu %xmm6, 0x50(%rsp)\n movdqu %xmm7, 0x60(%rsp)\n movdqu %xmm8, 0x70(%rsp)\n"
        "movdqu %xmm9, 0x80(%rsp)\n movdqu %xmm10, 0x90(%rsp)\n movdqu %xmm11, 0xa0(%rsp)\n"
        "movdqu %xmm12, 0xb0(%rsp)\n movdqu %xmm13, 0xc0(%rsp)\n movdqu %xmm14, 0xd0(%rsp)\n"
        "movdqu %xmm15, 0xe0(%rsp)\n"
        "mov %rdx, 0xf0(%rsp)\n mov %rcx, %rax\n mov %rdx, %r11\n"
        "mov 0x20(%r11), %r10\n mov %r10, 0x20(%rsp)\n mov 0x28(%r11), %r10\n mov %r10, 0x28(%rsp)\n"
        "mov 0x30(%r11), %r10\n mov %r10, 0x30(%rsp)\n mov 0x38(%r11), %r10\n mov %r10, 0x38(%rsp)\n"
        "mov 0x40(%r11), %r10\n mov %r10, 0x40(%rsp)\n mov 0x48(%r11), %r10\n mov %r10, 0x48(%rsp)\n"
        SETX(6) SETX(7) SETX(8) SETX(9) SETX(10) SETX(11) SETX(12) SETX(13) SETX(14) SETX(15)
        "movabs $0x1111111111111111, %rbx\n movabs $0x2222222222222222, %rbp\n"
        "movabs $0x3333333333333333, %rdi\n movabs $0x4444444444444444, %rsi\n"
        "movabs $0x5555555555555555, %r12\n movabs $0x6666666666666666, %r13\n"
        "movabs $0x7777777777777777, %r14\n movabs $0x7878787878787878, %r15\n"
        "stmxcsr 0xf8(%rsp)\n fnstcw 0xfc(%rsp)\n"   /* the caller's, restored below */
        "movl $0x7f80, 0x100(%rsp)\n ldmxcsr 0x100(%rsp)\n"   /* MXCSR: round toward zero */
        "movw $0x77f, 0x104(%rsp)\n fldcw 0x104(%rsp)\n"      /* x87: round down */
        "mov (%r11), %rcx\n mov 8(%r11), %rdx\n mov 16(%r11), %r8\n mov 24(%r11), %r9\n"
        "call *%rax\n"
        "mov 0xf0(%rsp), %r11\n mov %rax, (%r11)\n xor %eax, %eax\n"
        CHKR("rbx", "0x1111111111111111", 0) CHKR("rbp", "0x2222222222222222", 1)
        CHKR("rdi", "0x3333333333333333", 2) CHKR("rsi", "0x4444444444444444", 3)
        CHKR("r12", "0x5555555555555555", 4) CHKR("r13", "0x6666666666666666", 5)
        CHKR("r14", "0x7777777777777777", 6) CHKR("r15", "0x7878787878787878", 7)
        CHKX(6, 8) CHKX(7, 9) CHKX(8, 10) CHKX(9, 11) CHKX(10, 12) CHKX(11, 13) CHKX(12, 14) CHKX(13, 15)
        CHKX(14, 16) CHKX(15, 17)
        "stmxcsr 0x100(%rsp)\n cmpl $0x7f80, 0x100(%rsp)\n je 1f\n bts $28, %rax\n1:\n"
        "fnstcw 0x104(%rsp)\n cmpw $0x77f, 0x104(%rsp)\n je 1f\n bts $29, %rax\n1:\n"
        "ldmxcsr 0xf8(%rsp)\n fldcw 0xfc(%rsp)\n"
        "movdqu 0x50(%rsp), %xmm6\n movdqu 0x60(%rsp), %xmm7\n movdqu 0x70(%rsp), %xmm8\n"
        "movdqu 0x80(%rsp), %xmm9\n movdqu 0x90(%rsp), %xmm10\n movdqu 0xa0(%rsp), %xmm11\n"
        "movdqu 0xb0(%rsp), %xmm12\n movdqu 0xc0(%rsp), %xmm13\n movdqu 0xd0(%rsp), %xmm14\n"
        "movdqu 0xe0(%rsp), %xmm15\n"
        "add $0x108, %rsp\n"
        "pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rsi\n pop %rdi\n pop %rbp\n pop %rbx\n ret\n");

/* The checker's own check: a function that breaks the convention (rbx, xmm6's low half, xmm15's
 * high half, MXCSR). */
void nt_clobber(void);
__asm__(".text\n.globl nt_clobber\nnt_clobber:\n  xor %ebx, %ebx\n  pxor %xmm6, %xmm6\n  movhlps %xmm0, %xmm15\n"
        "  pinsrq $1, %rbx, %xmm15\n  push $0x1f80\n  ldmxcsr (%rsp)\n  pop %rax\n  ret\n");

/* `syscall` from the program's own code: nr in eax, the Windows convention's arguments shifted. */
NTSTATUS nt_own_syscall(long nr, ...);
__asm__(".text\n.globl nt_own_syscall\nnt_own_syscall:\n"
        "  mov %ecx, %eax\n  mov %rdx, %r10\n  mov %r8, %rdx\n  mov %r9, %r8\n  mov 0x28(%rsp), %r9\n"
        "  pop %r11\n  mov %r11, (%rsp)\n  syscall\n  mov (%rsp), %r11\n  sub $8, %rsp\n  mov %r11, (%rsp)\n  ret\n");

static unsigned long long changed;
/* One call: through the exported stub (nr < 0: stub is its address) or the program's own syscall. */
static NTSTATUS call(long nr, void *stub, unsigned long long a0, unsigned long long a1, unsigned long long a2,
                     unsigned long long a3, unsigned long long a4, unsigned long long a5, unsigned long long a6,
                     unsigned long long a7, unsigned long long a8)
{
    unsigned long long args[10] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, 0};
    if (nr >= 0) {  /* nt_own_syscall(nr, a0..a8) */
        unsigned long long shifted[10] = {nr, a0, a1, a2, a3, a4, a5, a6, a7, a8};
        changed |= nt_call_preserving((void *)nt_own_syscall, shifted);
        return (NTSTATUS)shifted[0];
    }
    changed |= nt_call_preserving(stub, args);
    return (NTSTATUS)args[0];
}

static const char *const NAMES[] = {"NtWriteFile", "NtQuerySystemTime", "NtCreateEvent", "NtSetEvent", "NtClose",
                                    "NtCreateTimer"};
enum { WRITE, TIME, EVENT, SET, CLOSE, TIMER, NCALLS };

static void one_way(const char *way, int index, long (*number)(const char *))
{
    long nr[NCALLS];
    void *stub[NCALLS];
    out(way);
    out(":");
    for (int i = 0; i < NCALLS; i++) {
        nr[i] = number ? number(NAMES[i]) : -1;
        stub[i] = export_address(NAMES[i]);
        if (number) { out(" "); out(NAMES[i]); out("="); out_hex(nr[i]); if (nr[i] < 0) { out(" (not found)\n"); return; } }
    }
    out("\n");
    changed = 0;
    IO_STATUS_BLOCK io;
    char line[64]; int n = 0;
    for (const char *s = way; *s; s++) line[n++] = *s;
    for (const char *s = ": NtWriteFile wrote this\n"; *s; s++) line[n++] = *s;
    NTSTATUS s = call(nr[WRITE], stub[WRITE], (unsigned long long)nt_stdout(), 0, 0, 0, (unsigned long long)&io,
                      (unsigned long long)line, n, 0, 0);
    check("  write", s);
    LARGE_INTEGER t, ref;
    NtQuerySystemTime(&ref);
    s = call(nr[TIME], stub[TIME], (unsigned long long)&t, 0, 0, 0, 0, 0, 0, 0, 0);
    check("  time", s);
    out(t.QuadPart - ref.QuadPart < 50000000 && ref.QuadPart - t.QuadPart < 50000000 ? "  time agrees\n" : "  time differs\n");
    HANDLE ev = 0; long prev = -1;
    s = call(nr[EVENT], stub[EVENT], (unsigned long long)&ev, EVENT_ALL_ACCESS, 0, NotificationEvent, 0, 0, 0, 0, 0);
    check("  create event", s);
    s = call(nr[SET], stub[SET], (unsigned long long)ev, (unsigned long long)&prev, 0, 0, 0, 0, 0, 0, 0);
    check("  set event", s);
    out("  previous state = "); out_dec(prev); out("\n");
    check("  close", call(nr[CLOSE], stub[CLOSE], (unsigned long long)ev, 0, 0, 0, 0, 0, 0, 0, 0));
    HANDLE timer = 0;  /* a call whose number differs between Windows 10 and 11 */
    s = call(nr[TIMER], stub[TIMER], (unsigned long long)&timer, 0x1f0003, 0, 0, 0, 0, 0, 0, 0);
    check("  create timer", s);
    check("  close timer", call(nr[CLOSE], stub[CLOSE], (unsigned long long)timer, 0, 0, 0, 0, 0, 0, 0, 0));
    /* a handle nobody has, one per way, so that the trace shows which call was whose */
    check("  close again", call(nr[CLOSE], stub[CLOSE], 0x7770 + 4 * index, 0, 0, 0, 0, 0, 0, 0, 0));
    out("  registers changed = "); out_hex(changed); out("\n");
}

int mainCRTStartup(void)
{
    ntdll = find_ntdll();
    if (!ntdll) { out("no ntdll in PEB->Ldr\n"); return 1; }
    unsigned long long none[10] = {0};
    out("checker sees a clobber: "); out_hex(nt_call_preserving((void *)nt_clobber, none)); out("\n");
    one_way("hells-gate", 0, hells_gate);
    one_way("syswhispers2", 1, syswhispers2);
#ifdef NR_NtClose
    one_way("hard-coded", 2, hard_coded);
#endif
    one_way("exported-stubs", 3, 0);
    return 0;
}
