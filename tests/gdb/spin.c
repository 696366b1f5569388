/* tests/gdb.rs: says it runs, then spins until gdb interrupts it (Ctrl-C). */
#include <unistd.h>

volatile unsigned long spin;

int main(void)
{
    write(1, "spinning\n", 9);
    for (;;)
        spin++;
}
