/* exec MODE [ARGS]: execve and execveat (elfuse-only: qemu-user cannot exec an AArch64
 * binary without binfmt_misc).
 *   self        execve of itself with new argv/envp, same pid
 *   errors DIR  ENOENT, EACCES, ENOEXEC, E2BIG, ELOOP
 *   cloexec DIR CLOEXEC fds closed, handled signals reset, ignored kept, mask kept
 *   script DIR  a #! script whose interpreter is this program
 *   vfork       vfork + execve; fork + execveat(AT_EMPTY_PATH)
 *   threads     execve while other threads block in read() and in a futex wait
 *   leader      execve from a thread that is not the leader: it takes the pid as tid
 * Internal modes (after an exec): show, check-cloexec, script-arg, check-leader. */
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static char self[4096];

static void write_file(const char *path, const char *text, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    write(fd, text, strlen(text));
    close(fd);
    chmod(path, mode);
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int show(int argc, char **argv)
{
    printf("argc=%d argv0=%s", argc, argv[0]);
    for (int i = 1; i < argc; i++)
        printf(" [%s]", argv[i]);
    const char *v = getenv("EXECVAR");
    printf(" EXECVAR=%s\n", v ? v : "(unset)");
    char exe[4096] = {0};
    readlink("/proc/self/exe", exe, sizeof exe - 1);
    printf("exe is self: %s\n", strcmp(exe, self) == 0 ? "yes" : "no");
    return 0;
}

static void errors(const char *dir)
{
    char p[4200], q[4200];
    char *argv[] = {"x", NULL};
    CHECK_ERR(execve("/nonexistent/prog", argv, environ), ENOENT);
    snprintf(p, sizeof p, "%s/garbage", dir);
    write_file(p, "this is not a program\n", 0755);
    CHECK_ERR(execve(p, argv, environ), ENOEXEC);
    snprintf(p, sizeof p, "%s/noexec", dir);
    write_file(p, "#!/bin/sh\n", 0644);
    CHECK_ERR(execve(p, argv, environ), EACCES); /* no x bit: even for root */
    CHECK_ERR(execve(dir, argv, environ), EACCES);
    snprintf(p, sizeof p, "%s/empty-shebang", dir);
    write_file(p, "#!\n", 0755);
    CHECK_ERR(execve(p, argv, environ), ENOEXEC);
    /* A chain of seven scripts: deeper than Linux's limit (five run). */
    for (int i = 0; i < 6; i++) {
        char text[4300];
        snprintf(p, sizeof p, "%s/s%d", dir, i);
        snprintf(text, sizeof text, "#!%s/s%d\n", dir, i + 1);
        write_file(p, text, 0755);
    }
    snprintf(q, sizeof q, "%s/s6", dir);
    write_file(q, "#!/nonexistent\n", 0755);
    snprintf(p, sizeof p, "%s/s0", dir);
    CHECK_ERR(execve(p, argv, environ), ELOOP);
    CHECK_ERR(execve(q, argv, environ), ENOENT);
    /* One string longer than MAX_ARG_STRLEN, then too many bytes in total. */
    size_t big = 33 * 4096;
    char *s = malloc(big);
    memset(s, 'a', big - 1);
    s[big - 1] = 0;
    char *argv2[] = {"x", s, NULL};
    CHECK_ERR(execve(self, argv2, environ), E2BIG);
    s[100000] = 0;
    char *many[80];
    for (int i = 0; i < 79; i++)
        many[i] = s;
    many[79] = NULL;
    CHECK_ERR(execve(self, many, environ), E2BIG);
    free(s);
    CHECK_ERR(syscall(SYS_execveat, AT_FDCWD, "", argv, environ, 0), ENOENT);
    CHECK_ERR(syscall(SYS_execveat, AT_FDCWD, self, argv, environ, 0x8000), EINVAL);
}

static int block_pipe[2];
static pthread_mutex_t never = PTHREAD_MUTEX_INITIALIZER;

static void *blocked_reader(void *arg)
{
    char c;
    (void)arg;
    read(block_pipe[0], &c, 1); /* never written */
    return NULL;
}

static void *blocked_locker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&never); /* held by main forever */
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
}

static void *exec_from_thread(void *arg)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)(long)arg);
    char *nargv[] = {self, "check-leader", pid, NULL};
    execve(self, nargv, environ);
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

