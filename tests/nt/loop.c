/* Benchmark: N NtQuerySystemTime calls (N from the command line), through ntdll or, with
 * -DDIRECT_SYSCALLS, through the program's own `syscall`. */
#include "nt.h"

int mainCRTStartup(void)
{
    UNICODE_STRING *cmd = (UNICODE_STRING *)(nt_params() + 0x70);
    const WCHAR *w = cmd->Buffer; unsigned n = cmd->Length / 2, i = 0;
    int quoted = 0;
    while (i < n && (quoted || w[i] != ' ')) { if (w[i] == '"') quoted = !quoted; i++; }
    while (i < n && w[i] == ' ') i++;
    long count = 0;
    while (i < n && w[i] >= '0' && w[i] <= '9') count = count * 10 + (w[i++] - '0');
    LARGE_INTEGER t;
    for (long k = 0; k < count; k++) NtQuerySystemTime(&t);
    return 0;
}
