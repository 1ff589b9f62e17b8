/* execve closes the descriptors marked close-on-exec and keeps the others (git's exec-notify
   pipe relies on it): the new image reports which of the two are still open. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    int a = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int b = open("/dev/null", O_RDONLY);
    if (a < 0 || b < 0)
        return 1;
    char fa[16], fb[16];
    snprintf(fa, sizeof fa, "%d", a);
    snprintf(fb, sizeof fb, "%d", b);
    fflush(stdout);
    execl("/bin/sh", "sh", "-c",
          "if [ -e /proc/self/fd/$1 ]; then echo cloexec open; else echo cloexec closed; fi; "
          "if [ -e /proc/self/fd/$2 ]; then echo plain open; else echo plain closed; fi",
          "sh", fa, fb, (char *)NULL);
    return 127;
}