int main(int argc, char **argv)
{
    readlink("/proc/self/exe", self, sizeof self - 1);
    const char *mode = argc > 1 ? argv[1] : "self";
    if (!strcmp(mode, "show"))
        return show(argc, argv);
    if (!strcmp(mode, "check-cloexec")) {
        int a = atoi(argv[2]), b = atoi(argv[3]);
        CHECK(fcntl(a, F_GETFD) == -1 && errno == EBADF);
        CHECK(fcntl(b, F_GETFD) == 0);
        char buf[8] = {0};
        CHECK(read(b, buf, 7) == 7 && strcmp(buf, "content") == 0);
        struct sigaction sa;
        sigaction(SIGUSR1, NULL, &sa);
        CHECK(sa.sa_handler == SIG_DFL);
        sigaction(SIGUSR2, NULL, &sa);
        CHECK(sa.sa_handler == SIG_IGN);
        sigset_t set;
        sigprocmask(SIG_BLOCK, NULL, &set);
        CHECK(sigismember(&set, SIGINT) && !sigismember(&set, SIGUSR1));
        CHECK(getpid() == atoi(argv[4]));
        return report();
    }
    if (!strcmp(mode, "check-leader")) {
        pid_t pid = atoi(argv[2]);
        CHECK(getpid() == pid);
        CHECK(syscall(SYS_gettid) == pid);
        pthread_t t;
        void *r = NULL;
        CHECK(pthread_create(&t, NULL, nothing, (void *)7L) == 0);
        CHECK(pthread_join(t, &r) == 0 && r == (void *)7L);
        /* The leader's tid addresses this thread now. */
        CHECK(syscall(SYS_tgkill, pid, pid, 0) == 0);
        return report();
    }
    if (!strcmp(mode, "script-arg")) {
        printf("argc=%d argv0-is-self=%s argv1=%s", argc,
               strcmp(argv[0], self) == 0 ? "yes" : "no", argv[1]);
        for (int i = 2; i < argc; i++)
            printf(" %s", base(argv[i]));
        printf("\n");
        fflush(stdout);
        return 0;
    }
    printf("exec %s\n", mode);
    fflush(stdout);
    if (!strcmp(mode, "threads")) {
        pthread_t a, b;
        pipe(block_pipe);
        pthread_mutex_lock(&never);
        pthread_create(&a, NULL, blocked_reader, NULL);
        pthread_create(&b, NULL, blocked_locker, NULL);
        usleep(20000); /* let both block */
        char *nargv[] = {"threaded", "show", "after-threads", NULL};
        execve(self, nargv, environ);
        return 99;
    }
    if (!strcmp(mode, "leader")) {
        pthread_t t;
        pthread_create(&t, NULL, exec_from_thread, (void *)(long)getpid());
        pthread_join(t, NULL); /* never returns: the thread's execve ends this thread */
        return 99;
    }
    if (!strcmp(mode, "self")) {
        char *nargv[] = {"renamed", "show", "a", "b c", NULL};
        char *nenv[] = {"EXECVAR=yes", NULL};
        execve(self, nargv, nenv);
        return 99;
    }
    if (!strcmp(mode, "errors")) {
        errors(argv[2]);
        return report();
    }
    if (!strcmp(mode, "cloexec")) {
        char p[4200], sa[16], sb[16], sp[16];
        snprintf(p, sizeof p, "%s/f", argv[2]);
        write_file(p, "content", 0644);
        int a = open(p, O_RDONLY | O_CLOEXEC);
        int b = open(p, O_RDONLY);
        signal(SIGUSR1, on_usr1);
        signal(SIGUSR2, SIG_IGN);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        snprintf(sa, sizeof sa, "%d", a);
        snprintf(sb, sizeof sb, "%d", b);
        snprintf(sp, sizeof sp, "%d", getpid());
        char *nargv[] = {self, "check-cloexec", sa, sb, sp, NULL};
        execve(self, nargv, environ);
        return 99;
    }
    if (!strcmp(mode, "script")) {
        char p[4200], text[4300];
        snprintf(p, sizeof p, "%s/script", argv[2]);
        snprintf(text, sizeof text, "#!%s script-arg\necho not a shell\n", self);
        write_file(p, text, 0755);
        char p2[4200];
        snprintf(p2, sizeof p2, "%s/script2", argv[2]);
        snprintf(text, sizeof text, "#!%s\n", p);
        write_file(p2, text, 0755);
        char *nargv[] = {"ignored", "x", NULL};
        int st;
        pid_t pid = fork();
        if (pid == 0) {
            execve(p2, nargv, environ); /* script2 -> script -> this program */
            _exit(98);
        }
        waitpid(pid, &st, 0);
        execve(p, nargv, environ);
        return 99;
    }
    if (!strcmp(mode, "vfork")) {
        int st;
        pid_t pid = vfork();
        if (pid == 0) {
            char *nargv[] = {"vforked", "show", "from-vfork", NULL};
            execve(self, nargv, environ);
            _exit(99);
        }
        waitpid(pid, &st, 0);
        printf("vfork child status %d\n", WEXITSTATUS(st));
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            int fd = open(self, O_RDONLY);
            char *nargv[] = {"forked", "show", "from-execveat", NULL};
            syscall(SYS_execveat, fd, "", nargv, environ, AT_EMPTY_PATH);
            _exit(98);
        }
        waitpid(pid, &st, 0);
        printf("fork child status %d\n", WEXITSTATUS(st));
        return 0;
    }
    return 2;
}
