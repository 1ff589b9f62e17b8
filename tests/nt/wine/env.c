/* The environment and the command line: getenv, GetEnvironmentVariable, SetEnvironmentVariable. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *v = getenv("PYSUD_TEST_VAR");
    printf("getenv: %s\n", v ? v : "(null)");
    char buf[256];
    DWORD n = GetEnvironmentVariableA("PYSUD_TEST_VAR", buf, sizeof buf);
    printf("GetEnvironmentVariable: %lu [%s]\n", n, n ? buf : "");
    n = GetEnvironmentVariableA("PYSUD_NOT_SET", buf, sizeof buf);
    printf("unset: %lu err %lu\n", n, GetLastError());
    SetEnvironmentVariableA("PYSUD_NEW", "fresh");
    n = GetEnvironmentVariableA("PYSUD_NEW", buf, sizeof buf);
    printf("after set: %lu [%s]\n", n, buf);
    printf("argc %d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("arg %d [%s]\n", i, argv[i]);
    return argc;
}
