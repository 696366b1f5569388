/* pty: a pseudo-terminal pair from /dev/ptmx: posix_openpt, grantpt, unlockpt, ptsname
 * (TIOCGPTN, TIOCSPTLCK), the slave opened by name and by TIOCGPTPEER, termios and
 * window size, data both ways through the line discipline; then job control on the
 * slave in a child: setsid, TIOCSCTTY, the foreground group (tcsetpgrp/tcgetpgrp with
 * the child's pgid, tcgetsid), SIGWINCH to the foreground group on a new size, ^C on
 * the master as SIGINT to it, and SIGHUP to the session when the master closes.
 * `pty strict` adds the checks qemu-user 7.2 fails (TIOCGPTLCK). */
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif

#define T(c, what) check_((c) != 0, what, __LINE__)

static volatile sig_atomic_t got_winch, got_int;
static void on_winch(int s) { (void)s; got_winch++; }
static void on_int(int s) { (void)s; got_int++; }

/* Reads from fd until `want` was seen or 2 s passed; true if seen. */
static int read_until(int fd, const char *want)
{
    char buf[512];
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(fd, &r);
        struct timeval tv = {0, 10000};
        if (select(fd + 1, &r, 0, 0, &tv) > 0) {
            ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
            if (k <= 0)
                return 0;
            n += k;
            buf[n] = 0;
            if (strstr(buf, want))
                return 1;
        }
    }
    return 0;
}

/* The child: a session leader with the slave as its controlling terminal. Its exit
 * status counts the failed steps. */
static int child(const char *name)
{
    int bad = 0;
    signal(SIGWINCH, on_winch);
    signal(SIGINT, on_int);
    if (setsid() != getpid())
        bad |= 1;
    int s = open(name, O_RDWR);
    if (s < 0)
        return 99;
    if (ioctl(s, TIOCSCTTY, 0) != 0)
        bad |= 2;
    if (tcgetpgrp(s) != getpgrp())
        bad |= 4;
    if (tcgetsid(s) != getsid(0))
        bad |= 8;
    if (tcsetpgrp(s, getpgrp()) != 0)
        bad |= 16;
    int tty = open("/dev/tty", O_RDWR);
    if (tty < 0)
        bad |= 32;
    else
        close(tty);
    write(s, "ready\n", 6);
    /* The parent now sets a new size (SIGWINCH) and types ^C (SIGINT). */
    for (int i = 0; i < 300 && !(got_winch && got_int); i++)
        usleep(10000);
    if (!got_winch)
        bad |= 64;
    if (!got_int)
        bad |= 128;
    struct winsize ws;
    if (ioctl(s, TIOCGWINSZ, &ws) != 0 || ws.ws_row != 40 || ws.ws_col != 100)
        bad |= 16 | 1;
    write(s, "done\n", 5);
    return bad & 0xff;
}

