/* Minimal NT declarations for the test programs: built with -nostdlib against ntdll only.
 * Each program is compiled twice: import-based (calls ntdll's exports), and with -DDIRECT_SYSCALLS,
 * where every Nt* call goes through the program's own `syscall` stub with a number found the way
 * SysWhispers does (ntdll found through PEB->Ldr, Zw* exports sorted by address). */
#ifndef PYSUD_NT_H
#define PYSUD_NT_H

typedef long NTSTATUS;
typedef void *HANDLE;
typedef unsigned long ULONG;
typedef unsigned short USHORT;
typedef unsigned short WCHAR;
typedef unsigned char BOOLEAN;
typedef unsigned long long ULONG_PTR, SIZE_T;
typedef long long LONGLONG;
typedef union { struct { ULONG LowPart; long HighPart; }; LONGLONG QuadPart; } LARGE_INTEGER;

typedef struct { USHORT Length, MaximumLength; WCHAR *Buffer; } UNICODE_STRING;
typedef struct {
    ULONG Length; HANDLE RootDirectory; UNICODE_STRING *ObjectName; ULONG Attributes;
    void *SecurityDescriptor, *SecurityQualityOfService;
} OBJECT_ATTRIBUTES;
typedef struct { union { NTSTATUS Status; void *Pointer; }; ULONG_PTR Information; } IO_STATUS_BLOCK;
typedef struct { void *UniqueProcess, *UniqueThread; } CLIENT_ID;
typedef struct {
    void *BaseAddress, *AllocationBase; ULONG AllocationProtect; USHORT PartitionId;
    SIZE_T RegionSize; ULONG State, Protect, Type;
} MEMORY_BASIC_INFORMATION;
typedef struct {
    LARGE_INTEGER CreationTime, LastAccessTime, LastWriteTime, ChangeTime; ULONG FileAttributes;
} FILE_BASIC_INFORMATION;
typedef struct {
    LARGE_INTEGER AllocationSize, EndOfFile; ULONG NumberOfLinks; BOOLEAN DeletePending, Directory;
} FILE_STANDARD_INFORMATION;
typedef struct {
    ULONG NextEntryOffset, FileIndex; LARGE_INTEGER CreationTime, LastAccessTime, LastWriteTime, ChangeTime;
    LARGE_INTEGER EndOfFile, AllocationSize; ULONG FileAttributes, FileNameLength; WCHAR FileName[1];
} FILE_DIRECTORY_INFORMATION;
typedef struct { ULONG NextEntryOffset, FileIndex, FileNameLength; WCHAR FileName[1]; } FILE_NAMES_INFORMATION;

#define NT_SUCCESS(s) ((NTSTATUS)(s) >= 0)
#define NtCurrentProcess() ((HANDLE)(long long)-1)
#define NtCurrentThread() ((HANDLE)(long long)-2)
#define OBJ_CASE_INSENSITIVE 0x40
#define FILE_READ_DATA 0x1
#define FILE_WRITE_DATA 0x2
#define FILE_LIST_DIRECTORY 0x1
#define DELETE 0x10000
#define SYNCHRONIZE 0x100000
#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define FILE_SHARE_READ 1
#define FILE_SHARE_WRITE 2
#define FILE_SHARE_DELETE 4
#define FILE_OPEN 1
#define FILE_CREATE 2
#define FILE_OPEN_IF 3
#define FILE_OVERWRITE_IF 5
#define FILE_DIRECTORY_FILE 0x1
#define FILE_SYNCHRONOUS_IO_NONALERT 0x20
#define FILE_NON_DIRECTORY_FILE 0x40
#define FILE_ATTRIBUTE_NORMAL 0x80
#define FileDirectoryInformation 1
#define FileBasicInformation 4
#define FileStandardInformation 5
#define FileNamesInformation 12
#define FileDispositionInformation 13
#define FilePositionInformation 14
#define FileEndOfFileInformation 20
#define MEM_COMMIT 0x1000
#define MEM_RESERVE 0x2000
#define MEM_RELEASE 0x8000
#define PAGE_NOACCESS 0x01
#define PAGE_READONLY 0x02
#define PAGE_READWRITE 0x04
#define THREAD_ALL_ACCESS 0x1fffff
#define EVENT_ALL_ACCESS 0x1f0003
#define NotificationEvent 0
#define SynchronizationEvent 1

