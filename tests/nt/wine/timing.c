/* Time: Sleep, GetTickCount, QueryPerformanceCounter/Frequency, GetSystemTimeAsFileTime. */
#include <windows.h>
#include <stdio.h>

int main(void)
{
    LARGE_INTEGER f, a, b;
    QueryPerformanceFrequency(&f);
    printf("qpc frequency positive: %d\n", f.QuadPart > 0);
    DWORD t0 = GetTickCount();
    QueryPerformanceCounter(&a);
    Sleep(120);
    QueryPerformanceCounter(&b);
    DWORD t1 = GetTickCount();
    double ms = (double)(b.QuadPart - a.QuadPart) * 1000.0 / (double)f.QuadPart;
    printf("slept >= 100 ms by qpc: %d\n", ms >= 100.0);
    printf("slept < 5 s by qpc: %d\n", ms < 5000.0);
    printf("tick count advanced >= 90 ms: %d\n", t1 - t0 >= 90);
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    ULONGLONG now = ((ULONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    printf("after 2020: %d\n", now > 132223104000000000ULL);
    SYSTEMTIME st;
    GetSystemTime(&st);
    printf("year plausible: %d\n", st.wYear >= 2020 && st.wYear < 2200);
    return 0;
}
