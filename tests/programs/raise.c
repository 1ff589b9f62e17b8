/* raise(argv[1]): musl sends any number, glibc refuses its own 32 and 33 (EINVAL). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int sig = argc > 1 ? atoi(argv[1]) : 0;
    printf("raise(%d)\n", sig);
    fflush(stdout);
    int r = raise(sig);
    printf("returned %d\n", r);
    return 0;
}
