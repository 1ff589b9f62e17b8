/* Exits with the 32-bit code given as its last argument (decimal or 0x...). */
#include <stdlib.h>

int main(int argc, char **argv)
{
    return argc > 1 ? (int)strtoul(argv[argc - 1], 0, 0) : 0;
}
