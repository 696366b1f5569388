/* The smallest meaningful guest: one line on stdout, exit 0. */
#include <stdio.h>

int main(void)
{
    puts("Hello, world!");
    return 0;
}
