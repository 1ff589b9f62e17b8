/* Threads with events and waits: workers add to a shared sum, signal events; the main thread waits
 * for all of them, then for each thread handle; a timeout on an unsignaled event. */
#include "nt.h"

#define N 4
static HANDLE done[N], go;
static volatile long sum;

static ULONG NTAPI worker(void *arg)
{
    long i = (long)(ULONG_PTR)arg;
    NtWaitForSingleObject(go, 0, 0);              /* a notification event releases every worker */
    __atomic_add_fetch(&sum, (i + 1) * 100, __ATOMIC_SEQ_CST);
    NtSetEvent(done[i], 0);
    return 40 + i;
}

int mainCRTStartup(void)
{
    HANDLE th[N]; NTSTATUS s;
    s = NtCreateEvent(&go, EVENT_ALL_ACCESS, 0, NotificationEvent, 0); check("go event", s);
    for (long i = 0; i < N; i++) {
        NtCreateEvent(&done[i], EVENT_ALL_ACCESS, 0, SynchronizationEvent, 0);
        s = NtCreateThreadEx(&th[i], THREAD_ALL_ACCESS, 0, NtCurrentProcess(), (void *)worker, (void *)(ULONG_PTR)i, 0, 0, 0, 0, 0);
        if (s) check("thread", s);
    }
    LARGE_INTEGER t; t.QuadPart = -1000000;   /* 100 ms */
    s = NtWaitForSingleObject(done[0], 0, &t); check("wait before go (timeout)", s);
    out("sum before go "); out_dec(sum); out("\n");
    s = NtSetEvent(go, 0); check("set go", s);
    s = NtWaitForMultipleObjects(N, done, 0 /* WaitAll */, 0, 0); check("wait all", s);
    out("sum "); out_dec(sum); out("\n");
    for (int i = 0; i < N; i++) {
        s = NtWaitForSingleObject(th[i], 0, 0);
        if (s) check("join", s);
        NtClose(th[i]);
    }
    out("joined\n");
    s = NtWaitForMultipleObjects(N, done, 1 /* WaitAny */, 0, &t); check("wait any (auto-reset, timeout)", s);
    s = NtSetEvent(done[2], 0);
    s = NtWaitForMultipleObjects(N, done, 1, 0, &t); check("wait any", s);
    long prev = -1;
    s = NtResetEvent(go, &prev); check("reset", s); out("previous "); out_dec(prev); out("\n");
    return (int)(sum / 100);
}
