/* A thread ends the process (ExitProcess) while the main thread spins without ever calling the
 * kernel again: the whole program ends, with the thread's status. */
#include <windows.h>
#include <stdio.h>

static volatile int spin = 1;

static DWORD WINAPI worker(void *arg)
{
    (void)arg;
    Sleep(100);
    printf("worker ends the process\n");
    fflush(stdout);
    ExitProcess(3);
    return 0;
}

int main(void)
{
    CreateThread(NULL, 0, worker, NULL, 0, NULL);
    while (spin)
        ;
    return 0;
}