int main(int argc, char **argv)
{
    int strict = argc > 1 && strcmp(argv[1], "strict") == 0;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    T(m >= 0, "posix_openpt");
    T(grantpt(m) == 0, "grantpt");
    T(unlockpt(m) == 0, "unlockpt");
    char *name = ptsname(m);
    T(name && strncmp(name, "/dev/pts/", 9) == 0, "ptsname is /dev/pts/N");
    unsigned n = 99999;
    T(ioctl(m, TIOCGPTN, &n) == 0 && n != 99999, "TIOCGPTN");
    if (strict) {
        /* qemu-user 7.2 has no TIOCGPTLCK (ENOSYS). */
        int lock = 1;
        T(ioctl(m, TIOCGPTLCK, &lock) == 0 && lock == 0, "TIOCGPTLCK after unlockpt: 0");
    }
    int s = open(name, O_RDWR | O_NOCTTY);
    T(s >= 0, "open the slave by name");
    T(isatty(s) && isatty(m), "both ends are terminals");
    char tn[64] = "";
    T(ttyname_r(s, tn, sizeof tn) == 0 && strcmp(tn, name) == 0, "ttyname of the slave");
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    T(peer >= 0, "TIOCGPTPEER opens the slave");
    T(fcntl(peer, F_GETFD) == FD_CLOEXEC, "TIOCGPTPEER honours O_CLOEXEC");
    struct stat a, b;
    T(fstat(peer, &a) == 0 && fstat(s, &b) == 0 && a.st_rdev == b.st_rdev,
      "the peer is the same slave");
    close(peer);

    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    T(ioctl(m, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ on the master");
    struct winsize got = {0};
    T(ioctl(s, TIOCGWINSZ, &got) == 0 && got.ws_row == 24 && got.ws_col == 80,
      "TIOCGWINSZ on the slave sees it");

    struct termios t;
    T(tcgetattr(s, &t) == 0, "tcgetattr");
    T((t.c_lflag & ICANON) && (t.c_lflag & ECHO), "a new slave is canonical with echo");
    T(write(m, "abc\n", 4) == 4, "type a line on the master");
    char buf[64] = "";
    T(read(s, buf, sizeof buf) == 4 && memcmp(buf, "abc\n", 4) == 0, "the slave reads the line");
    T(read_until(m, "abc"), "the master sees the echo");
    cfmakeraw(&t);
    T(tcsetattr(s, TCSANOW, &t) == 0, "tcsetattr raw");
    struct termios t2;
    T(tcgetattr(s, &t2) == 0 && !(t2.c_lflag & ICANON) && !(t2.c_lflag & ECHO),
      "raw mode reads back");
    T(write(s, "out", 3) == 3 && read_until(m, "out"), "slave output reaches the master");
    T(tcflush(s, TCIOFLUSH) == 0, "tcflush");
    T(tcdrain(s) == 0, "tcdrain");
    int q = -1;
    T(ioctl(s, TIOCOUTQ, &q) == 0 && q >= 0, "TIOCOUTQ");
    T(ioctl(s, TIOCSCTTY, 0) == -1, "TIOCSCTTY outside a session leader fails");
    /* The slave stays open here: with no slave open, the master reads EIO. */
    t.c_lflag |= ICANON | ECHO | ISIG;
    tcsetattr(s, TCSANOW, &t);

    /* Job control in a child session. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(m);
        close(s);
        _exit(child(name));
    }
    T(read_until(m, "ready"), "the child took the slave as its terminal");
    ws.ws_row = 40;
    ws.ws_col = 100;
    T(ioctl(m, TIOCSWINSZ, &ws) == 0, "a new size on the master");
    T(write(m, "\003", 1) == 1, "^C on the master");
    T(read_until(m, "done"), "the child got through");
    int st = 0;
    T(waitpid(pid, &st, 0) == pid, "waitpid");
    T(WIFEXITED(st) && (WEXITSTATUS(st) & ~64) == 0,
      "setsid, TIOCSCTTY, tcgetpgrp, tcgetsid, tcsetpgrp, /dev/tty in the child");
    T(WIFEXITED(st) && !(WEXITSTATUS(st) & 64), "SIGWINCH reached the foreground group");
    if (WIFEXITED(st) && WEXITSTATUS(st))
        printf("child status %d\n", WEXITSTATUS(st));

    /* Hang-up: a session leader's terminal whose master closes sends it SIGHUP. */
    int m2 = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(m2);
    unlockpt(m2);
    char name2[64];
    snprintf(name2, sizeof name2, "%s", ptsname(m2));
    int p[2];
    pipe(p);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        close(m2);
        close(m);
        close(s);
        setsid();
        int s2 = open(name2, O_RDWR);
        ioctl(s2, TIOCSCTTY, 0);
        write(p[1], "x", 1);
        pause();
        _exit(0);
    }
    close(p[1]);
    char c;
    T(read(p[0], &c, 1) == 1, "the second child has its terminal");
    close(m2);
    T(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGHUP,
      "closing the master hangs up the session leader (SIGHUP)");
    close(s);
    close(m);
    return report();
}
