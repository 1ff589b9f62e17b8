/* A C++ exception thrown by an APC routine unwinds through KiUserApcDispatcher's frame to the
 * code that waited (SleepEx; WaitForSingleObjectEx on the current process, which never ends the
 * wait by itself) and is caught there, the waiting frame's variables intact. */
#include <stdio.h>
#include <stdexcept>
#include <windows.h>

static void CALLBACK thrower(ULONG_PTR arg)
{
    throw std::runtime_error(arg == 1 ? "from the first APC" : "from another");
}

int main()
{
    volatile int kept = 1234;
    QueueUserAPC(thrower, GetCurrentThread(), 1);
    try {
        DWORD r = SleepEx(1000, TRUE);
        printf("SleepEx returned %#lx\n", r);
    } catch (std::exception &e) {
        printf("caught \"%s\", kept %d\n", e.what(), kept);
    }
    QueueUserAPC(thrower, GetCurrentThread(), 2);
    try {
        WaitForSingleObjectEx(GetCurrentProcess(), 1000, TRUE);
    } catch (std::exception &e) {
        printf("caught \"%s\"\n", e.what());
    }
    printf("SleepEx(0, TRUE) = %#lx\n", SleepEx(0, TRUE));
    printf("WaitForSingleObject(GetCurrentProcess(), 50) = %#lx\n", WaitForSingleObject(GetCurrentProcess(), 50));
    return 0;
}
