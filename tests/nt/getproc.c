/* GetProcAddress on ntdll (kernel32, so Wine's DLLs only): what the loader's export lookup gives
 * for a call Wine has (NtClose), one only the Windows build has (NtCreateCrossVmEvent), Wine's
 * non-call ZwGetTickCount; the number in each stub, as Hell's Gate reads it; and one call made
 * through the pointer GetProcAddress returned. */
#include <windows.h>
#include <stdio.h>

static long stub_number(const unsigned char *p)
{
    if (!p || p[0] != 0x4c || p[1] != 0x8b || p[2] != 0xd1 || p[3] != 0xb8) return -1;
    return *(const unsigned *)(p + 4);
}

int main(void)
{
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    const char *names[] = {"NtClose", "ZwClose", "NtCreateTimer", "NtCreateCrossVmEvent", "ZwGetTickCount"};
    for (int i = 0; i < 5; i++) {
        FARPROC p = GetProcAddress(ntdll, names[i]);
        printf("%s: %s, number %#lx\n", names[i], p ? "found" : "missing", stub_number((const unsigned char *)p));
    }
    typedef LONG(WINAPI * close_fn)(HANDLE);
    close_fn nt_close = (close_fn)GetProcAddress(ntdll, "NtClose");
    printf("NtClose(0x7788) = %#lx\n", (unsigned long)nt_close((HANDLE)0x7788));
    return 0;
}
