/* Prints the RLIMIT_NOFILE limits: a process inherits its parent's (tests/guests.rs
 * `nofile_from_host` sets them before starting the guest). */
#include <stdio.h>
#include <sys/resource.h>

int main(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1;
    printf("%llu %llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    return 0;
}
