/* User APCs: QueueUserAPC to the same thread and across threads, delivered only in alertable waits
 * (SleepEx, WaitForSingleObjectEx, WaitForMultipleObjectsEx, GetQueuedCompletionStatusEx with
 * bAlertable) and by NtTestAlert,
 * in queue order; an APC queued from an APC runs in the same delivery; a signaled object wins
 * over a pending APC; an APC queued to a thread created suspended runs before its entry point;
 * a thread that ended takes none. */
#include <stdio.h>
#include <windows.h>

static DWORD main_tid;
static HANDLE ran;
static volatile LONG order;

static void CALLBACK note(ULONG_PTR arg)
{
    printf("apc %lu (#%ld) in %s thread\n", (unsigned long)arg, InterlockedIncrement(&order),
           GetCurrentThreadId() == main_tid ? "the main" : "another");
    fflush(stdout);
}

static void CALLBACK chain(ULONG_PTR arg)
{
    note(arg);
    if (arg < 23)
        QueueUserAPC(chain, GetCurrentThread(), arg + 1);
}

static DWORD WINAPI waiter(void *param)
{
    HANDLE stop = param;
    SetEvent(ran); /* started: an APC queued from now on finds it in the alertable wait or before */
    for (;;) {
        DWORD r = WaitForSingleObjectEx(stop, INFINITE, TRUE);
        printf("worker: wait returned %#lx\n", r);
        fflush(stdout);
        if (r != WAIT_IO_COMPLETION)
            return r == WAIT_OBJECT_0 ? 7 : 1;
        SetEvent(ran); /* back from the wait the APC interrupted */
    }
}

static DWORD WINAPI started(void *param)
{
    printf("thread entry point (order %ld)\n", order);
    fflush(stdout);
    return 0;
}

int main(void)
{
    main_tid = GetCurrentThreadId();
    HANDLE self = GetCurrentThread();
    ran = CreateEventW(NULL, FALSE, FALSE, NULL);

    /* nothing queued: alertable waits time out as usual */
    printf("SleepEx(10, TRUE) = %#lx\n", SleepEx(10, TRUE));
    printf("WaitForSingleObjectEx timeout = %#lx\n", WaitForSingleObjectEx(ran, 20, TRUE));

    /* queued to this thread: not run by a wait that is not alertable */
    QueueUserAPC(note, self, 1);
    QueueUserAPC(note, self, 2);
    printf("queued 1, 2; Sleep(1); WaitForSingleObject = %#lx\n", (Sleep(1), WaitForSingleObject(ran, 10)));
    printf("SleepEx(5000, TRUE) = %#lx\n", SleepEx(5000, TRUE));
    printf("SleepEx(0, TRUE) = %#lx (none left)\n", SleepEx(0, TRUE));

    /* a signaled object is taken before a pending APC is run */
    SetEvent(ran);
    QueueUserAPC(note, self, 3);
    printf("signaled + APC: WaitForSingleObjectEx = %#lx\n", WaitForSingleObjectEx(ran, 0, TRUE));
    HANDLE two[2] = {ran, CreateEventW(NULL, TRUE, FALSE, NULL)};
    printf("WaitForMultipleObjectsEx(all) = %#lx\n", WaitForMultipleObjectsEx(2, two, TRUE, INFINITE, TRUE));

    /* an APC that queues the next one: all run in the same delivery (NtContinue alertable) */
    QueueUserAPC(chain, self, 20);
    printf("SleepEx(INFINITE, TRUE) = %#lx\n", SleepEx(INFINITE, TRUE));

    /* NtTestAlert runs the queue without waiting */
    NTSTATUS(NTAPI * test_alert)(void) =
        (void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtTestAlert");
    QueueUserAPC(note, self, 4);
    printf("NtTestAlert = %#lx\n", test_alert());

    /* GetQueuedCompletionStatusEx alertable: an APC ends it (FALSE, WAIT_IO_COMPLETION) */
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    OVERLAPPED_ENTRY entry;
    ULONG removed = 99;
    QueueUserAPC(note, self, 40);
    BOOL got = GetQueuedCompletionStatusEx(port, &entry, 1, &removed, INFINITE, TRUE);
    printf("GetQueuedCompletionStatusEx alertable: %d, error %lu, removed %lu\n", got, GetLastError(), removed);
    PostQueuedCompletionStatus(port, 5, 6, NULL);
    QueueUserAPC(note, self, 41);
    got = GetQueuedCompletionStatusEx(port, &entry, 1, &removed, INFINITE, TRUE);
    printf("with a packet queued: %d, removed %lu, bytes %lu\n", got, removed, entry.dwNumberOfBytesTransferred);
    got = GetQueuedCompletionStatusEx(port, &entry, 1, &removed, 10, TRUE);
    printf("then: %d, error %lu\n", got, GetLastError());
    removed = 99;
    got = GetQueuedCompletionStatusEx(port, &entry, 1, &removed, 10, TRUE);
    printf("timed out: %d, error %lu, removed %lu\n", got, GetLastError(), removed);

    /* across threads: a worker in an alertable wait runs what the main thread queues */
    HANDLE stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE worker = CreateThread(NULL, 0, waiter, stop, 0, NULL);
    WaitForSingleObject(ran, 5000);
    QueueUserAPC(note, worker, 5);
    printf("main: worker woke: %#lx\n", WaitForSingleObject(ran, 5000));
    fflush(stdout);
    QueueUserAPC(note, worker, 6);
    printf("main: worker woke: %#lx\n", WaitForSingleObject(ran, 5000));
    fflush(stdout);
    SetEvent(stop);
    DWORD code = 0;
    WaitForSingleObject(worker, 5000);
    GetExitCodeThread(worker, &code);
    printf("worker exit code %lu\n", code);
    BOOL queued = QueueUserAPC(note, worker, 9);
    printf("QueueUserAPC to an ended thread: %d, error %lu\n", queued, GetLastError());

    /* NtQueueApcThread with no routine: success, nothing queued */
    NTSTATUS(NTAPI * queue_apc)(HANDLE, void *, ULONG_PTR, ULONG_PTR, ULONG_PTR) =
        (void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtQueueApcThread");
    printf("NtQueueApcThread(NULL routine) = %#lx\n", queue_apc(self, NULL, 1, 2, 3));
    printf("then SleepEx(0, TRUE) = %#lx\n", SleepEx(0, TRUE));

    /* queued to a thread created suspended: runs before the entry point */
    HANDLE early = CreateThread(NULL, 0, started, NULL, CREATE_SUSPENDED, NULL);
    QueueUserAPC(note, early, 8);
    ResumeThread(early);
    WaitForSingleObject(early, 5000);
    printf("APCs run: %ld\n", order);
    return 0;
}