/* ntdll exports (import-based) */
#define NTAPI __stdcall
/* NtClose is imported in both variants: its number (0xf) is Linux's rt_sigreturn, which the core
 * cannot dispatch yet when a program issues it with its own `syscall` (close_direct.c tracks it). */
NTSTATUS NTAPI NtClose(HANDLE h);
#define NT_FUNCTIONS(X) \
    X(NtWriteFile, (HANDLE f, HANDLE e, void *a, void *c, IO_STATUS_BLOCK *io, const void *b, ULONG n, LARGE_INTEGER *o, ULONG *k), (f, e, a, c, io, b, n, o, k)) \
    X(NtReadFile, (HANDLE f, HANDLE e, void *a, void *c, IO_STATUS_BLOCK *io, void *b, ULONG n, LARGE_INTEGER *o, ULONG *k), (f, e, a, c, io, b, n, o, k)) \
    X(NtCreateFile, (HANDLE *h, ULONG acc, OBJECT_ATTRIBUTES *oa, IO_STATUS_BLOCK *io, LARGE_INTEGER *sz, ULONG attr, ULONG share, ULONG disp, ULONG opt, void *ea, ULONG eal), (h, acc, oa, io, sz, attr, share, disp, opt, ea, eal)) \
    X(NtOpenFile, (HANDLE *h, ULONG acc, OBJECT_ATTRIBUTES *oa, IO_STATUS_BLOCK *io, ULONG share, ULONG opt), (h, acc, oa, io, share, opt)) \
    X(NtQueryInformationFile, (HANDLE h, IO_STATUS_BLOCK *io, void *buf, ULONG len, int cls), (h, io, buf, len, cls)) \
    X(NtSetInformationFile, (HANDLE h, IO_STATUS_BLOCK *io, void *buf, ULONG len, int cls), (h, io, buf, len, cls)) \
    X(NtQueryDirectoryFile, (HANDLE h, HANDLE e, void *a, void *c, IO_STATUS_BLOCK *io, void *buf, ULONG len, int cls, BOOLEAN single, UNICODE_STRING *mask, BOOLEAN restart), (h, e, a, c, io, buf, len, cls, single, mask, restart)) \
    X(NtDeleteFile, (OBJECT_ATTRIBUTES *oa), (oa)) \
    X(NtQueryAttributesFile, (OBJECT_ATTRIBUTES *oa, FILE_BASIC_INFORMATION *info), (oa, info)) \
    X(NtAllocateVirtualMemory, (HANDLE p, void **base, ULONG_PTR zero, SIZE_T *size, ULONG type, ULONG prot), (p, base, zero, size, type, prot)) \
    X(NtFreeVirtualMemory, (HANDLE p, void **base, SIZE_T *size, ULONG type), (p, base, size, type)) \
    X(NtProtectVirtualMemory, (HANDLE p, void **base, SIZE_T *size, ULONG prot, ULONG *old), (p, base, size, prot, old)) \
    X(NtQueryVirtualMemory, (HANDLE p, void *base, int cls, void *buf, SIZE_T len, SIZE_T *ret), (p, base, cls, buf, len, ret)) \
    X(NtQuerySystemTime, (LARGE_INTEGER *t), (t)) \
    X(NtQueryPerformanceCounter, (LARGE_INTEGER *c, LARGE_INTEGER *f), (c, f)) \
    X(NtDelayExecution, (BOOLEAN alertable, LARGE_INTEGER *t), (alertable, t)) \
    X(NtYieldExecution, (void), (0)) \
    X(NtQueryInformationProcess, (HANDLE p, int cls, void *buf, ULONG len, ULONG *ret), (p, cls, buf, len, ret)) \
    X(NtQuerySystemInformation, (int cls, void *buf, ULONG len, ULONG *ret), (cls, buf, len, ret)) \
    X(NtTerminateProcess, (HANDLE p, NTSTATUS s), (p, s)) \
    X(NtCreateThreadEx, (HANDLE *h, ULONG acc, OBJECT_ATTRIBUTES *oa, HANDLE p, void *start, void *arg, ULONG flags, SIZE_T zero, SIZE_T stack, SIZE_T maxstack, void *attrs), (h, acc, oa, p, start, arg, flags, zero, stack, maxstack, attrs)) \
    X(NtTerminateThread, (HANDLE t, NTSTATUS s), (t, s)) \
    X(NtCreateEvent, (HANDLE *h, ULONG acc, OBJECT_ATTRIBUTES *oa, int type, BOOLEAN state), (h, acc, oa, type, state)) \
    X(NtSetEvent, (HANDLE h, long *prev), (h, prev)) \
    X(NtResetEvent, (HANDLE h, long *prev), (h, prev)) \
    X(NtWaitForSingleObject, (HANDLE h, BOOLEAN alertable, LARGE_INTEGER *t), (h, alertable, t)) \
    X(NtWaitForMultipleObjects, (ULONG n, HANDLE *hs, int type, BOOLEAN alertable, LARGE_INTEGER *t), (n, hs, type, alertable, t))

