/* NtClose issued with the program's own `syscall` in the direct variant (number 0xf, which is
 * Linux's rt_sigreturn): tracks the core limit documented in docs/nt.md. */
#include "nt.h"

int mainCRTStartup(void)
{
    HANDLE ev; NTSTATUS s;
    s = NtCreateEvent(&ev, EVENT_ALL_ACCESS, 0, NotificationEvent, 0); check("event", s);
#ifdef DIRECT_SYSCALLS
    s = nt_direct_syscall(nt_syscall_number("NtClose"), ev);
#else
    s = NtClose(ev);
#endif
    check("close", s);
    return 0;
}
