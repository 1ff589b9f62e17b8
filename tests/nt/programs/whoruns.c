/* Tells which process runs it: the Linux command line of its own process (Z:\proc\self\cmdline),
 * its arguments, and exits with 3.  Under pysud the process is `python -m pysud run ...`. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char buf[4096] = {0};
    FILE *f = fopen("Z:\\proc\\self\\cmdline", "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    int pysud = 0;
    for (size_t i = 0; i + 5 <= n; i++)
        if (!memcmp(buf + i, "pysud", 5))
            pysud = 1;
    printf("run by pysud: %s\n", pysud ? "yes" : "no");
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    return 3;
}
