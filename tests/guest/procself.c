/* The guest's own /proc, however it is spelled: every spelling of /proc/self below must
 * show this guest (its mappings, its fds, its threads, its memory) and nothing of the
 * program running it. elfuse-only: qemu-aarch64 7.2 emulates only the exact spellings
 * /proc/self/{maps,stat,auxv,cmdline,exe} and shows its own host process for the rest.
 *
 *   procself DIR DATA BASE   DIR: a scratch directory; DATA, BASE: addresses in the
 *                            reserved region (elfuse's shim_data and the reserve start)
 *
 * Spellings tried for maps (each must contain this program's code and stack and no
 * [vsyscall], no "elfuse"):
 *   /proc/self/maps  /proc/<pid>/maps  //proc/self/maps  /proc//self/maps
 *   /proc/./self/maps  /proc/self/./maps  /proc/../proc/self/maps  /./proc/self/maps
 *   /proc/thread-self/maps  /proc/self/task/<tid>/maps  /proc/<pid>/task/<tid>/maps
 *   /proc/self/root/proc/self/maps  /proc/self/fd/../maps  /dev/fd/../maps
 *   /proc/self/task/<tid>/../../maps  /proc/self/cwd/link/self/maps (cwd: DIR)
 *   DIR/link/self/maps (DIR/link -> /proc)  DIR/link2/maps (DIR/link2 -> /proc/self)
 *   DIR/rel (a relative link ../../...) -> proc
 *   openat(fd of /proc, "self/maps")  openat(fd of /proc/self, "maps")
 *   openat(fd of /proc/self/fd, "../maps")  openat(fd of /, "proc/self/maps")
 *   chdir("/proc/self") + open("maps")  chdir("/proc") + open("self/maps")
 *   fchdir(fd of /proc/self) + open("maps")  chdir("/") + open("proc/self/maps")
 */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static char buf[1 << 20];

static ssize_t slurp_fd(int fd)
{
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    close(fd);
    buf[n] = 0;
    return r < 0 ? -1 : (ssize_t)n;
}

static ssize_t slurp(const char *p) { return slurp_fd(open(p, O_RDONLY)); }

static int stack_marker;

/* buf holds a maps text: is it this guest's? */
static int is_own_maps(void)
{
    uintptr_t code = (uintptr_t)&is_own_maps, stack = (uintptr_t)&stack_marker;
    int have_code = 0, have_data = 0;
    if (strstr(buf, "vsyscall") || strstr(buf, "elfuse"))
        return 0;
    for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : 0) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(l, "%lx-%lx %4s", &lo, &hi, perms) != 3)
            return 0;
        if (lo <= code && code < hi && perms[2] == 'x')
            have_code = 1;
        if (lo <= stack && stack < hi && perms[1] == 'w')
            have_data = 1;
    }
    return have_code && have_data;
}

static void maps_at(const char *p)
{
    char what[600];
    snprintf(what, sizeof what, "%s is this guest's maps", p);
    check_(slurp(p) > 0 && is_own_maps(), what, __LINE__);
}

static void maps_fd(int fd, const char *what)
{
    check_(slurp_fd(fd) > 0 && is_own_maps(), what, __LINE__);
}

static int count_dir(const char *p, int *max)
{
    DIR *d = opendir(p);
    if (!d)
        return -1;
    int n = 0;
    *max = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        if (atoi(e->d_name) > *max)
            *max = atoi(e->d_name);
    }
    closedir(d);
    return n;
}

static void *idle_thread(void *arg)
{
    int *fds = arg;
    char c;
    if (read(fds[0], &c, 1) < 0)
        return 0;
    return 0;
}

/* After an execve from a threaded process: the new image's status, environ, cmdline
 * and auxv, none of the old one's. */
static int after_exec(char **argv)
{
    CHECK(slurp("/proc/self/status") > 0 && strstr(buf, "\nThreads:\t1\n") != 0);
    ssize_t n = slurp("/proc/self/environ");
    CHECK(n == (ssize_t)sizeof "AFTER=exec" && strcmp(buf, "AFTER=exec") == 0);
    n = slurp("/proc/self/cmdline");
    CHECK(n > 0 && strcmp(buf, argv[0]) == 0 && strcmp(buf + strlen(argv[0]) + 1, "--after-exec") == 0);
    n = slurp("/proc/self/auxv");
    int found = 0;
    for (unsigned long *a = (unsigned long *)buf; (char *)a < buf + n && a[0]; a += 2)
        if (a[0] == AT_ENTRY && a[1] == getauxval(AT_ENTRY))
            found = 1;
    CHECK(found);
    return report();
}

