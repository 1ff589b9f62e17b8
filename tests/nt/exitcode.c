/* Exit codes: the status comes from the command line (the first argument after the program name). */
#include "nt.h"

int mainCRTStartup(void)
{
    UNICODE_STRING *cmd = (UNICODE_STRING *)(nt_params() + 0x70);
    const WCHAR *w = cmd->Buffer; unsigned n = cmd->Length / 2, i = 0;
    int quoted = 0;
    while (i < n && (quoted || w[i] != ' ')) { if (w[i] == '"') quoted = !quoted; i++; }
    while (i < n && w[i] == ' ') i++;
    int code = 0;
    while (i < n && w[i] >= '0' && w[i] <= '9') code = code * 10 + (w[i++] - '0');
    out("exiting with "); out_dec(code); out("\n");
    NtTerminateProcess(NtCurrentProcess(), code);
    out("not reached\n");
    return 99;
}
