/* exitcode N MODE: terminates with status N using MODE
 * (exit, _exit, return, exit_group). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: exitcode N exit|_exit|return|exit_group\n");
        return 100;
    }
    int n = atoi(argv[1]);
    const char *mode = argv[2];
    printf("exiting with %d via %s\n", n, mode);
    fflush(stdout);
    if (strcmp(mode, "exit") == 0)
        exit(n);
    if (strcmp(mode, "_exit") == 0)
        _exit(n);
    if (strcmp(mode, "return") == 0)
        return n;
    if (strcmp(mode, "exit_group") == 0)
        syscall(SYS_exit_group, n);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 101;
}
