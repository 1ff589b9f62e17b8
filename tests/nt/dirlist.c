/* Directory listing: create a few files, list them with NtQueryDirectoryFile (sorted here, since
 * the order is the file system's), with a mask, then clean up. */
#include "nt.h"

static char names[32][64]; static int n;

static void create(const WCHAR *path, int dir)
{
    UNICODE_STRING us; OBJECT_ATTRIBUTES oa; IO_STATUS_BLOCK io; HANDLE h;
    nt_path(&us, &oa, path);
    NTSTATUS s = NtCreateFile(&h, GENERIC_WRITE | SYNCHRONIZE, &oa, &io, 0, 0, 0, FILE_CREATE,
                              (dir ? FILE_DIRECTORY_FILE : FILE_NON_DIRECTORY_FILE) | FILE_SYNCHRONOUS_IO_NONALERT, 0, 0);
    if (s) check("create", s);
    if (!dir) NtWriteFile(h, 0, 0, 0, &io, "12345", 5, 0, 0);
    NtClose(h);
}

static int cmp(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return (unsigned char)*a - (unsigned char)*b; }

static void list(HANDLE d, int cls, UNICODE_STRING *mask)
{
    union { char raw[4096]; long long align; } u; IO_STATUS_BLOCK io; NTSTATUS s; int restart = 1;
    n = 0;
    for (;;) {
        s = NtQueryDirectoryFile(d, 0, 0, 0, &io, u.raw, sizeof u.raw, cls, 0, mask, restart);
        restart = 0;
        if (s) break;
        char *p = u.raw;
        for (;;) {
            WCHAR *w; unsigned len; long long size = -1; ULONG attrs = 0;
            if (cls == FileNamesInformation) {
                FILE_NAMES_INFORMATION *e = (void *)p; w = e->FileName; len = e->FileNameLength / 2;
            } else {
                FILE_DIRECTORY_INFORMATION *e = (void *)p; w = e->FileName; len = e->FileNameLength / 2;
                size = e->EndOfFile.QuadPart; attrs = e->FileAttributes;
            }
            char *o = names[n++]; unsigned i;
            for (i = 0; i < len && i < 40; i++) o[i] = (char)w[i];
            o[i] = 0;
            if (size >= 0 && !(attrs & 0x10) && i < 50) { o[i++] = ' '; o[i++] = '0' + (char)size; o[i] = 0; }
            if (attrs & 0x10) { o[i++] = '/'; o[i] = 0; }
            ULONG next = *(ULONG *)p;
            if (!next) break;
            p += next;
        }
    }
    check("end of listing", s);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && cmp(names[j - 1], names[j]) > 0; j--) {
            char t[64]; for (int k = 0; k < 64; k++) { t[k] = names[j][k]; names[j][k] = names[j - 1][k]; names[j - 1][k] = t[k]; }
        }
    for (int i = 0; i < n; i++) { out("  "); out(names[i]); out("\n"); }
}

int mainCRTStartup(void)
{
    create(L"\\??\\C:\\pysud-dir", 1);
    create(L"\\??\\C:\\pysud-dir\\alpha.txt", 0);
    create(L"\\??\\C:\\pysud-dir\\Beta.dat", 0);
    create(L"\\??\\C:\\pysud-dir\\gamma.txt", 0);
    create(L"\\??\\C:\\pysud-dir\\sub", 1);

    UNICODE_STRING us; OBJECT_ATTRIBUTES oa; IO_STATUS_BLOCK io; HANDLE d;
    nt_path(&us, &oa, L"\\??\\C:\\pysud-dir");
    NTSTATUS s = NtOpenFile(&d, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, FILE_SHARE_READ | FILE_SHARE_WRITE,
                            FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    check("open dir", s);
    out("all, directory information:\n");
    list(d, FileDirectoryInformation, 0);
    UNICODE_STRING mask; RtlInitUnicodeString(&mask, L"*.txt");
    out("again with a mask (ignored: the first call's holds):\n");
    list(d, FileNamesInformation, &mask);
    NtClose(d);
    s = NtOpenFile(&d, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, FILE_SHARE_READ | FILE_SHARE_WRITE,
                   FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    out("*.TXT on a new handle, names information:\n");
    RtlInitUnicodeString(&mask, L"*.TXT");
    list(d, FileNamesInformation, &mask);
    NtClose(d);

    static const WCHAR *rm[] = { L"\\??\\C:\\pysud-dir\\alpha.txt", L"\\??\\C:\\pysud-dir\\Beta.dat",
        L"\\??\\C:\\pysud-dir\\gamma.txt", L"\\??\\C:\\pysud-dir\\sub", L"\\??\\C:\\pysud-dir" };
    for (int i = 0; i < 5; i++) { nt_path(&us, &oa, rm[i]); s = NtDeleteFile(&oa); if (s) check("delete", s); }
    out("done\n");
    return 0;
}
