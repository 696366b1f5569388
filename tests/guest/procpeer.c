/* Another guest process's /proc/<pid>, memory and fds: a fork child (and, from the
 * child, its parent) as Linux shows them. The child reads its own /proc/self files and
 * sends them to the parent, which must find the same under /proc/<child> however it is
 * spelled: the child's mappings, fds, threads, name, command line, links; its memory
 * through process_vm_readv/writev and /proc/<child>/mem (the reserved region refused);
 * its fd through pidfd_getfd. Once the child is reaped its /proc/<pid> is gone.
 * elfuse-only: qemu-aarch64 7.2 shows the host's entries of the other process (qemu's
 * own maps, fds and threads).
 *
 *   procpeer DIR DATA   DIR: a scratch directory; DATA: an address in the reserved region
 *
 * Spellings of the child's maps tried (each must equal the child's /proc/self/maps):
 *   /proc/<c>/maps  //proc/<c>/maps  /proc/./<c>/maps  /proc/<c>/./maps
 *   /proc/../proc/<c>/maps  /proc/<c>/task/<c>/maps  /proc/<c>/fd/../maps
 *   /proc/<c>/task/<c>/../../maps  DIR/plink/maps (DIR/plink -> /proc/<c>)
 *   openat(fd of /proc, "<c>/maps")  openat(fd of /proc/<c>, "maps")
 *   openat(fd of /proc/<c>/task, "<c>/maps")  chdir("/proc/<c>") + open("maps")
 *   fchdir(fd of /proc/<c>) + open("maps")  /proc/self/root/proc/<c>/maps
 *   /proc/<c>/root/proc/<c>/maps  /proc/<c>/cwd/plink/maps (the child's cwd is DIR)
 *   /proc/self/fd/<fd of /proc/<c>>/maps
 */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_kcmp
#define SYS_kcmp 272
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

static char buf[1 << 18];
static char own[1 << 18];
static volatile unsigned long secret = 0x1111;

static ssize_t slurp_fd(int fd, char *to, size_t cap)
{
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, to + n, cap - 1 - n)) > 0)
        n += r;
    close(fd);
    to[n] = 0;
    return r < 0 ? -1 : (ssize_t)n;
}

static ssize_t slurp(const char *p) { return slurp_fd(open(p, O_RDONLY), buf, sizeof buf); }

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= r;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= r;
    }
    return 0;
}

/* A message: length, then bytes. */
static void send_msg(int fd, const char *p, size_t n)
{
    uint32_t len = n;
    write_all(fd, &len, 4);
    write_all(fd, p, n);
}

static ssize_t recv_msg(int fd, char *to, size_t cap)
{
    uint32_t len;
    if (read_all(fd, &len, 4) || len >= cap || read_all(fd, to, len))
        return -1;
    to[len] = 0;
    return len;
}

static char names[64][32];

/* `n` names, sorted, one per line. */
static ssize_t joined(int n, char *to, size_t cap)
{
    qsort(names, n, 32, (int (*)(const void *, const void *))strcmp);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += snprintf(to + len, cap - len, "%s\n", names[i]);
    return len;
}

/* The names in directory `p`, sorted, one per line, without . and .. */
static ssize_t listing(const char *p, char *to, size_t cap)
{
    DIR *d = opendir(p);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(names[n++], 32, "%s", e->d_name);
    }
    closedir(d);
    return joined(n, to, cap);
}

/* The open fds below 64, as `listing` shows a /proc/<pid>/fd not being read. */
static ssize_t open_fds(char *to, size_t cap)
{
    int n = 0;
    for (int i = 0; i < 64; i++)
        if (fcntl(i, F_GETFD) >= 0)
            snprintf(names[n++], 32, "%d", i);
    return joined(n, to, cap);
}

