/* printf through msvcrt, argv, the exit status from main. */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("hello from a mingw program, %d arguments\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    fflush(stdout);
    return 42;
}
