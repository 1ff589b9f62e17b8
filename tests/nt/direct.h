/* Direct system calls, found as SysWhispers2 does: ntdll from PEB->Ldr, its Zw* exports sorted by
 * address give each call's number; the program issues `syscall` itself, never entering ntdll. */
#ifndef PYSUD_DIRECT_H
#define PYSUD_DIRECT_H

typedef struct LIST_ENTRY { struct LIST_ENTRY *Flink, *Blink; } LIST_ENTRY;

static unsigned long nt_hash(const char *s)  /* djb2, to find names without string tables */
{
    unsigned long h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h;
}

static char *nt_find_ntdll(void)
{
    char *ldr = *(char **)(nt_peb() + 0x18);
    LIST_ENTRY *head = (LIST_ENTRY *)(ldr + 0x10), *e;   /* InLoadOrderModuleList */
    for (e = head->Flink; e != head; e = e->Flink) {
        UNICODE_STRING *base_name = (UNICODE_STRING *)((char *)e + 0x58);
        const WCHAR *w = base_name->Buffer; unsigned n = base_name->Length / 2;
        if (n == 9 && (w[0] | 32) == 'n' && (w[1] | 32) == 't' && (w[2] | 32) == 'd' && (w[3] | 32) == 'l'
            && (w[4] | 32) == 'l' && w[5] == '.')
            return *(char **)((char *)e + 0x30);
    }
    return 0;
}

/* The number of a call: its index among the Zw* exports sorted by address. */
static long nt_syscall_number(const char *nt_name)
{
    static unsigned long addrs[1024]; static unsigned long hashes[1024]; static int n = -1;
    if (n < 0) {
        char *base = nt_find_ntdll();
        if (!base) return -1;
        char *pe = base + *(int *)(base + 0x3c);
        char *exp = base + *(unsigned *)(pe + 0x88);
        unsigned nnames = *(unsigned *)(exp + 0x18);
        unsigned *names = (unsigned *)(base + *(unsigned *)(exp + 0x20));
        unsigned short *ords = (unsigned short *)(base + *(unsigned *)(exp + 0x24));
        unsigned *funcs = (unsigned *)(base + *(unsigned *)(exp + 0x1c));
        n = 0;
        for (unsigned i = 0; i < nnames && n < 1024; i++) {
            const char *name = base + names[i];
            if (name[0] == 'Z' && name[1] == 'w') {
                char nt[128]; int j = 0;
                nt[0] = 'N'; nt[1] = 't';
                for (j = 2; name[j] && j < 127; j++) nt[j] = name[j];
                nt[j] = 0;
                addrs[n] = (unsigned long)funcs[ords[i]]; hashes[n] = nt_hash(nt); n++;
            }
        }
        for (int i = 1; i < n; i++)  /* insertion sort by address */
            for (int j = i; j > 0 && addrs[j - 1] > addrs[j]; j--) {
                unsigned long t = addrs[j]; addrs[j] = addrs[j - 1]; addrs[j - 1] = t;
                t = hashes[j]; hashes[j] = hashes[j - 1]; hashes[j - 1] = t;
            }
    }
    unsigned long h = nt_hash(nt_name);
    for (int i = 0; i < n; i++)
        if (hashes[i] == h) return i;
    return -1;
}

/* One stub for every call: number in eax, arguments as the Windows x64 convention left them. */
NTSTATUS nt_direct_syscall(long nr, ...);
__asm__(".text\n.globl nt_direct_syscall\nnt_direct_syscall:\n"
        "  mov %ecx, %eax\n"      /* nr */
        "  mov %rdx, %r10\n"      /* first real argument */
        "  mov %r8, %rdx\n"
        "  mov %r9, %r8\n"
        "  mov 0x28(%rsp), %r9\n"
        "  pop %r11\n"            /* shift the stack arguments down by one slot: */
        "  mov %r11, (%rsp)\n"    /*   return address where the nr's shadow slot was */
        "  syscall\n"
        "  mov (%rsp), %r11\n"   /* the return address, kept where it was stored */
        "  sub $8, %rsp\n"
        "  mov %r11, (%rsp)\n"
        "  ret\n");

#define NT_UNPAREN(...) __VA_ARGS__
#define NT_DIRECT(name, params, args) \
    __attribute__((unused)) static NTSTATUS name params \
    { \
        static long nr = -2; \
        if (nr == -2) nr = nt_syscall_number(#name); \
        return nt_direct_syscall(nr, NT_UNPAREN args); \
    }
NT_FUNCTIONS(NT_DIRECT)
#endif
