/* hello world: the console handle from the PEB's process parameters, NtWriteFile, an exit status. */
#include "nt.h"

int mainCRTStartup(void)
{
    out("hello, world\n");
    out("from an NT program\n");
    return 7;
}