void NTAPI RtlInitUnicodeString(UNICODE_STRING *s, const WCHAR *src);
void *NTAPI RtlAllocateHeap(HANDLE heap, ULONG flags, SIZE_T size);
BOOLEAN NTAPI RtlFreeHeap(HANDLE heap, ULONG flags, void *p);

/* ---- process environment, through GS as Windows code reaches it */
static inline char *nt_teb(void) { char *t; __asm__("mov %%gs:0x30, %0" : "=r"(t)); return t; }
static inline char *nt_peb(void) { return *(char **)(nt_teb() + 0x60); }
static inline char *nt_params(void) { return *(char **)(nt_peb() + 0x20); }
static inline HANDLE nt_stdout(void) { return *(HANDLE *)(nt_params() + 0x28); }
static inline HANDLE nt_heap(void) { return *(HANDLE *)(nt_peb() + 0x30); }

#ifdef DIRECT_SYSCALLS
#include "direct.h"
#else
#define NT_DECLARE(name, params, args) NTSTATUS NTAPI name params;
NT_FUNCTIONS(NT_DECLARE)
#endif

/* ---- output */
__attribute__((unused)) static unsigned nt_strlen(const char *s) { unsigned n = 0; while (s[n]) n++; return n; }
__attribute__((unused)) static void out(const char *s)
{
    IO_STATUS_BLOCK io;
    NtWriteFile(nt_stdout(), 0, 0, 0, &io, s, nt_strlen(s), 0, 0);
}
__attribute__((unused)) static void out_hex(unsigned long long v)
{
    char b[19]; int i = 18; b[i] = 0;
    do { b[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    b[--i] = 'x'; b[--i] = '0'; out(b + i);
}
__attribute__((unused)) static void out_dec(long long v)
{
    char b[24]; int i = 23; unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
    b[i] = 0;
    do { b[--i] = '0' + u % 10; u /= 10; } while (u);
    if (v < 0) b[--i] = '-';
    out(b + i);
}
__attribute__((unused)) static void out_w(const WCHAR *w, unsigned n)  /* ASCII subset of a UTF-16 string */
{
    char b[260]; unsigned i;
    for (i = 0; i < n && i < sizeof b - 1; i++) b[i] = w[i] < 128 ? (char)w[i] : '?';
    b[i] = 0; out(b);
}
__attribute__((unused)) static void check(const char *what, NTSTATUS s) { out(what); out(" = "); out_hex((unsigned long)s); out("\n"); }

/* ---- strings */
__attribute__((unused)) static void nt_path(UNICODE_STRING *us, OBJECT_ATTRIBUTES *oa, const WCHAR *path)
{
    RtlInitUnicodeString(us, path);
    oa->Length = sizeof *oa; oa->RootDirectory = 0; oa->ObjectName = us;
    oa->Attributes = OBJ_CASE_INSENSITIVE; oa->SecurityDescriptor = oa->SecurityQualityOfService = 0;
}
__attribute__((unused)) static void *nt_memset(void *p, int c, unsigned long long n)
{
    volatile unsigned char *q = p; while (n--) *q++ = (unsigned char)c; return p;
}
#endif
