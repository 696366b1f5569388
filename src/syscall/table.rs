//! The syscall table: every AArch64 (asm-generic) syscall number with its name, handler,
//! support status and argument kinds (for `--trace=syscalls`). This is the single source
//! of truth; `elfuse --syscall-table` renders docs/syscalls.md from it.

pub use super::facts::{Facts, Restart, SigPipe};
use super::ipc::{mq, msg, sem, shm};
use super::sfd::{epoll, eventfd, inotify, pidfd, signalfd, timerfd};
use super::{
    aio, clone, cred, execve, files, fs, futex, futex2, handles, io, mem, net, numa, openat2,
    prctl, proc, procvm, rw, sched, seccomp, signal, sigstack, stat, sysadm, time, timer, wait,
    xattr, Ctx, SysResult,
};

pub type Handler = fn(&mut Ctx, [u64; 6]) -> SysResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Implemented with Linux semantics.
    Full,
    /// Implemented; the note says what is missing.
    Partial(&'static str),
    /// Returns -ENOSYS; the note says why (what Linux does there and what programs do
    /// about it).
    Enosys(&'static str),
}

/// How `--trace=syscalls` prints an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    Int,
    Hex,
    Oct,
    Fd,
    /// A directory fd where AT_FDCWD is meaningful.
    Dirfd,
    /// A NUL-terminated string read before the call.
    Str,
    Ptr,
    /// A buffer the guest passes in; its length is the next argument.
    Buf,
    Sig,
    /// A socket address; its length is the next argument.
    Sockaddr,
    /// An address family (AF_*).
    Family,
    /// A socket type word (SOCK_* with its flags).
    SockType,
}

#[derive(Clone, Copy, Debug)]
pub struct SyscallDef {
    pub nr: u64,
    pub name: &'static str,
    pub handler: Option<Handler>,
    pub status: Status,
    pub args: &'static [Arg],
    pub facts: Facts,
}

/// Rows: `nr name(arg kinds) => handler, status` with optional `, fact(value)` (see
/// [`Facts`]), or `nr name: "why"` for -ENOSYS.
macro_rules! syscalls {
    ($( $nr:literal $name:ident $( : $why:literal )? $( ( $($arg:ident),* ) => $handler:path, $status:expr $(, $fact:ident($fv:expr))* )? ; )*) => {
        /// Every syscall number, ascending.
        pub static SYSCALLS: &[SyscallDef] = &[
            $( syscalls!(@def $nr $name $( : $why )? $( ( $($arg),* ) => $handler, $status $(, $fact($fv))* )?), )*
        ];
    };
    (@def $nr:literal $name:ident ( $($arg:ident),* ) => $handler:path, $status:expr $(, $fact:ident($fv:expr))*) => {
        SyscallDef {
            nr: $nr,
            name: stringify!($name),
            handler: Some($handler),
            status: $status,
            args: &[$(Arg::$arg),*],
            facts: Facts::NONE $(.$fact($fv))*,
        }
    };
    (@def $nr:literal $name:ident : $why:literal) => {
        SyscallDef { nr: $nr, name: stringify!($name), handler: None, status: Status::Enosys($why), args: &[], facts: Facts::NONE }
    };
    (@def $nr:literal $name:ident) => {
        SyscallDef { nr: $nr, name: stringify!($name), handler: None, status: Status::Enosys(""), args: &[], facts: Facts::NONE }
    };
}

use Restart::{NoHand, Sys};
use SigPipe::{Always, UnlessNoSignal};
use Status::{Full, Partial};

