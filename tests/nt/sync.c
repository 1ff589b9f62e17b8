/* Synchronisation objects through ntdll: mutants (recursion, ownership, abandonment), semaphores,
 * timers (one-shot, periodic), named objects and directories, keyed events, signal-and-wait,
 * duplicated handles, thread-id alerts, wait-all/any. Threads store what they saw; the main
 * thread prints it after joining them, so the output is the same whatever the scheduling. */
#include "nt.h"

NTSTATUS NTAPI NtCreateMutant(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, BOOLEAN);
NTSTATUS NTAPI NtOpenMutant(HANDLE *, ULONG, OBJECT_ATTRIBUTES *);
NTSTATUS NTAPI NtReleaseMutant(HANDLE, long *);
NTSTATUS NTAPI NtQueryMutant(HANDLE, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtCreateSemaphore(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, long, long);
NTSTATUS NTAPI NtReleaseSemaphore(HANDLE, long, long *);
NTSTATUS NTAPI NtQuerySemaphore(HANDLE, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtCreateTimer(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, int);
NTSTATUS NTAPI NtSetTimer(HANDLE, LARGE_INTEGER *, void *, void *, BOOLEAN, long, BOOLEAN *);
NTSTATUS NTAPI NtCancelTimer(HANDLE, BOOLEAN *);
NTSTATUS NTAPI NtQueryTimer(HANDLE, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtOpenEvent(HANDLE *, ULONG, OBJECT_ATTRIBUTES *);
NTSTATUS NTAPI NtQueryEvent(HANDLE, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtOpenDirectoryObject(HANDLE *, ULONG, OBJECT_ATTRIBUTES *);
NTSTATUS NTAPI NtCreateKeyedEvent(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, ULONG);
NTSTATUS NTAPI NtWaitForKeyedEvent(HANDLE, void *, BOOLEAN, LARGE_INTEGER *);
NTSTATUS NTAPI NtReleaseKeyedEvent(HANDLE, void *, BOOLEAN, LARGE_INTEGER *);
NTSTATUS NTAPI NtSignalAndWaitForSingleObject(HANDLE, HANDLE, BOOLEAN, LARGE_INTEGER *);
NTSTATUS NTAPI NtDuplicateObject(HANDLE, HANDLE, HANDLE, HANDLE *, ULONG, ULONG, ULONG);

#define MUTANT_ALL_ACCESS 0x1f0001
#define SEMAPHORE_ALL_ACCESS 0x1f0003
#define TIMER_ALL_ACCESS 0x1f0003
#define OBJ_OPENIF 0x80
#define DUPLICATE_CLOSE_SOURCE 1
#define DUPLICATE_SAME_ACCESS 2

static HANDLE mutant, sem, ev_a, ev_b, keyed, done[4];
static volatile long sum;
static NTSTATUS seen[8];

static LARGE_INTEGER ms(long n) { LARGE_INTEGER t; t.QuadPart = -10000LL * n; return t; }

static HANDLE thread(ULONG (NTAPI *fn)(void *), void *arg)
{
    HANDLE h = 0;
    NTSTATUS s = NtCreateThreadEx(&h, THREAD_ALL_ACCESS, 0, NtCurrentProcess(), (void *)fn, arg, 0, 0, 0, 0, 0);
    if (s) check("thread", s);
    return h;
}

static void join(HANDLE h) { NtWaitForSingleObject(h, 0, 0); NtClose(h); }

static void query_mutant(const char *what)
{
    struct { long count; BOOLEAN owned, abandoned; } info = {99, 9, 9};
    ULONG got = 0;
    NTSTATUS s = NtQueryMutant(mutant, 0, &info, sizeof info, &got);
    out(what); out(": query = "); out_hex((unsigned long)s); out(" count "); out_dec(info.count);
    out(" owned "); out_dec(info.owned); out(" abandoned "); out_dec(info.abandoned); out(" result ");
    out_dec(got); out("\n");
}

static ULONG NTAPI take_mutant_and_exit(void *arg)
{
    (void)arg;
    seen[0] = NtWaitForSingleObject(mutant, 0, 0);
    return 7;                                   /* ends owning it: the mutant is abandoned */
}

static ULONG NTAPI try_mutant(void *arg)
{
    LARGE_INTEGER t = ms(30);
    (void)arg;
    seen[1] = NtWaitForSingleObject(mutant, 0, &t);
    long prev = 5;
    seen[2] = NtReleaseMutant(mutant, &prev);  /* not the owner */
    return 0;
}

static ULONG NTAPI sem_worker(void *arg)
{
    long i = (long)(ULONG_PTR)arg;
    NtWaitForSingleObject(sem, 0, 0);
    __atomic_add_fetch(&sum, 1L << (4 * i), __ATOMIC_SEQ_CST);
    NtSetEvent(done[i], 0);
    return 0;
}

static ULONG NTAPI keyed_waiter(void *arg)
{
    (void)arg;
    seen[3] = NtWaitForKeyedEvent(keyed, (void *)0x100, 0, 0);
    return 0;
}

static ULONG NTAPI relay(void *arg)
{
    (void)arg;
    seen[4] = NtWaitForSingleObject(ev_a, 0, 0);   /* auto-reset A, set by the main thread's signal-and-wait */
    seen[5] = NtSetEvent(ev_b, 0);
    return 0;
}

static void named(void)
{
    UNICODE_STRING us; OBJECT_ATTRIBUTES oa; HANDLE e1, e2, e3, e4, m, dir, rel; NTSTATUS s; long prev;
    struct { int type; long state; } info;
    ULONG got;
    nt_path(&us, &oa, L"\\BaseNamedObjects\\pysud-sync-test");
    s = NtCreateEvent(&e1, EVENT_ALL_ACCESS, &oa, NotificationEvent, 0); check("named create", s);
    oa.Attributes |= OBJ_OPENIF;
    s = NtCreateEvent(&e4, EVENT_ALL_ACCESS, &oa, SynchronizationEvent, 0); check("named create, open-if", s);
    oa.Attributes &= ~OBJ_OPENIF;
    s = NtCreateEvent(&e3, EVENT_ALL_ACCESS, &oa, NotificationEvent, 0); check("named create again", s);
    s = NtOpenEvent(&e3, EVENT_ALL_ACCESS, &oa); check("named open", s);
    s = NtSetEvent(e3, &prev); check("set through the opened handle", s);
    s = NtQueryEvent(e1, 0, &info, sizeof info, &got);
    check("query through the first", s); out("  type "); out_dec(info.type); out(" state "); out_dec(info.state);
    out(" result "); out_dec(got); out("\n");
    s = NtQueryEvent(e1, 0, &info, 4, &got); check("query, short buffer", s);
    s = NtOpenMutant(&m, MUTANT_ALL_ACCESS, &oa); check("open as a mutant", s);
    s = NtCreateMutant(&m, MUTANT_ALL_ACCESS, &oa, 0); check("create a mutant of that name", s);
    nt_path(&us, &oa, L"\\BaseNamedObjects");
    s = NtOpenDirectoryObject(&dir, 0x3, &oa); check("open directory", s);
    nt_path(&us, &oa, L"pysud-sync-test"); oa.RootDirectory = dir;
    s = NtOpenEvent(&rel, EVENT_ALL_ACCESS, &oa); check("open relative to the directory", s);
    s = NtResetEvent(rel, &prev); check("reset through it", s); out("  previous "); out_dec(prev); out("\n");
    nt_path(&us, &oa, L"pysud-sync-test");
    s = NtOpenEvent(&e2, EVENT_ALL_ACCESS, &oa); check("open a relative name without a root", s);
    nt_path(&us, &oa, L"\\BaseNamedObjects\\pysud-missing");
    s = NtOpenEvent(&e2, EVENT_ALL_ACCESS, &oa); check("open missing", s);
    NtClose(e1); NtClose(e3); NtClose(rel); NtClose(dir);
    nt_path(&us, &oa, L"\\BaseNamedObjects\\pysud-sync-test");
    s = NtOpenEvent(&e1, EVENT_ALL_ACCESS, &oa); check("open while one handle is left", s);
    NtClose(e1); NtClose(e4);
    s = NtOpenEvent(&e1, EVENT_ALL_ACCESS, &oa); check("open after the last close", s);
}

int mainCRTStartup(void)
{
    NTSTATUS s; long prev; LARGE_INTEGER t; HANDLE h, th[4];

    /* ---- mutants */
    s = NtCreateMutant(&mutant, MUTANT_ALL_ACCESS, 0, 1); check("mutant (owned)", s);
    query_mutant("owned");
    s = NtWaitForSingleObject(mutant, 0, 0); check("wait again (recursive)", s);
    query_mutant("twice");
    h = thread(try_mutant, 0); join(h);
    check("other thread waits", seen[1]); check("other thread releases", seen[2]);
    prev = 9; s = NtReleaseMutant(mutant, &prev); check("release", s); out("  previous "); out_dec(prev); out("\n");
    prev = 9; s = NtReleaseMutant(mutant, &prev); check("release", s); out("  previous "); out_dec(prev); out("\n");
    s = NtReleaseMutant(mutant, &prev); check("release not owned", s);
    h = thread(take_mutant_and_exit, 0); join(h);
    check("thread took it", seen[0]);
    query_mutant("after its owner ended");
    s = NtWaitForSingleObject(mutant, 0, 0); check("wait abandoned", s);
    query_mutant("taken over");
    s = NtReleaseMutant(mutant, &prev); check("release", s);

    /* ---- semaphores */
    s = NtCreateSemaphore(&h, SEMAPHORE_ALL_ACCESS, 0, 3, 2); check("semaphore initial > maximum", s);
    s = NtCreateSemaphore(&h, SEMAPHORE_ALL_ACCESS, 0, 0, 0); check("semaphore maximum 0", s);
    s = NtCreateSemaphore(&sem, SEMAPHORE_ALL_ACCESS, 0, 1, 2); check("semaphore", s);
    prev = 9; s = NtReleaseSemaphore(sem, 1, &prev); check("release 1", s); out("  previous "); out_dec(prev); out("\n");
    s = NtReleaseSemaphore(sem, 1, &prev); check("release over the maximum", s);
    t = ms(10);
    s = NtWaitForSingleObject(sem, 0, &t); check("wait", s);
    s = NtWaitForSingleObject(sem, 0, &t); check("wait", s);
    s = NtWaitForSingleObject(sem, 0, &t); check("wait (empty)", s);
    {
        struct { long count, max; } info; ULONG got;
        s = NtQuerySemaphore(sem, 0, &info, sizeof info, &got); check("query", s);
        out("  count "); out_dec(info.count); out(" maximum "); out_dec(info.max); out("\n");
    }
    NtClose(sem);
    s = NtCreateSemaphore(&sem, SEMAPHORE_ALL_ACCESS, 0, 0, 10); check("semaphore for 4 workers", s);
    for (long i = 0; i < 4; i++) {
        NtCreateEvent(&done[i], EVENT_ALL_ACCESS, 0, NotificationEvent, 0);
        th[i] = thread(sem_worker, (void *)(ULONG_PTR)i);
    }
    t = ms(50);
    s = NtWaitForMultipleObjects(4, done, 1 /* any */, 0, &t); check("any worker before the release", s);
    s = NtReleaseSemaphore(sem, 4, &prev); check("release 4", s); out("  previous "); out_dec(prev); out("\n");
    s = NtWaitForMultipleObjects(4, done, 0 /* all */, 0, 0); check("all workers", s);
    for (int i = 0; i < 4; i++) join(th[i]);
    out("sum "); out_hex(sum); out("\n");

    /* ---- waits: argument errors, wait-all over object kinds */
    s = NtWaitForMultipleObjects(0, done, 0, 0, &t); check("wait for 0 objects", s);
    s = NtWaitForMultipleObjects(65, done, 0, 0, &t); check("wait for 65 objects", s);
    {
        HANDLE two[2] = {done[0], (HANDLE)0x7770};
        s = NtWaitForMultipleObjects(2, two, 1, 0, &t); check("wait with a bad handle", s);
        s = NtReleaseSemaphore(sem, 1, 0);
        two[0] = mutant; two[1] = sem;
        s = NtWaitForMultipleObjects(2, two, 0, 0, &t); check("wait all: mutant + semaphore", s);
        s = NtReleaseMutant(mutant, 0); check("release", s);
    }

    /* ---- timers */
    s = NtCreateTimer(&h, TIMER_ALL_ACCESS, 0, 0); check("notification timer", s);
    {
        BOOLEAN state = 9; LARGE_INTEGER due = ms(20), before, after;
        struct { LARGE_INTEGER remaining; BOOLEAN state; } info; ULONG got;
        t = ms(5);
        s = NtWaitForSingleObject(h, 0, &t); check("wait unset timer", s);
        NtQuerySystemTime(&before);
        s = NtSetTimer(h, &due, 0, 0, 0, 0, &state); check("set 20 ms", s); out("  previous "); out_dec(state); out("\n");
        s = NtQueryTimer(h, 0, &info, sizeof info, &got); check("query", s);
        out("  state "); out_dec(info.state); out(" remaining > 0 "); out_dec(info.remaining.QuadPart > 0); out("\n");
        s = NtWaitForSingleObject(h, 0, 0); check("wait", s);
        NtQuerySystemTime(&after);
        out("  waited >= 15 ms "); out_dec(after.QuadPart - before.QuadPart >= 150000); out("\n");
        s = NtWaitForSingleObject(h, 0, 0); check("wait again (stays signaled)", s);
        s = NtCancelTimer(h, &state); check("cancel", s); out("  state "); out_dec(state); out("\n");
        NtClose(h);
        s = NtCreateTimer(&h, TIMER_ALL_ACCESS, 0, 1); check("periodic synchronization timer", s);
        due = ms(5);
        s = NtSetTimer(h, &due, 0, 0, 0, 10, 0); check("set 5 ms, period 10 ms", s);
        for (int i = 0; i < 3; i++) { s = NtWaitForSingleObject(h, 0, 0); check("  tick", s); }
        s = NtCancelTimer(h, 0); check("cancel", s);
        t = ms(30);
        s = NtWaitForSingleObject(h, 0, &t); check("wait cancelled", s);
        s = NtCreateTimer(&h, TIMER_ALL_ACCESS, 0, 5); check("timer type 5", s);
    }

    /* ---- keyed events */
    s = NtCreateKeyedEvent(&keyed, 0xf0003, 0, 0); check("keyed event", s);
    h = thread(keyed_waiter, 0);
    s = NtReleaseKeyedEvent(keyed, (void *)0x100, 0, 0); check("release key 0x100", s);
    join(h); check("waiter", seen[3]);
    t = ms(10);
    s = NtReleaseKeyedEvent(keyed, (void *)0x200, 0, &t); check("release with no waiter", s);
    s = NtWaitForKeyedEvent(keyed, (void *)0x200, 0, &t); check("wait with no releaser", s);
    s = NtWaitForKeyedEvent(keyed, (void *)0x201, 0, &t); check("wait on an odd key", s);

    /* ---- signal and wait, duplicated handles */
    NtCreateEvent(&ev_a, EVENT_ALL_ACCESS, 0, SynchronizationEvent, 0);
    NtCreateEvent(&ev_b, EVENT_ALL_ACCESS, 0, SynchronizationEvent, 0);
    h = thread(relay, 0);
    s = NtSignalAndWaitForSingleObject(ev_a, ev_b, 0, 0); check("signal A, wait B", s);
    join(h); check("relay saw A", seen[4]);
    t = ms(10);
    s = NtSignalAndWaitForSingleObject(mutant, ev_b, 0, &t); check("signal a mutant not owned", s);
    s = NtSignalAndWaitForSingleObject(sem, ev_b, 0, &t); check("signal a semaphore, wait B", s);
    {
        HANDLE dup = 0, me = 0; struct { int type; long state; } info; ULONG got;
        s = NtDuplicateObject(NtCurrentProcess(), ev_a, NtCurrentProcess(), &dup, 0, 0, DUPLICATE_SAME_ACCESS);
        check("duplicate", s); out("  new handle differs "); out_dec(dup != ev_a && dup != 0); out("\n");
        s = NtSetEvent(dup, 0); check("set the duplicate", s);
        NtQueryEvent(ev_a, 0, &info, sizeof info, &got); out("  original's state "); out_dec(info.state); out("\n");
        s = NtDuplicateObject(NtCurrentProcess(), dup, NtCurrentProcess(), &h, 0, 0,
                              DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE);
        check("duplicate, closing the source", s);
        s = NtSetEvent(h, 0); check("set the new handle", s);
        s = NtDuplicateObject(NtCurrentProcess(), NtCurrentThread(), NtCurrentProcess(), &me, 0, 0, DUPLICATE_SAME_ACCESS);
        check("duplicate the current thread", s);
        t = ms(1);
        s = NtWaitForSingleObject(me, 0, &t); check("wait for myself", s);
        s = NtDuplicateObject(NtCurrentProcess(), (HANDLE)0x7770, NtCurrentProcess(), &me, 0, 0, 0);
        check("duplicate a bad handle", s);
    }

    named();
    return 0;
}
