/* Directories through kernel32: create, list (FindFirstFile), attributes, remove. */
#include <windows.h>
#include <stdio.h>

int main(void)
{
    printf("mkdir: %d\n", CreateDirectoryA("pysud-dir", NULL));
    printf("mkdir again: %d err %lu\n", CreateDirectoryA("pysud-dir", NULL), GetLastError());
    const char *names[] = {"b.txt", "a.txt", "c.dat"};
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "pysud-dir\\%s", names[i]);
        HANDLE h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
        DWORD n;
        WriteFile(h, path, (DWORD)strlen(path), &n, NULL);
        CloseHandle(h);
    }
    WIN32_FIND_DATAA fd;
    HANDLE f = FindFirstFileA("pysud-dir\\*.txt", &fd);
    int count = 0;
    if (f != INVALID_HANDLE_VALUE) {
        do {
            printf("found %s size %lu dir %d\n", fd.cFileName, fd.nFileSizeLow,
                   !!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY));
            count++;
        } while (FindNextFileA(f, &fd));
        FindClose(f);
    }
    printf("count %d\n", count);
    DWORD attrs = GetFileAttributesA("pysud-dir");
    printf("dir attrs directory=%d\n", !!(attrs & FILE_ATTRIBUTE_DIRECTORY));
    printf("missing attrs %s err %lu\n", GetFileAttributesA("pysud-nope") == INVALID_FILE_ATTRIBUTES ? "invalid" : "?",
           GetLastError());
    printf("rmdir non-empty: %d err %lu\n", RemoveDirectoryA("pysud-dir"), GetLastError());
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "pysud-dir\\%s", names[i]);
        printf("delete %s: %d\n", names[i], DeleteFileA(path));
    }
    printf("rmdir: %d\n", RemoveDirectoryA("pysud-dir"));
    return 0;
}
