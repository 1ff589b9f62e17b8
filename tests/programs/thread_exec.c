/* execve from a thread other than the first, in the program itself: the kernel ends the other
   threads (the first waits in pause) and the new image runs. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *w(void *a) { (void)a; execl("/bin/echo", "echo", "exec from a second thread", (char *)NULL); return NULL; }
int main(void) { pthread_t t; pthread_create(&t, NULL, w, NULL); pause(); return 3; }
