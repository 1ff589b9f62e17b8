/* Waitable timers with completion routines (APCs): queued to the thread that set the timer at
 * each expiry with the expiry time, run only by its alertable waits; one queued at a time per
 * timer; setting the timer again or cancelling it drops a routine still queued.  (Not compared:
 * whether a synchronization timer still signaled stays so when set again: Wine 8 keeps it, pysud
 * clears it.) */
#include <stdio.h>
#include <windows.h>

static int calls;
static ULONGLONG before, after;

static ULONGLONG now(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    return (ULONGLONG)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
}

static void CALLBACK routine(void *arg, DWORD low, DWORD high)
{
    ULONGLONG when = (ULONGLONG)high << 32 | low;
    calls++;
    printf("routine(%lu)\n", (unsigned long)(ULONG_PTR)arg);
    /* the expiry as a FILETIME (UTC) on Windows; Wine 8 passes its own negative (relative) time */
    fprintf(stderr, "routine(%lu): expiry %s\n", (unsigned long)(ULONG_PTR)arg,
            when + 10000000 >= before && when <= after + 10000000 ? "in range" : "out of range");
}

static LARGE_INTEGER ms(LONGLONG n)
{
    LARGE_INTEGER due;
    due.QuadPart = -n * 10000;
    return due;
}

int main(void)
{
    HANDLE t = CreateWaitableTimerW(NULL, FALSE, NULL);
    LARGE_INTEGER due = ms(50);

    /* one-shot: an alertable wait runs it */
    before = now();
    printf("set: %d\n", SetWaitableTimer(t, &due, 0, routine, (void *)7, FALSE));
    after = now() + 500000;
    DWORD r = SleepEx(5000, TRUE);
    printf("SleepEx(5000, TRUE) = %#lx, calls %d\n", r, calls);
    printf("timer signaled too: %#lx\n", WaitForSingleObject(t, 0));

    /* queued at expiry, run by the first alertable wait after */
    due = ms(20);
    before = now();
    SetWaitableTimer(t, &due, 0, routine, (void *)8, FALSE);
    after = now() + 200000;
    Sleep(100);
    printf("after Sleep(100): calls %d\n", calls);
    r = SleepEx(0, TRUE);
    printf("SleepEx(0, TRUE) = %#lx, calls %d\n", r, calls);

    /* set again while a routine is queued: the queued one is dropped */
    due = ms(10);
    SetWaitableTimer(t, &due, 0, routine, (void *)9, FALSE);
    Sleep(100);
    due = ms(3600 * 1000);
    SetWaitableTimer(t, &due, 0, routine, (void *)10, FALSE);
    r = SleepEx(0, TRUE);
    printf("re-set: SleepEx(0, TRUE) = %#lx, calls %d\n", r, calls);

    /* periodic: one routine per alertable wait; cancelled, none after */
    due = ms(30);
    before = now();
    SetWaitableTimer(t, &due, 30, routine, (void *)11, FALSE);
    after = now() + 2000000;
    for (int i = 0; i < 3; i++)
        printf("periodic: SleepEx(INFINITE, TRUE) = %#lx\n", SleepEx(INFINITE, TRUE));
    Sleep(100); /* one more expiry queued: cancelling drops it */
    CancelWaitableTimer(t);
    r = SleepEx(100, TRUE);
    printf("cancelled: SleepEx(100, TRUE) = %#lx, calls %d\n", r, calls);

    /* a timer without a routine queues nothing */
    due = ms(10);
    SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE);
    r = SleepEx(100, TRUE);
    printf("no routine: SleepEx(100, TRUE) = %#lx, wait = %#lx\n", r, WaitForSingleObject(t, 5000));
    CloseHandle(t);
    return calls;
}
