/* Benchmark: N kernel-object calls of one kind (command line: OP N). OP is query (NtQueryValueKey of
 * HKLM CurrentVersion's SystemRoot), set (NtSetValueKey of a DWORD under HKCU\Software),
 * event (NtSetEvent + NtWaitForSingleObject on an auto-reset event) or mutant (wait + release). */
#include "nt.h"

NTSTATUS NTAPI NtOpenKey(HANDLE *, ULONG, OBJECT_ATTRIBUTES *);
NTSTATUS NTAPI NtCreateKey(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, ULONG, UNICODE_STRING *, ULONG, ULONG *);
NTSTATUS NTAPI NtQueryValueKey(HANDLE, UNICODE_STRING *, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtSetValueKey(HANDLE, UNICODE_STRING *, ULONG, ULONG, const void *, ULONG);
NTSTATUS NTAPI NtDeleteKey(HANDLE);
NTSTATUS NTAPI NtCreateMutant(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, BOOLEAN);
NTSTATUS NTAPI NtReleaseMutant(HANDLE, long *);

int mainCRTStartup(void)
{
    UNICODE_STRING *cmd = (UNICODE_STRING *)(nt_params() + 0x70);
    const WCHAR *w = cmd->Buffer; unsigned n = cmd->Length / 2, i = 0;
    int quoted = 0;
    while (i < n && (quoted || w[i] != ' ')) { if (w[i] == '"') quoted = !quoted; i++; }
    while (i < n && w[i] == ' ') i++;
    WCHAR op = i < n ? w[i] : 0;
    while (i < n && w[i] != ' ') i++;
    while (i < n && w[i] == ' ') i++;
    long count = 0;
    while (i < n && w[i] >= '0' && w[i] <= '9') count = count * 10 + (w[i++] - '0');

    UNICODE_STRING us, name; OBJECT_ATTRIBUTES oa; HANDLE h; ULONG got, disp;
    static unsigned char buf[256];
    NTSTATUS s = 0;
    if (op == 'q') {
        nt_path(&us, &oa, L"\\Registry\\Machine\\Software\\Microsoft\\Windows NT\\CurrentVersion");
        if ((s = NtOpenKey(&h, 0x20019, &oa))) return 1;
        RtlInitUnicodeString(&name, L"SystemRoot");
        for (long k = 0; k < count && !s; k++) s = NtQueryValueKey(h, &name, 2, buf, sizeof buf, &got);
    } else if (op == 's') {
        nt_path(&us, &oa, L"\\Registry\\User\\S-1-5-21-0-0-0-1000\\Software\\PysudBench");
        if ((s = NtCreateKey(&h, 0xf003f, &oa, 0, 0, 0, &disp))) return 1;
        RtlInitUnicodeString(&name, L"n");
        for (long k = 0; k < count && !s; k++) s = NtSetValueKey(h, &name, 0, 4, &k, 4);
        NtDeleteKey(h);
    } else if (op == 'e') {
        if ((s = NtCreateEvent(&h, EVENT_ALL_ACCESS, 0, SynchronizationEvent, 0))) return 1;
        for (long k = 0; k < count && !s; k++) { NtSetEvent(h, 0); s = NtWaitForSingleObject(h, 0, 0); }
    } else if (op == 'm') {
        if ((s = NtCreateMutant(&h, 0x1f0001, 0, 0))) return 1;
        for (long k = 0; k < count && !s; k++) { s = NtWaitForSingleObject(h, 0, 0); if (!s) s = NtReleaseMutant(h, 0); }
    } else return 2;
    return s ? 3 : 0;
}
