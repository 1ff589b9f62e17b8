/* fopen/fprintf/fgets/fseek/remove through msvcrt, in the current directory. */
#include <stdio.h>
#include <string.h>

int main(void)
{
    FILE *f = fopen("pysud-stdio.txt", "w");
    if (!f) { printf("fopen w failed\n"); return 1; }
    for (int i = 0; i < 5; i++)
        fprintf(f, "line %d: %s\n", i, i % 2 ? "odd" : "even");
    fclose(f);
    f = fopen("pysud-stdio.txt", "r");
    if (!f) { printf("fopen r failed\n"); return 2; }
    char buf[128];
    int n = 0;
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = 0;
        printf("read [%s]\n", buf);
        n++;
    }
    fseek(f, 0, SEEK_END);
    printf("lines %d, size %ld\n", n, ftell(f));
    fclose(f);
    f = fopen("pysud-stdio.txt", "a");
    fputs("appended\n", f);
    fclose(f);
    f = fopen("pysud-stdio.txt", "rb");
    fseek(f, -9, SEEK_END);
    printf("tail [%s]\n", fgets(buf, sizeof buf, f) ? strtok(buf, "\n") : "?");
    fclose(f);
    printf("missing: %s\n", fopen("no-such-file.txt", "r") ? "found" : "NULL");
    printf("remove: %d\n", remove("pysud-stdio.txt"));
    printf("remove again: %d\n", remove("pysud-stdio.txt"));
    return 0;
}
