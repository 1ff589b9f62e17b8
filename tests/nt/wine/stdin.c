/* Standard input: lines read with fgets, counted and echoed in upper case. */
#include <ctype.h>
#include <stdio.h>

int main(void)
{
    char buf[256];
    int lines = 0, chars = 0;
    while (fgets(buf, sizeof buf, stdin)) {
        for (char *p = buf; *p; p++) {
            *p = (char)toupper((unsigned char)*p);
            chars++;
        }
        fputs(buf, stdout);
        lines++;
    }
    printf("%d lines, %d chars\n", lines, chars);
    return lines;
}
