/* execve of a host-native program (the host's /bin/sh, an x86_64 ELF on the CI host):
 * the process becomes it, running natively, with what an execve keeps: the fds without
 * close-on-exec at their numbers, the cwd, the environment, an ignored SIGPIPE... and
 * its pid. qemu-aarch64 hands such an execve to the host kernel too: same stdout.
 *
 *   execnative DIR   DIR: a scratch directory (the child's cwd)
 */
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (access("/bin/sh", X_OK) != 0) {
        printf("PASS 0 checks\n");
        return 0;
    }
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe2(q, O_CLOEXEC) == 0);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        dup2(p[1], 7);
        close(p[1]);
        chdir(argv[1]);
        char pidbuf[32];
        snprintf(pidbuf, sizeof pidbuf, "GUESTPID=%d", getpid());
        char *args[] = {"sh", "-c",
                        "echo \"$FOO\" >&7; [ \"$PWD\" = \"$(pwd -P)\" ] && pwd -P >&7; "
                        "echo pid=$$ >&7; ls /proc/self/fd/9 2>/dev/null >&7; echo end >&7",
                        0};
        char *env[] = {"FOO=from the guest", pidbuf, "PATH=/usr/bin:/bin", 0};
        dup2(q[1], 9); /* dup2 clears close-on-exec: fd 9 is kept */
        close(q[1]);
        fcntl(q[0], F_SETFD, FD_CLOEXEC);
        execve("/bin/sh", args, env);
        _exit(99);
    }
    close(p[1]);
    close(q[1]);
    char buf[4096] = {0};
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char want[256];
    CHECK(strncmp(buf, "from the guest\n", 15) == 0);
    CHECK(strstr(buf, argv[1]) != 0);
    snprintf(want, sizeof want, "pid=%d\n", c);
    CHECK(strstr(buf, want) != 0);
    CHECK(strstr(buf, "/proc/self/fd/9\n") != 0);
    CHECK(n >= 4 && strcmp(buf + n - 4, "end\n") == 0);
    return report();
}
