/* Synchronisation through kernel32 on Wine's PE DLLs: critical sections, SRW locks and condition
 * variables under contention, WaitOnAddress, named mutexes, semaphores, waitable timers, and a
 * registry read through advapi32. Built with mingw's CRT (msvcrt); compared with Wine. */
#include <windows.h>
#include <stdio.h>

static CRITICAL_SECTION cs;
static SRWLOCK srw = SRWLOCK_INIT;
static CONDITION_VARIABLE cv = CONDITION_VARIABLE_INIT;
static volatile LONG counter, srw_counter, ready, addr_value;
static int turn;

static DWORD WINAPI worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        EnterCriticalSection(&cs);
        counter++;
        LeaveCriticalSection(&cs);
        AcquireSRWLockExclusive(&srw);
        srw_counter++;
        ReleaseSRWLockExclusive(&srw);
    }
    return 0;
}

static DWORD WINAPI pinger(void *arg)
{
    int me = (int)(INT_PTR)arg;
    for (int i = 0; i < 200; i++) {
        AcquireSRWLockExclusive(&srw);
        while (turn != me) SleepConditionVariableSRW(&cv, &srw, INFINITE, 0);
        turn = 1 - me;
        WakeAllConditionVariable(&cv);
        ReleaseSRWLockExclusive(&srw);
    }
    return 0;
}

static DWORD WINAPI address_waiter(void *arg)
{
    LONG zero = 0;
    (void)arg;
    while (addr_value == 0) WaitOnAddress(&addr_value, &zero, sizeof zero, INFINITE);
    return (DWORD)addr_value;
}

int main(void)
{
    HANDLE th[4];
    InitializeCriticalSection(&cs);
    for (int i = 0; i < 4; i++) th[i] = CreateThread(NULL, 0, worker, NULL, 0, NULL);
    printf("wait all = %lu\n", WaitForMultipleObjects(4, th, TRUE, INFINITE));
    printf("counter %ld srw %ld\n", counter, srw_counter);
    for (int i = 0; i < 4; i++) CloseHandle(th[i]);

    th[0] = CreateThread(NULL, 0, pinger, (void *)0, 0, NULL);
    th[1] = CreateThread(NULL, 0, pinger, (void *)1, 0, NULL);
    printf("ping-pong = %lu\n", WaitForMultipleObjects(2, th, TRUE, 20000));

    th[2] = CreateThread(NULL, 0, address_waiter, NULL, 0, NULL);
    Sleep(20);
    addr_value = 7;
    WakeByAddressSingle((void *)&addr_value);
    DWORD code = 0;
    WaitForSingleObject(th[2], INFINITE);
    GetExitCodeThread(th[2], &code);
    printf("address waiter exit %lu\n", code);

    HANDLE m = CreateMutexA(NULL, TRUE, "pysud-k32-mutex");
    HANDLE m2 = CreateMutexA(NULL, FALSE, "pysud-k32-mutex");
    printf("mutex exists %d\n", GetLastError() == ERROR_ALREADY_EXISTS);
    BOOL first = ReleaseMutex(m), second = ReleaseMutex(m2);
    printf("release %d, again through the second handle %d\n", first, second);
    HANDLE sem = CreateSemaphoreA(NULL, 0, 3, NULL);
    LONG prev = -1;
    BOOL ok = ReleaseSemaphore(sem, 2, &prev);
    printf("semaphore release %d previous %ld\n", ok, prev);
    ok = ReleaseSemaphore(sem, 2, NULL);
    printf("over the maximum %d error %lu\n", ok, GetLastError());
    HANDLE timer = CreateWaitableTimerA(NULL, TRUE, NULL);
    LARGE_INTEGER due; due.QuadPart = -200000;
    SetWaitableTimer(timer, &due, 0, NULL, NULL, FALSE);
    printf("timer = %lu\n", WaitForSingleObject(timer, 5000));
    DWORD w1 = WaitForSingleObject(sem, 0), w2 = WaitForSingleObject(sem, 0), w3 = WaitForSingleObject(sem, 10);
    printf("semaphore waits %lu %lu %lu\n", w1, w2, w3);
    HKEY k;
    char buf[64]; DWORD len = sizeof buf, type = 0;
    LONG r = RegOpenKeyExA(HKEY_LOCAL_MACHINE, "Software\\Microsoft\\Windows NT\\CurrentVersion", 0, KEY_READ, &k);
    printf("regopen %ld\n", r);
    r = RegQueryValueExA(k, "SystemRoot", NULL, &type, (BYTE *)buf, &len);
    printf("SystemRoot %ld type %lu '%s'\n", r, type, buf);
    char name[64]; DWORD nlen = sizeof name;
    printf("computer name ok %d\n", GetComputerNameA(name, &nlen) && nlen > 0);
    DeleteCriticalSection(&cs);
    return 0;
}
