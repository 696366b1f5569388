/* Process identity and resource queries: ids, umask, affinity, sysinfo,
 * rlimits, rusage. Prints no ids or amounts. */
#include "check.h"
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

int main(void)
{
    pid_t pid = getpid();
    CHECK(pid > 0);
    CHECK(getpid() == pid);
    CHECK(syscall(SYS_getpid) == pid);
    CHECK(syscall(SYS_gettid) == pid); /* single-threaded: tid == pid */
    CHECK(getppid() > 0 && getppid() != pid);
    /* Under a PID namespace whose session leader lives outside it (as in
     * CI containers) the session id reads as 0, so only >= 0 is portable. */
    CHECK(getpgid(0) >= 0 && getpgid(pid) == getpgid(0));
    CHECK(getsid(0) >= 0 && getsid(pid) == getsid(0));
    CHECK(getuid() == geteuid());
    CHECK(getgid() == getegid());
    uid_t r, e, s;
    CHECK(getresuid(&r, &e, &s) == 0 && r == getuid() && e == geteuid());
    gid_t gr, ge, gs;
    CHECK(getresgid(&gr, &ge, &gs) == 0 && gr == getgid() && ge == getegid());
    CHECK(getgroups(0, NULL) >= 0);

    /* umask returns the previous mask. */
    mode_t old = umask(027);
    CHECK(umask(0077) == 027);
    CHECK(umask(old) == 0077);

    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    CHECK(CPU_COUNT(&set) >= 1);
    CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 1);

    struct sysinfo si;
    CHECK(sysinfo(&si) == 0);
    CHECK(si.uptime > 0 && si.totalram > 0 && si.mem_unit >= 1 && si.procs > 0);
    CHECK(si.freeram <= si.totalram);

    struct rlimit rl, rl2;
    CHECK(prlimit(0, RLIMIT_NOFILE, NULL, &rl) == 0);
    CHECK(rl.rlim_cur > 0 && rl.rlim_cur <= rl.rlim_max);
    CHECK(getrlimit(RLIMIT_NOFILE, &rl2) == 0 && rl2.rlim_cur == rl.rlim_cur && rl2.rlim_max == rl.rlim_max);
    CHECK(prlimit(0, RLIMIT_STACK, NULL, &rl) == 0);
    CHECK(rl.rlim_cur > 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur <= rl.rlim_max));
    /* Lower the soft NOFILE limit, read it back, restore it. */
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    struct rlimit lower = {64, rl.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &lower) == 0);
    CHECK(getrlimit(RLIMIT_NOFILE, &rl2) == 0 && rl2.rlim_cur == 64);
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    CHECK_ERR(getrlimit(1000, &rl), EINVAL);

    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0);
    return report();
}
