/* execve of a FIFO, a directory or an unreadable file is EACCES, at once (a FIFO is not
 * opened and waited on), as Linux's execve refuses them.
 *
 *   execfifo DIR    DIR: a scratch directory
 */
#include "check.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char p[512];
    char *args[] = {"x", 0};
    char *env[] = {0};
    snprintf(p, sizeof p, "%s/fifo", argv[1]);
    CHECK(mkfifo(p, 0755) == 0);
    CHECK_ERR(execve(p, args, env), EACCES);
    CHECK_ERR(execve(argv[1], args, env), EACCES);
    snprintf(p, sizeof p, "%s/noexec", argv[1]);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && write(fd, "\177ELF", 4) == 4);
    close(fd);
    CHECK_ERR(execve(p, args, env), EACCES);
    return report();
}
