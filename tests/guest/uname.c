/* uname and hostname. */
#include "check.h"
#include <ctype.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
    struct utsname u;
    CHECK(uname(&u) == 0);
    printf("sysname=%s\n", u.sysname);
    printf("machine=%s\n", u.machine);
    CHECK(strcmp(u.sysname, "Linux") == 0);
    CHECK(strcmp(u.machine, "aarch64") == 0);
    CHECK(isdigit((unsigned char)u.release[0]));
    CHECK(u.nodename[0] != 0);
    char host[256];
    CHECK(gethostname(host, sizeof host) == 0 && strcmp(host, u.nodename) == 0);
    return report();
}
