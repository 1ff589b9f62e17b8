/* The program execer runs: prints its argv and one variable, exits with argc. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        printf("target argv[%d]=[%s]\n", i, argv[i]);
    const char *v = getenv("EXEC_TEST");
    printf("target EXEC_TEST=%s\n", v ? v : "(unset)");
    return argc;
}
