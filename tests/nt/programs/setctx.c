/* SetThreadContext on a thread suspended inside a blocking call (WaitForSingleObject): its context
 * is the call's (RIP in ntdll's NtWaitForMultipleObjects stub, which kernelbase waits with); the new registers are what
 * GetThreadContext reads back, and the thread takes them when it leaves the call (once the event
 * is set): it continues in hijack_entry with the RBX and R12 given, and its wait ends nowhere.
 * (Callee-saved registers only: Wine's return from the call leaves RCX = RIP, as a sysret does;
 * Windows restores the whole context.) */
#include <stdio.h>
#include <windows.h>

static HANDLE ev;

__attribute__((used)) void hijacked(ULONG_PTR rbx, ULONG_PTR r12)
{
    printf("hijacked: rbx = %#llx, r12 = %#llx\n", (unsigned long long)rbx, (unsigned long long)r12);
    fflush(stdout);
    ExitThread(42);
}

/* entered with a new RSP ≡ 8 (mod 16), as after a call; passes RBX and R12 on as the arguments */
void hijack_entry(void);
__asm__(".globl hijack_entry\nhijack_entry:\n\tmovq %rbx, %rcx\n\tmovq %r12, %rdx\n\tjmp hijacked\n");

static DWORD WINAPI blocked(void *param)
{
    DWORD r = WaitForSingleObject(ev, INFINITE);
    printf("wait returned %lu: not hijacked\n", r);
    return 1;
}

int main(void)
{
    BYTE *stub = (BYTE *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtWaitForMultipleObjects");
    ev = CreateEventW(NULL, FALSE, FALSE, NULL);
    HANDLE t = CreateThread(NULL, 0, blocked, NULL, 0, NULL);
    CONTEXT ctx;
    int inside = 0;
    for (int i = 0; i < 1000 && !inside; i++) {
        Sleep(5);
        SuspendThread(t);
        ctx.ContextFlags = CONTEXT_CONTROL | CONTEXT_INTEGER;
        if (!GetThreadContext(t, &ctx))
            printf("GetThreadContext failed: %lu\n", GetLastError());
        inside = (BYTE *)ctx.Rip >= stub && (BYTE *)ctx.Rip < stub + 32;
        if (!inside)
            ResumeThread(t);
    }
    printf("suspended inside NtWaitForMultipleObjects: %s\n", inside ? "yes" : "no");
    if (!inside)
        return 1;
    ctx.ContextFlags = CONTEXT_CONTROL | CONTEXT_INTEGER;
    ctx.Rip = (DWORD64)hijack_entry;
    ctx.Rsp = ((ctx.Rsp - 0x200) & ~(DWORD64)15) - 8;
    ctx.Rcx = 0x1234;
    ctx.Rbx = 0x9abc;
    ctx.R12 = 0x5678;
    printf("SetThreadContext: %d\n", SetThreadContext(t, &ctx));

    CONTEXT back;
    back.ContextFlags = CONTEXT_CONTROL | CONTEXT_INTEGER;
    GetThreadContext(t, &back);
    printf("read back: rip is hijack_entry: %s, rcx = %#llx, rbx = %#llx, r12 = %#llx\n",
           back.Rip == (DWORD64)hijack_entry ? "yes" : "no", back.Rcx, back.Rbx, back.R12);

    printf("ResumeThread: %lu\n", ResumeThread(t));
    fflush(stdout);
    Sleep(50); /* still in its wait: the new context waits for the call's end */
    printf("before SetEvent: thread %s\n", WaitForSingleObject(t, 0) == WAIT_TIMEOUT ? "still waits" : "ended");
    fflush(stdout);
    SetEvent(ev);
    DWORD code = 0;
    printf("thread ended: %lu\n", WaitForSingleObject(t, 5000));
    GetExitCodeThread(t, &code);
    printf("exit code %lu\n", code);
    return 0;
}
