/* argc/argv/envp as the kernel lays them out on the initial stack.
 * Prints every argument (between brackets, so empty ones show), the value of
 * ELFUSE_TEST_VAR, and the number of environment entries. */
#include "check.h"
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv, char **envp)
{
    printf("argc=%d\n", argc);
    const char *base = strrchr(argv[0], '/');
    printf("argv[0] basename=[%s]\n", base ? base + 1 : argv[0]);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=[%s] len=%zu\n", i, argv[i], strlen(argv[i]));
    int envc = 0;
    while (envp[envc])
        envc++;
    printf("envc=%d\n", envc);
    const char *v = getenv("ELFUSE_TEST_VAR");
    printf("ELFUSE_TEST_VAR=[%s]\n", v ? v : "(unset)");
    fflush(stdout);

    CHECK(argv[argc] == NULL);
    CHECK(envp == environ);
    CHECK(envp == argv + argc + 1);
    CHECK(getenv("ELFUSE_SURELY_UNSET_VARIABLE") == NULL);
    CHECK(setenv("ELFUSE_NEW", "1", 1) == 0 && strcmp(getenv("ELFUSE_NEW"), "1") == 0);
    return report();
}
