/* Time: system time against KUSER_SHARED_DATA, the performance counter, sleeps that last. */
#include "nt.h"

int mainCRTStartup(void)
{
    LARGE_INTEGER t0, t1, c0, c1, f; NTSTATUS s;
    s = NtQuerySystemTime(&t0); check("system time", s);
    out("after 2020 "); out_dec(t0.QuadPart > 132223104000000000LL); out("\n");
    volatile ULONG *kuser = (volatile ULONG *)0x7ffe0014;   /* KUSER_SHARED_DATA.SystemTime */
    long long k = ((long long)kuser[1] << 32) | kuser[0];
    out("kuser close "); out_dec(k > t0.QuadPart - 10000000LL && k < t0.QuadPart + 10000000LL); out("\n");
    s = NtQueryPerformanceCounter(&c0, &f); check("counter", s);
    out("frequency positive "); out_dec(f.QuadPart > 0); out("\n");
    LARGE_INTEGER d; d.QuadPart = -500000;  /* 50 ms, relative */
    s = NtDelayExecution(0, &d); check("delay", s);
    NtQuerySystemTime(&t1); NtQueryPerformanceCounter(&c1, 0);
    long long ms = (c1.QuadPart - c0.QuadPart) * 1000 / f.QuadPart;
    out("slept at least 45 ms "); out_dec(ms >= 45); out("\n");
    out("system time moved "); out_dec(t1.QuadPart - t0.QuadPart >= 450000); out("\n");
    s = NtYieldExecution(); out("yield ok "); out_dec(NT_SUCCESS(s)); out("\n");
    long long k2 = ((long long)kuser[1] << 32) | kuser[0];
    out("kuser live "); out_dec(k2 > k); out("\n");
    return 0;
}
