/* An access violation nobody handles: the process ends with STATUS_ACCESS_VIOLATION. */
#include <stdio.h>

int main(int argc, char **argv)
{
    volatile int *p = (int *)(unsigned long long)(argc - 1) ; /* NULL when run without arguments */
    printf("about to crash\n");
    fflush(stdout);
    *p = 1;
    printf("still alive\n");
    return 0;
}
