/* The main thread returns while another thread spins without ever calling the kernel again. */
#include <windows.h>
#include <stdio.h>

static DWORD WINAPI spinner(void *arg)
{
    (void)arg;
    for (;;)
        ;
    return 0;
}

int main(void)
{
    CreateThread(NULL, 0, spinner, NULL, 0, NULL);
    Sleep(50);
    printf("main returns while a thread spins\n");
    return 5;
}