syscalls! {
    0 io_setup(Int, Ptr) => aio::io_setup, Partial("the guest's completion ring is not the host's: its header lacks AIO_RING_MAGIC, so libaio and fio reap with io_getevents rather than from the ring");
    1 io_destroy(Hex) => aio::io_destroy, Full;
    2 io_submit(Hex, Int, Ptr) => aio::io_submit, Full;
    3 io_cancel(Hex, Ptr, Ptr) => aio::io_cancel, Full;
    4 io_getevents(Hex, Int, Int, Ptr, Ptr) => aio::io_getevents, Full;
    5 setxattr(Str, Str, Ptr, Int, Hex) => xattr::setxattr, Full;
    6 lsetxattr(Str, Str, Ptr, Int, Hex) => xattr::lsetxattr, Full;
    7 fsetxattr(Fd, Str, Ptr, Int, Hex) => xattr::fsetxattr, Full;
    8 getxattr(Str, Str, Ptr, Int) => xattr::getxattr, Full;
    9 lgetxattr(Str, Str, Ptr, Int) => xattr::lgetxattr, Full;
    10 fgetxattr(Fd, Str, Ptr, Int) => xattr::fgetxattr, Full;
    11 listxattr(Str, Ptr, Int) => xattr::listxattr, Full;
    12 llistxattr(Str, Ptr, Int) => xattr::llistxattr, Full;
    13 flistxattr(Fd, Ptr, Int) => xattr::flistxattr, Full;
    14 removexattr(Str, Str) => xattr::removexattr, Full;
    15 lremovexattr(Str, Str) => xattr::lremovexattr, Full;
    16 fremovexattr(Fd, Str) => xattr::fremovexattr, Full;
    17 getcwd(Ptr, Int) => fs::getcwd, Full;
    18 lookup_dcookie: "removed from Linux in 6.9 (it served oprofile), which answers ENOSYS too";
    19 eventfd2(Int, Hex) => eventfd::eventfd2, Full;
    20 epoll_create1(Hex) => epoll::epoll_create1, Full;
    21 epoll_ctl(Fd, Int, Fd, Ptr) => epoll::epoll_ctl, Full;
    22 epoll_pwait(Fd, Ptr, Int, Int, Ptr, Int) => epoll::epoll_pwait, Partial("an unwritable events buffer is EFAULT even when nothing is ready"), restart(NoHand);
    23 dup(Fd) => io::dup, Full;
    24 dup3(Fd, Fd, Hex) => io::dup3, Full;
    25 fcntl(Fd, Int, Hex) => io::fcntl, Partial("F_DUPFD*, F_GETFD/SETFD, F_GETFL/SETFL (O_ASYNC too), locks, pipe sizes, seals, F_SETOWN(_EX)/F_GETOWN(_EX) (thread owners are the guest thread's host thread) and F_SETSIG/F_GETSIG pass to the host, whose SIGIO reaches the guest; an SA_SIGINFO handler's si_fd and si_band are not filled in"), restart(Sys);
    26 inotify_init1(Hex) => inotify::inotify_init1, Full;
    27 inotify_add_watch(Fd, Str, Hex) => inotify::inotify_add_watch, Full;
    28 inotify_rm_watch(Fd, Int) => inotify::inotify_rm_watch, Full;
    29 ioctl(Fd, Hex, Hex) => io::ioctl, Partial("terminals (syscall/tty.rs): TCGETS/TCSETS*, TCGETS2/TCSETS*2, TCGETA/TCSETA*, TIOCGWINSZ/TIOCSWINSZ, TIOCGPGRP/TIOCSPGRP, TIOCSCTTY, TIOCNOTTY, TIOCGSID, TIOCOUTQ, TIOCSTI, TCSBRK(P), TCXONC, TCFLSH, TIOC{EXCL,NXCL,GEXCL}, TIOCM*, TIOC{G,S}SOFTCAR, TIOC{G,S}ETD, TIOC{G,}PKT, TIOCSIG, TIOCVHANGUP, TIOC{G,S}LCKTRMIOS and the pty calls TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER (host terminals: the host kernel keeps the terminal state and its signals; it sends no SIGTTIN/SIGTTOU, blocked on the host: a background read of the controlling terminal is EIO where Linux would stop the process, a background write or tcsetpgrp goes through); FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, FIOASYNC; on sockets SIOCGIFCONF, SIOCGIF{NAME,FLAGS,ADDR,DSTADDR,BRDADDR,NETMASK,METRIC,MTU,HWADDR,INDEX,TXQLEN}, SIOCATMARK, SIOCOUTQ(NSD); others ENOTTY");
    30 ioprio_set(Int, Int, Int) => sched::ioprio_set, Full;
    31 ioprio_get(Int, Int) => sched::ioprio_get, Full;
    32 flock(Fd, Int) => fs::flock, Full, restart(Sys);
    33 mknodat(Dirfd, Str, Oct, Hex) => fs::mknodat, Full;
    34 mkdirat(Dirfd, Str, Oct) => fs::mkdirat, Full;
    35 unlinkat(Dirfd, Str, Hex) => fs::unlinkat, Full;
    36 symlinkat(Str, Dirfd, Str) => fs::symlinkat, Full;
    37 linkat(Dirfd, Str, Dirfd, Str, Hex) => fs::linkat, Full;
    38 renameat(Dirfd, Str, Dirfd, Str) => fs::renameat, Full;
    39 umount2: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    40 mount: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    41 pivot_root: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    42 nfsservctl: "removed from Linux in 3.1, which answers ENOSYS too";
    43 statfs(Str, Ptr) => stat::statfs, Full;
    44 fstatfs(Fd, Ptr) => stat::fstatfs, Full;
    45 truncate(Str, Int) => fs::truncate, Full;
    46 ftruncate(Fd, Int) => fs::ftruncate, Full;
    47 fallocate(Fd, Hex, Int, Int) => fs::fallocate, Full;
    48 faccessat(Dirfd, Str, Oct) => fs::faccessat, Full;
    49 chdir(Str) => fs::chdir, Full;
    50 fchdir(Fd) => fs::fchdir, Full;
    51 chroot(Str) => sysadm::chroot, Partial("the directory becomes the guest's `/` in the path resolver; /proc and /dev inside it stay the host's (as bind mounts), and a working directory outside it is shown by getcwd as its host path");
    52 fchmod(Fd, Oct) => fs::fchmod, Full;
    53 fchmodat(Dirfd, Str, Oct) => fs::fchmodat, Full;
    54 fchownat(Dirfd, Str, Int, Int, Hex) => fs::fchownat, Full;
    55 fchown(Fd, Int, Int) => fs::fchown, Full;
    56 openat(Dirfd, Str, Hex, Oct) => fs::openat, Partial("the guest's own /proc/<pid> has maps, smaps, smaps_rollup, status, stat, statm, cmdline, environ, auxv, comm, mem, fd/, fdinfo/, task/ and the exe/cwd/root links (pagemap and other entries are ENOENT; smaps' dirty/clean split is by anonymous/file); another elfuse process's /proc/<pid> is its guest's, asked of it over the peer channel (an exiting one is ENOENT; a stopped one that cannot answer within 2 s too); a host process that is not elfuse keeps the host's entry"), restart(Sys);
    57 close(Fd) => io::close, Full;
    58 vhangup() => sysadm::vhangup, Full;
    59 pipe2(Ptr, Hex) => io::pipe2, Full;
    60 quotactl: "disk quotas: Linux built without CONFIG_QUOTA answers ENOSYS; quota tools report quotas unsupported";
    61 getdents64(Fd, Ptr, Int) => fs::getdents64, Full;
    62 lseek(Fd, Int, Int) => io::lseek, Full;
    63 read(Fd, Ptr, Int) => rw::read, Full, restart(Sys);
    64 write(Fd, Buf, Int) => rw::write, Full, restart(Sys), sigpipe(Always);
    65 readv(Fd, Ptr, Int) => rw::readv, Full, restart(Sys);
    66 writev(Fd, Ptr, Int) => io::writev, Full, restart(Sys), sigpipe(Always);
    67 pread64(Fd, Ptr, Int, Int) => io::pread64, Full, restart(Sys);
    68 pwrite64(Fd, Buf, Int, Int) => io::pwrite64, Full, restart(Sys);
    69 preadv(Fd, Ptr, Int, Int) => io::preadv, Full, restart(Sys);
    70 pwritev(Fd, Ptr, Int, Int) => io::pwritev, Full, restart(Sys);
    71 sendfile(Fd, Fd, Ptr, Int) => io::sendfile, Full, restart(Sys);
    72 pselect6(Int, Ptr, Ptr, Ptr, Ptr, Ptr) => io::pselect6, Full, restart(NoHand);
    73 ppoll(Ptr, Int, Ptr, Ptr, Int) => io::ppoll, Full, restart(NoHand);
    74 signalfd4(Fd, Ptr, Int, Hex) => signalfd::signalfd4, Partial("every signal the process gets (its own kill/tkill/tgkill, other processes' through the host, timers, SIGCHLD) is read as Linux's signalfd_siginfo; the limit: writev(2) reaches the readiness eventfd underneath instead of failing with EINVAL");
    75 vmsplice(Fd, Ptr, Int, Hex) => files::vmsplice, Full, sigpipe(Always);
    76 splice(Fd, Ptr, Fd, Ptr, Int, Hex) => files::splice, Full, restart(Sys), sigpipe(Always);
    77 tee(Fd, Fd, Int, Hex) => files::tee, Full, restart(Sys), sigpipe(Always);
    78 readlinkat(Dirfd, Str, Ptr, Int) => fs::readlinkat, Partial("/proc/<pid>/fd/N of a synthetic fd (signalfd...) shows the host object's anon_inode name");
    79 newfstatat(Dirfd, Str, Ptr, Hex) => stat::newfstatat, Full;
    80 fstat(Fd, Ptr) => stat::fstat, Full;
    81 sync() => fs::sync, Full;
    82 fsync(Fd) => fs::fsync, Full;
    83 fdatasync(Fd) => fs::fdatasync, Full;
    84 sync_file_range(Fd, Int, Int, Hex) => files::sync_file_range, Full;
    85 timerfd_create(Int, Hex) => timerfd::timerfd_create, Full;
    86 timerfd_settime(Fd, Hex, Ptr, Ptr) => timerfd::timerfd_settime, Full;
    87 timerfd_gettime(Fd, Ptr) => timerfd::timerfd_gettime, Full;
    88 utimensat(Dirfd, Str, Ptr, Hex) => fs::utimensat, Full;
    89 acct(Str) => sysadm::acct, Full;
    90 capget(Ptr, Ptr) => cred::capget, Full;
    91 capset(Ptr, Ptr) => cred::capset, Full;
    92 personality(Hex) => sched::personality, Partial("the persona is recorded and reported; its flags (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC...) change nothing; PER_LINUX32 is EINVAL (no AArch32)");
    93 exit(Int) => proc::exit, Full;
    94 exit_group(Int) => proc::exit_group, Full;
    95 waitid(Int, Int, Ptr, Hex, Ptr) => wait::waitid, Partial("the host's wait on the same children (guest pids are host pids); __WCLONE/__WALL pick children by exit signal as Linux (while a child with another exit signal than SIGCHLD lives, the eligible ones are waited for one by one, polled every 5 ms). Limit: CLD_DUMPED is never reported (children die with RLIMIT_CORE 0)"), restart(Sys);
    96 set_tid_address(Ptr) => proc::set_tid_address, Full;
    97 unshare(Hex) => sysadm::unshare, Partial("namespaces are the host's, unshared for the calling thread's host thread; CLONE_NEWUSER is EINVAL (elfuse's own helper threads make the host process multi-threaded, which Linux refuses); CLONE_FILES and CLONE_FS give the calling thread its own copy of a shared fd table or fs context (no-ops when nothing shares them, as Linux); CLONE_THREAD, CLONE_SIGHAND and CLONE_VM are EINVAL while other threads live (as Linux); CLONE_SYSVSEM is a no-op (undo lists are per process)");
    98 futex(Ptr, Int, Int, Ptr, Ptr, Int) => futex::futex, Partial("PI ops are elfuse's own (Linux's word protocol, EDEADLK/EPERM/ESRCH, handoff, robust owner death) without priority boosting; their handoff and REQUEUE_PI reach waiters of the same process only"), restart(Restart::Futex);
    99 set_robust_list(Ptr, Int) => proc::set_robust_list, Full;
    100 get_robust_list(Int, Ptr, Ptr) => sched::get_robust_list, Partial("the caller's own list; another thread's is EPERM");
    101 nanosleep(Ptr, Ptr) => time::nanosleep, Full;
    102 getitimer(Int, Ptr) => timer::getitimer, Partial("ITIMER_VIRTUAL/PROF count the host process's user/total CPU time (elfuse's own work included), checked at most every millisecond");
    103 setitimer(Int, Ptr, Ptr) => timer::setitimer, Partial("ITIMER_VIRTUAL/PROF count the host process's user/total CPU time (elfuse's own work included), checked at most every millisecond");
    104 kexec_load: "loading a new kernel is not a guest's; Linux built without CONFIG_KEXEC answers ENOSYS";
    105 init_module: "kernel modules: Linux built without CONFIG_MODULES answers ENOSYS; modprobe and insmod report it";
    106 delete_module: "kernel modules: see init_module";
    107 timer_create(Int, Ptr, Ptr) => timer::timer_create, Partial("clocks REALTIME, MONOTONIC, BOOTTIME, TAI, PROCESS_CPUTIME_ID, THREAD_CPUTIME_ID (the caller's host thread); other processes' and threads' CPU clocks are EINVAL, the alarm clocks EOPNOTSUPP");
    108 timer_gettime(Int, Ptr) => timer::timer_gettime, Full;
    109 timer_getoverrun(Int) => timer::timer_getoverrun, Full;
    110 timer_settime(Int, Hex, Ptr, Ptr) => timer::timer_settime, Partial("CPU-clock timers are checked at most every millisecond");
    111 timer_delete(Int) => timer::timer_delete, Full;
    112 clock_settime(Int, Ptr) => sysadm::clock_settime, Full;
    113 clock_gettime(Int, Ptr) => time::clock_gettime, Full;
    114 clock_getres(Int, Ptr) => time::clock_getres, Full;
    115 clock_nanosleep(Int, Hex, Ptr, Ptr) => time::clock_nanosleep, Partial("the process CPU clock is EOPNOTSUPP");
    116 syslog(Int, Ptr, Int) => sysadm::syslog, Full;
    117 ptrace: "no guest process can trace another (debug a guest with elfuse -g and gdb); Linux refuses tracing under Yama or seccomp too, and callers (strace, gdb, anti-debug checks) report it or treat it as no tracer";
    118 sched_setparam(Int, Ptr) => sched::sched_setparam, Full;
    119 sched_setscheduler(Int, Int, Ptr) => sched::sched_setscheduler, Full;
    120 sched_getscheduler(Int) => sched::sched_getscheduler, Full;
    121 sched_getparam(Int, Ptr) => sched::sched_getparam, Full;
    122 sched_setaffinity(Int, Int, Ptr) => sched::sched_setaffinity, Full;
    123 sched_getaffinity(Int, Int, Ptr) => sched::sched_getaffinity, Full;
    124 sched_yield() => proc::sched_yield, Full;
    125 sched_get_priority_max(Int) => sched::sched_get_priority_max, Full;
    126 sched_get_priority_min(Int) => sched::sched_get_priority_min, Full;
    127 sched_rr_get_interval(Int, Ptr) => sched::sched_rr_get_interval, Full;
    128 restart_syscall() => time::restart_syscall, Full;
    129 kill(Int, Sig) => signal::kill, Partial("other processes, groups (0, -pgid, the caller's included) and -1 through the host; between guest processes a signal travels as the host's, so SIGPIPE is dropped and SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS act as on elfuse itself (only the caller's own copy is the guest's)");
    130 tkill(Int, Sig) => signal::tkill, Full;
    131 tgkill(Int, Int, Sig) => signal::tgkill, Partial("a thread of another elfuse process is checked against the host's tasks: a tid naming one of that process's helper threads succeeds and is dropped there");
    132 sigaltstack(Ptr, Ptr) => sigstack::sigaltstack, Full;
    133 rt_sigsuspend(Ptr, Int) => signal::rt_sigsuspend, Full;
    134 rt_sigaction(Sig, Ptr, Ptr, Int) => signal::rt_sigaction, Full;
    135 rt_sigprocmask(Int, Ptr, Ptr, Int) => signal::rt_sigprocmask, Full;
    136 rt_sigpending(Ptr, Int) => signal::rt_sigpending, Full;
    137 rt_sigtimedwait(Ptr, Ptr, Ptr, Int) => signal::rt_sigtimedwait, Full;
    138 rt_sigqueueinfo(Int, Sig, Ptr) => signal::rt_sigqueueinfo, Partial("si_code, si_pid and si_value are kept of the caller's siginfo, si_uid too for this process; a thread of another elfuse process gets the sender's real uid as si_uid");
    139 rt_sigreturn() => signal::rt_sigreturn, Full;
    140 setpriority(Int, Int, Int) => sched::setpriority, Full;
    141 getpriority(Int, Int) => sched::getpriority, Full;
    142 reboot: "rebooting the machine is not a guest's (Linux refuses without CAP_SYS_BOOT); callers report it";
    143 setregid(Int, Int) => cred::setregid, Full;
    144 setgid(Int) => cred::setgid, Full;
    145 setreuid(Int, Int) => cred::setreuid, Full;
    146 setuid(Int) => cred::setuid, Full;
    147 setresuid(Int, Int, Int) => cred::setresuid, Full;
    148 getresuid(Ptr, Ptr, Ptr) => cred::getresuid, Full;
    149 setresgid(Int, Int, Int) => cred::setresgid, Full;
    150 getresgid(Ptr, Ptr, Ptr) => cred::getresgid, Full;
    151 setfsuid(Int) => cred::setfsuid, Full;
    152 setfsgid(Int) => cred::setfsgid, Full;
    153 times(Ptr) => sched::times, Full;
    154 setpgid(Int, Int) => proc::setpgid, Partial("under the spawn fork path (ELFUSE_FORK=spawn, the macOS path) a parent cannot move a child that is already running: the child is an exec'd host process (EACCES); the child's own call works");
    155 getpgid(Int) => proc::getpgid, Full;
    156 getsid(Int) => proc::getsid, Full;
    157 setsid() => proc::setsid, Full;
    158 getgroups(Int, Ptr) => proc::getgroups, Full;
    159 setgroups(Int, Ptr) => cred::setgroups, Full;
    160 uname(Ptr) => proc::uname, Full;
    161 sethostname(Ptr, Int) => sysadm::sethostname, Full;
    162 setdomainname(Ptr, Int) => sysadm::setdomainname, Full;
    163 getrlimit(Int, Ptr) => proc::getrlimit, Full;
    164 setrlimit(Int, Ptr) => proc::setrlimit, Full;
    165 getrusage(Int, Ptr) => proc::getrusage, Full;
    166 umask(Oct) => proc::umask, Full;
    167 prctl(Int, Hex, Hex, Hex, Hex) => prctl::prctl, Partial("NAME, DUMPABLE, TID_ADDRESS, SECCOMP, PDEATHSIG, CHILD_SUBREAPER, NO_NEW_PRIVS, KEEPCAPS, SECUREBITS, CAPBSET_*, CAP_AMBIENT, TIMERSLACK, THP_DISABLE, MCE_KILL, IO_FLUSHER; others (PR_SET_MM, PR_SET_VMA, the arm64 SVE/PAC/tagged-address ones...) EINVAL");
    168 getcpu(Ptr, Ptr, Ptr) => proc::getcpu, Full;
    169 gettimeofday(Ptr, Ptr) => time::gettimeofday, Full;
    170 settimeofday(Ptr, Ptr) => sysadm::settimeofday, Full;
    171 adjtimex(Ptr) => sysadm::adjtimex, Full;
    172 getpid() => proc::getpid, Full;
    173 getppid() => proc::getppid, Full;
    174 getuid() => cred::getuid, Full;
    175 geteuid() => cred::geteuid, Full;
    176 getgid() => cred::getgid, Full;
    177 getegid() => cred::getegid, Full;
    178 gettid() => proc::gettid, Full;
    179 sysinfo(Ptr) => proc::sysinfo, Full;
    180 mq_open(Str, Hex, Oct, Ptr) => mq::mq_open, Full;
    181 mq_unlink(Str) => mq::mq_unlink, Full;
    182 mq_timedsend(Fd, Buf, Int, Int, Ptr) => mq::mq_timedsend, Full;
    183 mq_timedreceive(Fd, Ptr, Int, Ptr, Ptr) => mq::mq_timedreceive, Full;
    184 mq_notify(Fd, Ptr) => mq::mq_notify, Partial("SIGEV_SIGNAL is sent by the host as the host signal of that number: 32 and 33 (the host libc's own) do not reach the guest; SIGEV_THREAD (what glibc and musl use) and SIGEV_NONE as Linux");
    185 mq_getsetattr(Fd, Ptr, Ptr) => mq::mq_getsetattr, Full;
    186 msgget(Int, Oct) => msg::msgget, Full;
    187 msgctl(Int, Int, Ptr) => msg::msgctl, Full;
    188 msgrcv(Int, Ptr, Int, Int, Hex) => msg::msgrcv, Full;
    189 msgsnd(Int, Ptr, Int, Hex) => msg::msgsnd, Full;
    190 semget(Int, Int, Oct) => sem::semget, Full;
    191 semctl(Int, Int, Int, Hex) => sem::semctl, Full;
    192 semtimedop(Int, Ptr, Int, Ptr) => sem::semtimedop, Full;
    193 semop(Int, Ptr, Int) => sem::semop, Full;
    194 shmget(Int, Int, Oct) => shm::shmget, Full;
    195 shmctl(Int, Int, Ptr) => shm::shmctl, Full;
    196 shmat(Int, Ptr, Hex) => shm::shmat, Partial("mapped with the segment's pages over guest memory; pages of a mapping grown past the segment's end by mremap are plain memory, not SIGBUS");
    197 shmdt(Ptr) => shm::shmdt, Full;
    198 socket(Family, SockType, Int) => net::socket, Partial("families AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_ALG, AF_VSOCK (the host's sockets); others EAFNOSUPPORT, as a kernel without them");
    199 socketpair(Family, SockType, Int, Ptr) => net::socketpair, Full;
    200 bind(Fd, Sockaddr, Int) => net::bind, Full;
    201 listen(Fd, Int) => net::listen, Full;
    202 accept(Fd, Ptr, Ptr) => net::accept, Full;
    203 connect(Fd, Sockaddr, Int) => net::connect, Full;
    204 getsockname(Fd, Ptr, Ptr) => net::getsockname, Full;
    205 getpeername(Fd, Ptr, Ptr) => net::getpeername, Full;
    206 sendto(Fd, Buf, Int, Hex, Sockaddr, Int) => net::msg::sendto, Full, sigpipe(UnlessNoSignal(3));
    207 recvfrom(Fd, Ptr, Int, Hex, Ptr, Ptr) => net::msg::recvfrom, Full;
    208 setsockopt(Fd, Int, Int, Ptr, Int) => net::opt::setsockopt, Partial("values are the host's (same layout); eBPF programs cannot exist (bpf is ENOSYS); TCP_ZEROCOPY_RECEIVE is EOPNOTSUPP");
    209 getsockopt(Fd, Int, Int, Ptr, Ptr) => net::opt::getsockopt, Partial("TCP_ZEROCOPY_RECEIVE is EOPNOTSUPP (it maps socket pages at a guest address)");
    210 shutdown(Fd, Int) => net::shutdown, Full;
    211 sendmsg(Fd, Ptr, Hex) => net::msg::sendmsg, Full, sigpipe(UnlessNoSignal(2));
    212 recvmsg(Fd, Ptr, Hex) => net::msg::recvmsg, Full;
    213 readahead(Fd, Int, Int) => files::readahead, Full;
    214 brk(Ptr) => mem::brk, Full;
    215 munmap(Ptr, Int) => mem::munmap, Full;
    216 mremap(Ptr, Int, Int, Hex, Ptr) => mem::mremap, Partial("MREMAP_DONTUNMAP is EINVAL");
    217 add_key: "kernel keyrings: Linux built without CONFIG_KEYS answers ENOSYS; keyutils users (Kerberos, ecryptfs tools) fall back to files or report it";
    218 request_key: "kernel keyrings: see add_key";
    219 keyctl: "kernel keyrings: see add_key";
    220 clone(Hex, Ptr, Ptr, Ptr, Ptr) => clone::clone, Partial("threads (CLONE_VM|CLONE_THREAD|CLONE_SIGHAND; tid = the host thread's tid, so never reused at once; up to 15360 alive), with or without CLONE_FILES and CLONE_FS (a thread's own fd table is a second fd-table actor over a copy; its own cwd, umask and root are its host thread's after a host unshare(CLONE_FS)); processes (fork/vfork) with any exit signal (another than SIGCHLD is sent to the parent at the child's death, 0 none; wait4/waitid then need __WCLONE or __WALL, as Linux); CLONE_PARENT_SETTID, CLONE_CHILD_SETTID, CLONE_CHILD_CLEARTID on both; CLONE_PIDFD for processes. Limits: CLONE_VM without CLONE_THREAD or CLONE_VFORK (a separate process sharing memory) is ENOSYS: a guest process is a host process with its own pid, signal state and shim page, and guest RAM is private to one host process; so is a new process with CLONE_FILES, CLONE_FS, CLONE_SYSVSEM, CLONE_IO, CLONE_PARENT or a new namespace (the host's fork() shares no fd table or fs struct, makes elfuse the parent and no namespace; CLONE_PTRACE and CLONE_UNTRACED change nothing, no guest traces another); a vfork child has its own copy of memory; /proc/PID/fd shows the calling thread's table (Linux: the leader's); a parent ignoring SIGCHLD has every child reaped at once, whatever its exit signal (the host's SIG_IGN), and two children dying at the same instant may reach it as one signal (the host merges SIGCHLDs)");
    221 execve(Str, Ptr, Ptr) => execve::execve, Full;
    222 mmap(Ptr, Int, Hex, Hex, Fd, Int) => mem::mmap, Partial("access past the end of a mapped file raises SIGBUS, checked against the file's size at the access, and a syscall's access there is EFAULT; a private mapping keeps its pages when the file shrinks; a MAP_SHARED one follows a truncation by this process (ftruncate, truncate, O_TRUNC) or another: a guest load or store past an end another process truncated is the host's SIGBUS turned into the guest's (backend::busfault); an instruction fetch there, or another process truncating while elfuse itself copies syscall memory after its size check, still ends elfuse with the host's SIGBUS");
    223 fadvise64(Fd, Int, Int, Int) => fs::fadvise64, Full;
    224 swapon: "swap is the host's; Linux built without CONFIG_SWAP answers ENOSYS";
    225 swapoff: "swap: see swapon";
    226 mprotect(Ptr, Int, Hex) => mem::mprotect, Full;
    227 msync(Ptr, Int, Hex) => mem::msync, Full;
    228 mlock(Ptr, Int) => mem::mlock, Full;
    229 munlock(Ptr, Int) => mem::mlock, Full;
    230 mlockall(Hex) => mem::mlockall, Full;
    231 munlockall() => mem::mlockall, Full;
    232 mincore(Ptr, Int, Ptr) => mem::mincore, Full;
    233 madvise(Ptr, Int, Int) => mem::madvise, Full;
    234 remap_file_pages(Ptr, Int, Hex, Int, Hex) => mem::remap_file_pages, Full;
    235 mbind(Ptr, Int, Int, Ptr, Int, Hex) => sched::mbind, Full;
    236 get_mempolicy(Ptr, Ptr, Int, Ptr, Hex) => sched::get_mempolicy, Full;
    237 set_mempolicy(Int, Ptr, Int) => sched::set_mempolicy, Full;
    238 migrate_pages(Int, Int, Ptr, Ptr) => numa::migrate_pages, Full;
    239 move_pages(Int, Int, Ptr, Ptr, Ptr, Hex) => numa::move_pages, Partial("the calling process's pages; another process's are EPERM (its guest addresses are not the caller's)");
    240 rt_tgsigqueueinfo(Int, Int, Sig, Ptr) => signal::rt_tgsigqueueinfo, Partial("si_code, si_pid and si_value are kept of the caller's siginfo, si_uid too for this process; a thread of another elfuse process gets the sender's real uid as si_uid");
    241 perf_event_open: "performance counters: Linux built without CONFIG_PERF_EVENTS answers ENOSYS (and perf_event_paranoid refuses unprivileged callers); profilers report no counters";
    242 accept4(Fd, Ptr, Ptr, Hex) => net::accept4, Full;
    243 recvmmsg(Fd, Ptr, Int, Hex, Ptr) => net::msg::recvmmsg, Full;
    260 wait4(Int, Ptr, Hex, Ptr) => wait::wait4, Partial("as waitid: __WCLONE/__WALL as Linux. Limit: CLD_DUMPED is never reported (children die with RLIMIT_CORE 0)"), restart(Sys);
    261 prlimit64(Int, Int, Ptr, Ptr) => proc::prlimit64, Partial("own process only (pid 0 or self)");
    262 fanotify_init: "fanotify events carry host fds, which elfuse would have to translate in every read; Linux built without CONFIG_FANOTIFY answers ENOSYS and file watchers fall back to inotify";
    263 fanotify_mark: "see fanotify_init";
    264 name_to_handle_at(Dirfd, Str, Ptr, Ptr, Hex) => handles::name_to_handle_at, Full;
    265 open_by_handle_at(Fd, Ptr, Hex) => handles::open_by_handle_at, Full;
    266 clock_adjtime(Int, Ptr) => sysadm::clock_adjtime, Full;
    267 syncfs(Fd) => files::syncfs, Full;
    268 setns(Fd, Hex) => sysadm::setns, Partial("the host's, for the calling thread's host thread; a user namespace is EINVAL (the host process is multi-threaded)");
    269 sendmmsg(Fd, Ptr, Int, Hex) => net::msg::sendmmsg, Full, sigpipe(UnlessNoSignal(3));
    270 process_vm_readv(Int, Ptr, Int, Ptr, Int, Hex) => procvm::process_vm_readv, Partial("guest memory of this or another elfuse process (asked of it over the peer channel; the reserved region is EFAULT; a stopped one cannot answer: ESRCH after 2 s); a host process that is not elfuse is EPERM");
    271 process_vm_writev(Int, Ptr, Int, Ptr, Int, Hex) => procvm::process_vm_writev, Partial("guest memory of this or another elfuse process (asked of it over the peer channel; the reserved region is EFAULT; a stopped one cannot answer: ESRCH after 2 s); a host process that is not elfuse is EPERM");
    272 kcmp(Int, Int, Int, Int, Int) => sched::kcmp, Partial("tasks of the calling process (threads share every resource) and of another elfuse process (over the peer channel: KCMP_FILE by the host's kcmp of the descriptions, the other resources different, ordered by pid); a host process that is not elfuse is EPERM; KCMP_EPOLL_TFD is EINVAL");
    273 finit_module: "kernel modules: see init_module";
    274 sched_setattr(Int, Ptr, Hex) => sched::sched_setattr, Full;
    275 sched_getattr(Int, Ptr, Int, Hex) => sched::sched_getattr, Full;
    276 renameat2(Dirfd, Str, Dirfd, Str, Hex) => fs::renameat2, Full;
    277 seccomp(Int, Hex, Ptr) => seccomp::seccomp, Partial("strict mode and classic-BPF filters with every action, TSYNC, GET_ACTION_AVAIL; user notification (NEW_LISTENER, GET_NOTIF_SIZES) is EINVAL and USER_NOTIF unavailable, as a Linux before 5.0");
    278 getrandom(Ptr, Int, Hex) => proc::getrandom, Full;
    279 memfd_create(Str, Hex) => files::memfd_create, Full;
    280 bpf: "eBPF programs run in the kernel, not the guest; Linux built without CONFIG_BPF_SYSCALL answers ENOSYS and loaders report it";
    281 execveat(Dirfd, Str, Ptr, Ptr, Hex) => execve::execveat, Full;
    282 userfaultfd: "Linux built without CONFIG_USERFAULTFD refuses it with ENOSYS; its users (CRIU, some garbage collectors) fall back";
    283 membarrier(Int, Int, Int) => clone::membarrier, Partial("this process's threads only; no RSEQ commands");
    284 mlock2(Ptr, Int, Hex) => sched::mlock2, Full;
    285 copy_file_range(Fd, Ptr, Fd, Ptr, Int, Hex) => files::copy_file_range, Full;
    286 preadv2(Fd, Ptr, Int, Int, Int, Hex) => files::preadv2, Full, restart(Sys);
    287 pwritev2(Fd, Ptr, Int, Int, Int, Hex) => files::pwritev2, Full, restart(Sys), sigpipe(Always);
    288 pkey_mprotect(Hex, Int, Hex, Int) => mem::pkey_mprotect, Full;
    289 pkey_alloc(Hex, Hex) => mem::pkey_alloc, Full;
    290 pkey_free(Int) => mem::pkey_free, Full;
    291 statx(Dirfd, Str, Hex, Hex, Ptr) => stat::statx, Full;
    292 io_pgetevents(Hex, Int, Int, Ptr, Ptr, Ptr) => aio::io_pgetevents, Full;
    293 rseq(Ptr, Int, Hex, Hex) => proc::rseq, Partial("registration is recorded; restartable sequences are never aborted (there is no preemption inside the guest that would require it)");
    294 kexec_file_load: "see kexec_load";
    424 pidfd_send_signal(Fd, Sig, Ptr, Hex) => signal::pidfd_send_signal, Full;
    425 io_uring_setup: "io_uring is disabled, as on Linux with kernel.io_uring_disabled=2 or built without it (ENOSYS): liburing users, tokio-uring, QEMU and databases fall back to epoll and thread pools";
    426 io_uring_enter: "io_uring: see io_uring_setup";
    427 io_uring_register: "io_uring: see io_uring_setup";
    428 open_tree: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    429 move_mount: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    430 fsopen: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    431 fsconfig: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    432 fsmount: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    433 fspick: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    434 pidfd_open(Int, Hex) => pidfd::pidfd_open, Full;
    435 clone3(Ptr, Int) => clone::clone3, Partial("threads and processes as clone (exit_signal included), with Linux's argument checks; CLONE_CLEAR_SIGHAND (handled signals back to SIG_DFL in the child, ignored ones stay ignored); CLONE_PIDFD for processes; CLONE_INTO_CGROUP: the host's answer (a cgroup2 directory fd, its cgroup.procs writable; the child is moved there right after it starts). Limit: set_tid is EPERM without CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE as Linux, EEXIST for a taken tid, else ENOSYS: the host picks every tid elfuse gets (a thread is a host thread from std's spawn; a native fork is libc's fork(), whose lock hand-over a raw clone3 with set_tid would skip)");
    436 close_range(Int, Int, Hex) => io::close_range, Full;
    437 openat2(Dirfd, Str, Ptr, Int) => openat2::openat2, Partial("RESOLVE_BENEATH and RESOLVE_IN_ROOT from a directory fd inside the guest's own /proc are EXDEV");
    438 pidfd_getfd(Fd, Fd, Hex) => pidfd::pidfd_getfd, Partial("another elfuse process's guest fd is taken over the peer channel (SCM_RIGHTS), except a description elfuse emulates there (signalfd, an open /proc file of that guest's: EBADF); this process's and a native process's are taken");
    439 faccessat2(Dirfd, Str, Oct, Hex) => fs::faccessat2, Full;
    440 process_madvise(Fd, Ptr, Int, Int, Hex) => pidfd::process_madvise, Partial("this process's ranges take any madvise advice (Linux 6.13); another process's only WILLNEED, COLD, PAGEOUT and COLLAPSE, as on Linux: another elfuse process's are asked of it over the peer channel, a native process's go to the host; a stopped elfuse process cannot answer: ESRCH after 2 s");
    441 epoll_pwait2(Fd, Ptr, Int, Ptr, Ptr, Int) => epoll::epoll_pwait2, Partial("an unwritable events buffer is EFAULT even when nothing is ready"), restart(NoHand);
    442 mount_setattr: "mounts are the host's and are not changed from inside a guest (unprivileged Linux refuses with EPERM; mount tools report the failure)";
    443 quotactl_fd: "disk quotas: see quotactl";
    444 landlock_create_ruleset(Ptr, Int, Hex) => sysadm::landlock, Partial("Landlock is reported not enabled (EOPNOTSUPP), as a kernel booted without it: sandboxing programs detect that and run unsandboxed, as they do there");
    445 landlock_add_rule(Fd, Int, Ptr, Hex) => sysadm::landlock, Partial("EOPNOTSUPP: see landlock_create_ruleset");
    446 landlock_restrict_self(Fd, Hex) => sysadm::landlock, Partial("EOPNOTSUPP: see landlock_create_ruleset");
    447 memfd_secret: "Linux answers ENOSYS unless booted with secretmem enabled; callers fall back to mlocked memory";
    448 process_mrelease(Fd, Hex) => pidfd::process_mrelease, Full;
    449 futex_waitv(Ptr, Int, Hex, Ptr, Int) => futex::futex_waitv, Full, restart(Sys);
    450 set_mempolicy_home_node(Hex, Int, Int, Hex) => numa::set_mempolicy_home_node, Full;
    451 cachestat(Fd, Ptr, Ptr, Hex) => handles::cachestat, Full;
    452 fchmodat2(Dirfd, Str, Oct, Hex) => files::fchmodat2, Full;
    453 map_shadow_stack: "shadow stacks need arm64 GCS, which the guest CPU lacks; arm64 Linux before 6.13 answers ENOSYS and programs run without them";
    454 futex_wake(Ptr, Hex, Int, Hex) => futex2::futex_wake, Partial("FUTEX2_NUMA/FUTEX2_MPOL (Linux 6.16) are EINVAL, as before 6.16");
    455 futex_wait(Ptr, Int, Hex, Hex, Ptr, Int) => futex2::futex_wait, Partial("FUTEX2_NUMA/FUTEX2_MPOL (Linux 6.16) are EINVAL, as before 6.16"), restart(Sys);
    456 futex_requeue(Ptr, Hex, Int, Int) => futex2::futex_requeue, Partial("FUTEX2_NUMA/FUTEX2_MPOL (Linux 6.16) are EINVAL, as before 6.16");
    457 statmount(Ptr, Ptr, Int, Hex) => sysadm::statmount, Partial("the host's mounts (mount points are host paths, also under --sysroot)");
    458 listmount(Ptr, Ptr, Int, Hex) => sysadm::listmount, Full;
    459 lsm_get_self_attr(Int, Ptr, Ptr, Hex) => sysadm::lsm_get_self_attr, Full;
    460 lsm_set_self_attr(Int, Ptr, Int, Hex) => sysadm::lsm_set_self_attr, Full;
    461 lsm_list_modules(Ptr, Ptr, Hex) => sysadm::lsm_list_modules, Full;
    462 mseal: "memory sealing: Linux before 6.10 answers ENOSYS; glibc, Chrome and systemd then run without seals";
}