/* The value of `key:` in a status text. */
static const char *field(const char *text, const char *key, char *out)
{
    char k[64];
    snprintf(k, sizeof k, "\n%s:", key);
    const char *p = strncmp(text, k + 1, strlen(k + 1)) == 0 ? text - 1 : strstr(text, k);
    if (!p) {
        strcpy(out, "?");
        return out;
    }
    p += strlen(k);
    size_t n = strcspn(p, "\n");
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

/* The child: set itself apart, report its own view, then serve the parent's checks. */
static int child(int to_parent, int from_parent, const char *dir)
{
    prctl(PR_SET_NAME, "peerkid");
    secret = 0x5eC12e7;
    if (chdir(dir))
        return 1;
    int f = open("peerfile", O_RDWR | O_CREAT | O_TRUNC, 0600);
    write_all(f, "peer file contents", 18);
    dup2(f, 7);
    close(f);
    char parent[32];
    snprintf(parent, sizeof parent, "/proc/%d/status", (int)getppid());
    /* The parent's status as the child sees it. */
    ssize_t n = slurp(parent);
    send_msg(to_parent, buf, n < 0 ? 0 : n);
    /* Its own status, cmdline, fds, threads and (last: nothing maps memory after it)
     * maps. */
    n = slurp("/proc/self/status");
    send_msg(to_parent, buf, n < 0 ? 0 : n);
    n = slurp("/proc/self/cmdline");
    send_msg(to_parent, buf, n < 0 ? 0 : n);
    n = open_fds(buf, sizeof buf);
    send_msg(to_parent, buf, n < 0 ? 0 : n);
    n = listing("/proc/self/task", buf, sizeof buf);
    send_msg(to_parent, buf, n < 0 ? 0 : n);
    n = slurp("/proc/self/maps");
    send_msg(to_parent, buf, n < 0 ? 0 : n);
    unsigned long addr = (unsigned long)&secret;
    write_all(to_parent, &addr, sizeof addr);
    /* Wait for the parent's writes, then report what our memory holds. */
    char c;
    if (read(from_parent, &c, 1) != 1)
        return 1;
    unsigned long now = secret;
    write_all(to_parent, &now, sizeof now);
    if (read(from_parent, &c, 1) < 0)
        return 1;
    return 0;
}

static void same_maps(const char *what, ssize_t n)
{
    check_(n > 0 && strcmp(buf, own) == 0 && !strstr(buf, "elfuse"), what, __LINE__);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("usage: procpeer DIR DATA\n");
        return 2;
    }
    const char *dir = argv[1];
    unsigned long data = strtoul(argv[2], 0, 0);
    prctl(PR_SET_NAME, "peerparent");
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        close(up[0]);
        close(down[1]);
        _exit(child(up[1], down[0], dir));
    }
    close(up[1]);
    close(down[0]);
    static char pstatus[8192], cstatus[8192], cmdline[4096], fds[4096], tasks[4096];
    char v[256], w[256], p[512];

    /* The child's view of this process. */
    CHECK(recv_msg(up[0], pstatus, sizeof pstatus) > 0);
    CHECK(strstr(pstatus, "Name:\tpeerparent\n") == pstatus);
    snprintf(w, sizeof w, "\t%d", (int)getpid());
    CHECK(strcmp(field(pstatus, "Pid", v), w) == 0);
    CHECK(strcmp(field(pstatus, "Threads", v), "\t1") == 0);

    CHECK(recv_msg(up[0], cstatus, sizeof cstatus) > 0);
    /* (Empty on the spawn fork path, whose child does not learn where its stack's
     * strings are: the same either way is what is checked here.) */
    ssize_t cmdlen = recv_msg(up[0], cmdline, sizeof cmdline);
    CHECK(cmdlen >= 0);
    CHECK(recv_msg(up[0], fds, sizeof fds) > 0);
    CHECK(recv_msg(up[0], tasks, sizeof tasks) > 0);
    CHECK(recv_msg(up[0], own, sizeof own) > 0);
    unsigned long addr;
    CHECK(read_all(up[0], &addr, sizeof addr) == 0);

    /* Every spelling of the child's maps. */
    snprintf(p, sizeof p, "/proc/%d/maps", c);
    same_maps("/proc/<child>/maps is the child's", slurp(p));
    snprintf(p, sizeof p, "//proc/%d/maps", c);
    same_maps("//proc/<child>/maps", slurp(p));
    snprintf(p, sizeof p, "/proc/./%d/maps", c);
    same_maps("/proc/./<child>/maps", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/./maps", c);
    same_maps("/proc/<child>/./maps", slurp(p));
    snprintf(p, sizeof p, "/proc/../proc/%d/maps", c);
    same_maps("/proc/../proc/<child>/maps", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/task/%d/maps", c, c);
    same_maps("/proc/<child>/task/<child>/maps", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/fd/../maps", c);
    same_maps("/proc/<child>/fd/../maps", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/task/%d/../../maps", c, c);
    same_maps("/proc/<child>/task/<child>/../../maps", slurp(p));
    snprintf(p, sizeof p, "/proc/self/root/proc/%d/maps", c);
    same_maps("/proc/self/root/proc/<child>/maps", slurp(p));
    char link[512], target[64];
    snprintf(link, sizeof link, "%s/plink", dir);
    snprintf(target, sizeof target, "/proc/%d", c);
    CHECK(symlink(target, link) == 0);
    snprintf(p, sizeof p, "%s/plink/maps", dir);
    same_maps("DIR/plink/maps (DIR/plink -> /proc/<child>)", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/root/proc/%d/maps", c, c);
    same_maps("/proc/<child>/root/proc/<child>/maps", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/cwd/plink/maps", c);
    same_maps("/proc/<child>/cwd/plink/maps", slurp(p));
    int procfd = open("/proc", O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof p, "%d/maps", c);
    same_maps("openat(fd of /proc, <child>/maps)",
              slurp_fd(openat(procfd, p, O_RDONLY), buf, sizeof buf));
    snprintf(p, sizeof p, "/proc/%d", c);
    int cfd = open(p, O_RDONLY | O_DIRECTORY);
    CHECK(cfd >= 0);
    same_maps("openat(fd of /proc/<child>, maps)",
              slurp_fd(openat(cfd, "maps", O_RDONLY), buf, sizeof buf));
    snprintf(p, sizeof p, "/proc/self/fd/%d/maps", cfd);
    same_maps("/proc/self/fd/<fd of /proc/<child>>/maps", slurp(p));
    snprintf(p, sizeof p, "/proc/%d/task", c);
    int tfd = open(p, O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof p, "%d/maps", c);
    same_maps("openat(fd of /proc/<child>/task, <child>/maps)",
              slurp_fd(openat(tfd, p, O_RDONLY), buf, sizeof buf));
    close(tfd);
    int here = open(".", O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof p, "/proc/%d", c);
    CHECK(chdir(p) == 0);
    same_maps("chdir(/proc/<child>) + open(maps)", slurp("maps"));
    CHECK(fchdir(procfd) == 0);
    CHECK(fchdir(cfd) == 0);
    same_maps("fchdir(fd of /proc/<child>) + open(maps)", slurp("maps"));
    CHECK(fchdir(here) == 0);
    close(here);
    close(procfd);

    /* status: the child's name, ids, threads and signal dispositions. */
    snprintf(p, sizeof p, "/proc/%d/status", c);
    CHECK(slurp(p) > 0);
    const char *keys[] = {"Name", "Tgid", "Pid", "PPid", "Threads", "SigBlk", "SigIgn", "SigCgt", "Uid"};
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
        char what[128];
        snprintf(what, sizeof what, "/proc/<child>/status %s is the child's", keys[i]);
        check_(strcmp(field(buf, keys[i], v), field(cstatus, keys[i], w)) == 0, what, __LINE__);
    }
    CHECK(!strstr(buf, "elfuse"));
    CHECK(strcmp(field(buf, "Name", v), "\tpeerkid") == 0);
    char name[64];
    field(cstatus, "Name", name);
    snprintf(p, sizeof p, "/proc/%d/stat", c);
    CHECK(slurp(p) > 0);
    snprintf(w, sizeof w, "%d (%s) ", c, name + 1);
    CHECK(strncmp(buf, w, strlen(w)) == 0);
    snprintf(p, sizeof p, "/proc/%d/comm", c);
    snprintf(w, sizeof w, "%s\n", name + 1);
    CHECK(slurp(p) > 0 && strcmp(buf, w) == 0);
    snprintf(p, sizeof p, "/proc/%d/cmdline", c);
    CHECK(slurp(p) == cmdlen && memcmp(buf, cmdline, cmdlen) == 0);

    /* Directories: the child's fds and threads. */
    snprintf(p, sizeof p, "/proc/%d/fd", c);
    CHECK(listing(p, buf, sizeof buf) > 0 && strcmp(buf, fds) == 0);
    CHECK(strstr(fds, "7\n") != 0);
    snprintf(p, sizeof p, "/proc/%d/fdinfo", c);
    CHECK(listing(p, buf, sizeof buf) > 0 && strcmp(buf, fds) == 0);
    snprintf(p, sizeof p, "/proc/%d/task", c);
    CHECK(listing(p, buf, sizeof buf) > 0 && strcmp(buf, tasks) == 0);
    snprintf(w, sizeof w, "%d\n", c);
    CHECK(strcmp(tasks, w) == 0);

    /* Links: the child's fd 7, cwd and program; fd 7 reopens the child's file. */
    char real[512];
    CHECK(realpath(dir, real) != 0);
    snprintf(p, sizeof p, "/proc/%d/fd/7", c);
    ssize_t n = readlink(p, v, sizeof v - 1);
    v[n < 0 ? 0 : n] = 0;
    snprintf(w, sizeof w, "%s/peerfile", real);
    CHECK(n > 0 && strcmp(v, w) == 0);
    CHECK(slurp(p) == 18 && strcmp(buf, "peer file contents") == 0);
    snprintf(p, sizeof p, "/proc/%d/cwd", c);
    n = readlink(p, v, sizeof v - 1);
    v[n < 0 ? 0 : n] = 0;
    CHECK(n > 0 && strcmp(v, real) == 0);
    snprintf(p, sizeof p, "/proc/%d/cwd/peerfile", c);
    CHECK(slurp(p) == 18);
    snprintf(p, sizeof p, "/proc/%d/exe", c);
    n = readlink(p, v, sizeof v - 1);
    v[n < 0 ? 0 : n] = 0;
    ssize_t m = readlink("/proc/self/exe", w, sizeof w - 1);
    w[m < 0 ? 0 : m] = 0;
    CHECK(n > 0 && strcmp(v, w) == 0);
    snprintf(p, sizeof p, "/proc/%d/fd/99", c);
    CHECK_ERR(open(p, O_RDONLY), ENOENT);
    snprintf(p, sizeof p, "/proc/%d/task/1/maps", c);
    CHECK_ERR(open(p, O_RDONLY), ENOENT);

    /* Memory: the child's own value, written and read back; the reserved region is not
     * the child's. */
    unsigned long got = 0;
    struct iovec l = {&got, sizeof got}, r = {(void *)addr, sizeof got};
    CHECK(process_vm_readv(c, &l, 1, &r, 1, 0) == sizeof got && got == 0x5eC12e7);
    CHECK(secret == 0x1111);
    unsigned long put = 0xC0FFEE;
    struct iovec lp = {&put, sizeof put};
    CHECK(process_vm_writev(c, &lp, 1, &r, 1, 0) == sizeof put);
    snprintf(p, sizeof p, "/proc/%d/mem", c);
    int mem = open(p, O_RDWR);
    CHECK(mem >= 0);
    got = 0;
    CHECK(pread(mem, &got, sizeof got, addr) == sizeof got && got == 0xC0FFEE);
    put = 0xC0FFEE + 1;
    CHECK(pwrite(mem, &put, sizeof put, addr) == sizeof put);
    char junk[16];
    CHECK_ERR(pread(mem, junk, sizeof junk, data), EIO);
    close(mem);
    struct iovec rd = {(void *)data, 16}, lj = {junk, 16};
    CHECK_ERR(process_vm_readv(c, &lj, 1, &rd, 1, 0), EFAULT);
    CHECK_ERR(process_vm_writev(c, &lj, 1, &rd, 1, 0), EFAULT);
    CHECK(write(down[1], "x", 1) == 1);
    CHECK(read_all(up[0], &got, sizeof got) == 0 && got == 0xC0FFEE + 1);

    /* pidfd_getfd: the child's fd 7 (same open file description: same offset). */
    int pidfd = syscall(SYS_pidfd_open, c, 0);
    CHECK(pidfd >= 0);
    int f7 = syscall(SYS_pidfd_getfd, pidfd, 7, 0);
    CHECK(f7 >= 0 && lseek(f7, 0, SEEK_CUR) == 18);
    CHECK(pread(f7, buf, 4, 0) == 4 && memcmp(buf, "peer", 4) == 0);
    close(f7);
    CHECK_ERR(syscall(SYS_pidfd_getfd, pidfd, 99, 0), EBADF);
    /* kcmp: stdout is one description shared since the fork; fd 7 is the child's own;
     * each process has its own address space. */
    CHECK(syscall(SYS_kcmp, getpid(), c, 0 /* KCMP_FILE */, 1, 1) == 0);
    long k = syscall(SYS_kcmp, getpid(), c, 0, 1, 7);
    CHECK(k == 1 || k == 2);
    CHECK(syscall(SYS_kcmp, c, getpid(), 0, 7, 1) == 3 - k);
    k = syscall(SYS_kcmp, getpid(), c, 1 /* KCMP_VM */, 0, 0);
    CHECK(k == 1 || k == 2);
    CHECK_ERR(syscall(SYS_kcmp, getpid(), c, 0, 1, 99), EBADF);
    struct iovec page = {(void *)(addr & ~4095UL), 4096};
    CHECK(syscall(SYS_process_madvise, pidfd, &page, 1, MADV_COLD, 0) == 4096);

    /* Exited, not yet reaped: Linux shows the zombie's entry (elfuse: ENOENT, as it
     * cannot tell the guest's any more); never elfuse's. Gone once reaped. */
    CHECK(write(down[1], "x", 1) == 1);
    siginfo_t si;
    CHECK(waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0);
    snprintf(p, sizeof p, "/proc/%d/status", c);
    CHECK(slurp(p) < 0 || !strstr(buf, "elfuse"));
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_ERR(open(p, O_RDONLY), ENOENT);
    CHECK_ERR(process_vm_readv(c, &l, 1, &r, 1, 0), ESRCH);
    CHECK_ERR(syscall(SYS_pidfd_getfd, pidfd, 7, 0), ESRCH);
    close(cfd);
    close(pidfd);
    unlink(link);
    snprintf(p, sizeof p, "%s/peerfile", dir);
    unlink(p);
    return report();
}
