/* A program that crashes: a NULL write with no handler. The host must survive it. */
#include <stdio.h>

int main(void) {
    printf("about to crash\n");
    fflush(stdout);
    *(volatile int *)0 = 1;
    printf("not reached\n");
    return 0;
}
