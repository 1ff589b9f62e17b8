/* Virtual memory: reserve+commit, write, protect (old protection), query, reserve then commit, free. */
#include "nt.h"

static void query(const char *what, void *p)
{
    MEMORY_BASIC_INFORMATION mbi; SIZE_T ret;
    NTSTATUS s = NtQueryVirtualMemory(NtCurrentProcess(), p, 0, &mbi, sizeof mbi, &ret);
    out(what); out(": "); out_hex((ULONG)s);
    out(" state "); out_hex(mbi.State); out(" protect "); out_hex(mbi.Protect);
    if (mbi.State != 0x10000) { out(" type "); out_hex(mbi.Type); out(" size "); out_hex(mbi.RegionSize); }
    out("\n");
}

int mainCRTStartup(void)
{
    void *base = 0; SIZE_T size = 0x10000; NTSTATUS s; ULONG old;
    s = NtAllocateVirtualMemory(NtCurrentProcess(), &base, 0, &size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    check("allocate", s); out("size "); out_hex(size); out(" aligned "); out_dec(((ULONG_PTR)base & 0xffff) == 0); out("\n");
    char *p = base;
    for (int i = 0; i < 0x10000; i += 0x1000) p[i] = (char)(i >> 12);
    out("sum "); { int t = 0; for (int i = 0; i < 0x10000; i += 0x1000) t += p[i]; out_dec(t); } out("\n");
    query("committed", p);

    void *b2 = p + 0x1000; SIZE_T s2 = 0x1000;
    s = NtProtectVirtualMemory(NtCurrentProcess(), &b2, &s2, PAGE_READONLY, &old);
    check("protect", s); out("old "); out_hex(old); out("\n");
    query("first page", p);
    query("second page", p + 0x1000);
    query("third page", p + 0x2000);
    s = NtProtectVirtualMemory(NtCurrentProcess(), &b2, &s2, PAGE_READWRITE, &old);
    check("protect back", s); out("old "); out_hex(old); out("\n");

    s = NtProtectVirtualMemory(NtCurrentProcess(), &b2, &s2, 0x12345, &old);
    check("bad protection", s);

    SIZE_T zero = 0;
    s = NtFreeVirtualMemory(NtCurrentProcess(), &base, &zero, MEM_RELEASE);
    check("free", s); out("freed "); out_hex(zero); out("\n");
    query("after free", p);
    s = NtFreeVirtualMemory(NtCurrentProcess(), &base, &zero, MEM_RELEASE);
    check("free again", s);

    void *r = 0; SIZE_T rs = 0x20000;
    s = NtAllocateVirtualMemory(NtCurrentProcess(), &r, 0, &rs, MEM_RESERVE, PAGE_NOACCESS);
    check("reserve", s);
    query("reserved", r);
    void *c = (char *)r + 0x3000; SIZE_T cs = 0x2000;
    s = NtAllocateVirtualMemory(NtCurrentProcess(), &c, 0, &cs, MEM_COMMIT, PAGE_READWRITE);
    check("commit", s); out("commit offset "); out_hex((char *)c - (char *)r); out(" size "); out_hex(cs); out("\n");
    ((char *)c)[0x1fff] = 1;
    query("committed part", c);
    query("before it", r);
    zero = 0;
    s = NtFreeVirtualMemory(NtCurrentProcess(), &r, &zero, MEM_RELEASE);
    check("release", s);

    void *h = RtlAllocateHeap(nt_heap(), 8, 100);
    out("heap zeroed "); out_dec(((char *)h)[99] == 0); out("\n");
    out("heap free "); out_dec(RtlFreeHeap(nt_heap(), 0, h) != 0); out("\n");
    return 0;
}
