/* Threads through kernel32: CreateThread, a critical section, events, WaitForMultipleObjects. */
#include <windows.h>
#include <stdio.h>

#define THREADS 4
#define ROUNDS 20000

static CRITICAL_SECTION lock;
static volatile LONG counter;
static LONG interlocked;
static HANDLE go;

static DWORD WINAPI worker(void *arg)
{
    WaitForSingleObject(go, INFINITE);
    for (int i = 0; i < ROUNDS; i++) {
        EnterCriticalSection(&lock);
        counter = counter + 1;
        LeaveCriticalSection(&lock);
        InterlockedIncrement(&interlocked);
    }
    return (DWORD)(ULONG_PTR)arg + 100;
}

int main(void)
{
    HANDLE threads[THREADS];
    InitializeCriticalSection(&lock);
    go = CreateEventA(NULL, TRUE, FALSE, NULL);
    for (int i = 0; i < THREADS; i++)
        threads[i] = CreateThread(NULL, 0, worker, (void *)(ULONG_PTR)i, 0, NULL);
    printf("before go: timeout=%d\n", WaitForSingleObject(threads[0], 50) == WAIT_TIMEOUT);
    SetEvent(go);
    DWORD r = WaitForMultipleObjects(THREADS, threads, TRUE, 20000);
    printf("wait all: %lu\n", r);
    for (int i = 0; i < THREADS; i++) {
        DWORD code = 0;
        GetExitCodeThread(threads[i], &code);
        printf("thread %d exit %lu\n", i, code);
        CloseHandle(threads[i]);
    }
    printf("counter %ld interlocked %ld\n", counter, interlocked);
    DeleteCriticalSection(&lock);
    return counter == THREADS * ROUNDS ? 0 : 1;
}
