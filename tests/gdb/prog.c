/* The program tests/gdb.rs debugs under `elfuse -g` and `qemu-aarch64 -g` (built -g -O0,
 * static and dynamic). Line numbers matter to the test's gdb script: keep the layout. */
#include <stdio.h>
#include <string.h>

static int square(int x)
{
    int r = x * x;
    return r;
}

int main(int argc, char **argv)
{
    int local = 42;
    int sq = square(local);
    printf("square %d\n", sq);
    size_t n = strlen(argv[argc - 1]);
    printf("len %d\n", (int)(n > 0));
    puts("done");
    return 3;
}