/// The definition for syscall `nr` (a direct index: this is on every syscall's path).
pub fn lookup(nr: u64) -> Option<&'static SyscallDef> {
    static INDEX: std::sync::OnceLock<Vec<Option<u16>>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let top = SYSCALLS.last().map_or(0, |d| d.nr as usize);
        let mut v = vec![None; top + 1];
        for (i, d) in SYSCALLS.iter().enumerate() {
            v[d.nr as usize] = Some(i as u16);
        }
        v
    });
    let i = (*index.get(usize::try_from(nr).ok()?)?)?;
    Some(&SYSCALLS[usize::from(i)])
}

/// docs/syscalls.md, rendered from the table.
pub fn render_markdown() -> String {
    let mut s = String::from(
        "# Syscalls\n\n\
         Generated from `src/syscall/table.rs` by `elfuse --syscall-table`; do not edit.\n\
         AArch64 Linux (asm-generic) numbers. Unlisted numbers (244–259, 295–423) are \
         unassigned on AArch64 and return -ENOSYS too.\n\n",
    );
    let full = SYSCALLS.iter().filter(|d| d.status == Status::Full).count();
    let partial = SYSCALLS
        .iter()
        .filter(|d| matches!(d.status, Status::Partial(_)))
        .count();
    let enosys = SYSCALLS.len() - full - partial;
    s += &format!(
        "{} numbers: {full} implemented, {partial} partial, {enosys} return -ENOSYS.\n\n",
        SYSCALLS.len()
    );
    s += "| nr | name | status | notes |\n|---:|---|---|---|\n";
    for d in SYSCALLS {
        let (st, note) = match d.status {
            Status::Full => ("implemented", ""),
            Status::Partial(n) => ("partial", n),
            Status::Enosys(why) => ("ENOSYS", why),
        };
        s += &format!("| {} | {} | {} | {} |\n", d.nr, d.name, st, note);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_consistent() {
        for w in SYSCALLS.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} then {}", w[0].name, w[1].name);
        }
        for d in SYSCALLS {
            assert_eq!(
                d.handler.is_none(),
                matches!(d.status, Status::Enosys(_)),
                "{}",
                d.name
            );
        }
        assert_eq!(lookup(64).unwrap().name, "write");
        assert_eq!(lookup(56).unwrap().name, "openat");
        assert_eq!(lookup(293).unwrap().name, "rseq");
        // Facts on the rows (what signal::restart and sigpipe read).
        assert_eq!(lookup(63).unwrap().facts.restart, Restart::Sys);
        assert_eq!(lookup(73).unwrap().facts.restart, Restart::NoHand);
        assert_eq!(lookup(98).unwrap().facts.restart, Restart::Futex);
        assert_eq!(lookup(137).unwrap().facts, Facts::NONE);
        assert_eq!(lookup(64).unwrap().facts.sigpipe, SigPipe::Always);
        assert_eq!(
            lookup(211).unwrap().facts.sigpipe,
            SigPipe::UnlessNoSignal(2)
        );
        assert!(lookup(300).is_none());
    }

    #[test]
    fn docs_are_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/syscalls.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == render_markdown(),
            "docs/syscalls.md is stale: run `cargo run --release -- --syscall-table > docs/syscalls.md`"
        );
    }
}