static void *parked(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--after-exec") == 0)
        return after_exec(argv);
    if (argc < 4)
        return 2;
    const char *dir = argv[1];
    unsigned long data = strtoul(argv[2], 0, 0), base = strtoul(argv[3], 0, 0);
    char p[512], q[512];
    int pid = getpid(), tid = (int)syscall(SYS_gettid);

    /* Absolute spellings. */
    maps_at("/proc/self/maps");
    snprintf(p, sizeof p, "/proc/%d/maps", pid);
    maps_at(p);
    maps_at("//proc/self/maps");
    maps_at("/proc//self/maps");
    maps_at("/proc/./self/maps");
    maps_at("/proc/self/./maps");
    maps_at("/proc/../proc/self/maps");
    maps_at("/./proc/self/maps");
    maps_at("/proc/thread-self/maps");
    snprintf(p, sizeof p, "/proc/self/task/%d/maps", tid);
    maps_at(p);
    snprintf(p, sizeof p, "/proc/%d/task/%d/maps", pid, tid);
    maps_at(p);
    snprintf(p, sizeof p, "/proc/self/task/%d/../../maps", tid);
    maps_at(p);
    maps_at("/proc/self/root/proc/self/maps");
    maps_at("/proc/self/fd/../maps");
    maps_at("/dev/fd/../maps");

    /* Through symlinks of the guest's own. */
    snprintf(p, sizeof p, "%s/link", dir);
    CHECK(symlink("/proc", p) == 0);
    snprintf(p, sizeof p, "%s/link/self/maps", dir);
    maps_at(p);
    snprintf(p, sizeof p, "%s/link2", dir);
    CHECK(symlink("/proc/self", p) == 0);
    snprintf(p, sizeof p, "%s/link2/maps", dir);
    maps_at(p);
    snprintf(p, sizeof p, "%s/rel", dir);
    snprintf(q, sizeof q, "%.*s", 400, "../../../../../../../../../../../../../../../proc/self");
    CHECK(symlink(q, p) == 0);
    snprintf(p, sizeof p, "%s/rel/maps", dir);
    maps_at(p);

    /* Relative to directory fds. */
    int procfd = open("/proc", O_RDONLY | O_DIRECTORY);
    CHECK(procfd >= 0);
    maps_fd(openat(procfd, "self/maps", O_RDONLY), "openat(fd of /proc, \"self/maps\")");
    int selffd = open("/proc/self", O_RDONLY | O_DIRECTORY);
    CHECK(selffd >= 0);
    maps_fd(openat(selffd, "maps", O_RDONLY), "openat(fd of /proc/self, \"maps\")");
    int fddir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    maps_fd(openat(fddir, "../maps", O_RDONLY), "openat(fd of /proc/self/fd, \"../maps\")");
    close(fddir);
    int rootfd = open("/", O_RDONLY | O_DIRECTORY);
    maps_fd(openat(rootfd, "proc/self/maps", O_RDONLY), "openat(fd of /, \"proc/self/maps\")");
    close(rootfd);

    /* Relative to the cwd. */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != 0);
    CHECK(chdir("/proc/self") == 0);
    maps_fd(open("maps", O_RDONLY), "chdir(\"/proc/self\") + open(\"maps\")");
    CHECK(chdir("/proc") == 0);
    maps_fd(open("self/maps", O_RDONLY), "chdir(\"/proc\") + open(\"self/maps\")");
    CHECK(fchdir(selffd) == 0);
    maps_fd(open("maps", O_RDONLY), "fchdir(fd of /proc/self) + open(\"maps\")");
    CHECK(chdir("/") == 0);
    maps_fd(open("proc/self/maps", O_RDONLY), "chdir(\"/\") + open(\"proc/self/maps\")");
    CHECK(chdir(dir) == 0);
    maps_at("/proc/self/cwd/link/self/maps");
    CHECK(chdir(cwd) == 0);
    close(procfd);

    /* The fd directory lists exactly the guest's fds. */
    int max, n = count_dir("/proc/self/fd", &max);
    /* 0, 1, 2, selffd and the directory being listed. */
    CHECK(n == 5);
    n = count_dir("/dev/fd", &max);
    CHECK(n == 5);
    n = count_dir("/proc/self/fdinfo", &max);
    CHECK(n == 5);

    /* Magic links: readlink names the guest's object, open reopens it. */
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    char lnk[256] = {0}, want[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", pfd[1]);
    CHECK(readlink(p, lnk, sizeof lnk - 1) > 0 && strncmp(lnk, "pipe:[", 6) == 0);
    int w2 = open(p, O_WRONLY);
    CHECK(w2 >= 0 && write(w2, "hi", 2) == 2);
    CHECK(read(pfd[0], want, 2) == 2 && memcmp(want, "hi", 2) == 0);
    close(w2);
    snprintf(p, sizeof p, "/dev/fd/%d", pfd[1]);
    w2 = open(p, O_WRONLY);
    CHECK(w2 >= 0 && write(w2, "yo", 2) == 2);
    CHECK(read(pfd[0], want, 2) == 2 && memcmp(want, "yo", 2) == 0);
    close(w2);

    snprintf(p, sizeof p, "%s/file", dir);
    int f = open(p, O_RDWR | O_CREAT, 0644);
    CHECK(f >= 0 && write(f, "content", 7) == 7);
    snprintf(q, sizeof q, "/proc/self/fd/%d", f);
    memset(lnk, 0, sizeof lnk);
    CHECK(readlink(q, lnk, sizeof lnk - 1) > 0 && strcmp(lnk, p) == 0);
    CHECK(slurp(q) == 7 && strcmp(buf, "content") == 0);
    snprintf(q, sizeof q, "/dev/fd/%d", f);
    CHECK(slurp(q) == 7 && strcmp(buf, "content") == 0);
    snprintf(q, sizeof q, "/proc/self/fd/%d", f);
    CHECK(chmod(q, 0600) == 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(lstat(q, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat(q, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 7);
    snprintf(q, sizeof q, "/proc/self/fdinfo/%d", f);
    CHECK(slurp(q) > 0 && strstr(buf, "pos:\t7") != 0);
    /* A directory fd: its link leads into it. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    snprintf(q, sizeof q, "/proc/self/fd/%d/file", dfd);
    CHECK(slurp(q) == 7);
    snprintf(q, sizeof q, "/proc/self/fd/%d", dfd);
    DIR *dd = opendir(q);
    int seen = 0;
    struct dirent *de;
    while (dd && (de = readdir(dd)))
        seen += strcmp(de->d_name, "file") == 0;
    CHECK(dd && seen == 1);
    if (dd)
        closedir(dd);
    close(dfd);
    snprintf(q, sizeof q, "/proc/self/fd/%d", 900);
    CHECK_ERR(open(q, O_RDONLY), ENOENT);
    CHECK(dup2(f, 0) == 0);
    CHECK(slurp("/dev/stdin") == 7 && strcmp(buf, "content") == 0);

    /* exe, cwd, root. */
    char exe1[512] = {0}, exe2[512] = {0};
    CHECK(readlink("/proc/self/exe", exe1, sizeof exe1 - 1) > 0);
    CHECK(readlink("//proc/./self/exe", exe2, sizeof exe2 - 1) > 0 && strcmp(exe1, exe2) == 0);
    CHECK(exe1[0] == '/' && strstr(exe1, "procself") != 0);
    memset(lnk, 0, sizeof lnk);
    CHECK(readlink("/proc/self/cwd", lnk, sizeof lnk - 1) > 0 && strcmp(lnk, cwd) == 0);
    memset(lnk, 0, sizeof lnk);
    CHECK(readlink("/proc/self/root", lnk, sizeof lnk - 1) == 1 && lnk[0] == '/');
    memset(lnk, 0, sizeof lnk);
    snprintf(want, sizeof want, "%d/task/%d", pid, tid);
    CHECK(readlink("/proc/thread-self", lnk, sizeof lnk - 1) > 0 && strcmp(lnk, want) == 0);

    /* status, stat, statm, comm, cmdline, environ, auxv, task. */
    CHECK(slurp("/proc/self/status") > 0 && strstr(buf, "Name:\tprocself\n") != 0);
    snprintf(want, sizeof want, "\nPid:\t%d\n", pid);
    CHECK(strstr(buf, want) != 0);
    CHECK(strstr(buf, "\nThreads:\t1\n") != 0);
    snprintf(want, sizeof want, "%d (procself) ", pid);
    CHECK(slurp("/proc/self/stat") > 0 && strncmp(buf, want, strlen(want)) == 0);
    CHECK(slurp("/proc/self/statm") > 0);
    /* smaps: each maps line followed by its figures (Linux 6.x layout), the last one
     * VmFlags; smaps_rollup: one [rollup] line and the sums. */
    static char mapsbuf[1 << 16];
    ssize_t mn = slurp("/proc/self/maps");
    CHECK(mn > 0 && mn < (ssize_t)sizeof mapsbuf);
    memcpy(mapsbuf, buf, mn > 0 ? mn : 0);
    mapsbuf[mn > 0 ? mn : 0] = 0;
    int maps_lines = 0;
    for (char *c = mapsbuf; *c; c++)
        maps_lines += *c == '\n';
    CHECK(slurp("/proc/self/smaps") > 0 && strncmp(buf, mapsbuf, strchr(mapsbuf, '\n') - mapsbuf + 1) == 0);
    int vmflags = 0, rss = 0;
    for (char *c = buf; (c = strstr(c, "\nVmFlags: ")); c++)
        vmflags++;
    for (char *c = buf; (c = strstr(c, "\nRss: ")); c++)
        rss++;
    CHECK(vmflags == maps_lines && rss == maps_lines);
    CHECK(strstr(buf, "\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\nRss:") != 0);
    CHECK(strstr(buf, "elfuse") == 0);
    CHECK(slurp("/proc/self/smaps_rollup") > 0 && strstr(buf, " [rollup]\nRss: ") != 0 &&
          strstr(buf, "\nPss_Anon: ") != 0 && strstr(buf, "\nLocked: ") != 0);
    CHECK(slurp("/proc/self/comm") > 0 && strcmp(buf, "procself\n") == 0);
    ssize_t cl = slurp("/proc/self/cmdline");
    CHECK(cl > 0 && strcmp(buf, argv[0]) == 0 && strcmp(buf + strlen(argv[0]) + 1, dir) == 0);
    CHECK(slurp("/proc/self/environ") >= 0 && strstr(buf, "elfuse") == 0);
    CHECK(slurp("/proc/self/auxv") > 0);
    CHECK(slurp("/proc/self/pagemap") < 0);
    int tfd[2];
    CHECK(pipe(tfd) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, 0, idle_thread, tfd) == 0);
    n = count_dir("/proc/self/task", &max);
    CHECK(n == 2);
    CHECK(slurp("/proc/self/status") > 0 && strstr(buf, "\nThreads:\t2\n") != 0);
    CHECK(write(tfd[1], "x", 1) == 1);
    pthread_join(th, 0);
    /* (The joined thread may linger in task/ for a moment, on Linux too.) */
    snprintf(p, sizeof p, "/proc/self/task/%d/status", tid);
    snprintf(want, sizeof want, "\nPid:\t%d\n", tid);
    CHECK(slurp(p) > 0 && strstr(buf, want) != 0);

    /* mem: the guest's memory only. */
    static volatile long cell = 1234;
    long v = 0;
    int m = open("/proc/self/mem", O_RDWR);
    CHECK(m >= 0);
    CHECK(pread(m, &v, sizeof v, (off_t)(uintptr_t)&cell) == sizeof v && v == 1234);
    v = 5678;
    CHECK(pwrite(m, &v, sizeof v, (off_t)(uintptr_t)&cell) == sizeof v && cell == 5678);
    CHECK(lseek(m, (off_t)(uintptr_t)&cell, SEEK_SET) == (off_t)(uintptr_t)&cell);
    CHECK(read(m, &v, sizeof v) == sizeof v && v == 5678);
    CHECK_ERR(pread(m, &v, sizeof v, (off_t)data), EIO);
    CHECK_ERR(pread(m, &v, sizeof v, (off_t)base), EIO);
    CHECK_ERR(pwrite(m, &v, sizeof v, (off_t)data), EIO);
    snprintf(p, sizeof p, "/proc/%d/task/%d/mem", pid, tid);
    int m2 = open(p, O_RDONLY);
    CHECK(m2 >= 0 && pread(m2, &v, sizeof v, (off_t)(uintptr_t)&cell) == sizeof v && v == 5678);
    close(m2);
    close(m);

    /* process_vm_readv/writev on itself: the guest's memory, the reserve refused. */
    long lv = 0;
    struct iovec l = {&lv, sizeof lv}, r = {(void *)&cell, sizeof cell};
    CHECK(process_vm_readv(pid, &l, 1, &r, 1, 0) == sizeof lv && lv == 5678);
    lv = 91;
    CHECK(process_vm_writev(pid, &l, 1, &r, 1, 0) == sizeof lv && cell == 91);
    struct iovec bad = {(void *)data, sizeof lv};
    CHECK_ERR(process_vm_readv(pid, &l, 1, &bad, 1, 0), EFAULT);
    CHECK_ERR(process_vm_writev(pid, &l, 1, &bad, 1, 0), EFAULT);
    bad.iov_base = (void *)base;
    CHECK_ERR(process_vm_readv(pid, &l, 1, &bad, 1, 0), EFAULT);
    CHECK(cell == 91);

    /* execve from a process with two threads: the new image sees itself only. */
    pthread_t pk;
    CHECK(pthread_create(&pk, 0, parked, 0) == 0);
    char *nargv[] = {argv[0], "--after-exec", 0};
    char *nenv[] = {"AFTER=exec", 0};
    fflush(stdout);
    execve("/proc/self/exe", nargv, nenv);
    CHECK(!"execve returned");
    return report();
}
