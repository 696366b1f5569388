/* ipc [strict]: SysV shared memory, semaphores and message queues, POSIX message
 * queues. Shared memory and semaphores are checked across fork (each side sees the
 * other's writes; a semaphore handshake; SEM_UNDO at the child's exit) and from a second
 * program (fork + exec of this one) that attaches by key. Keys are derived from the pid
 * so that concurrent runs do not meet; nothing printed depends on them.
 * "strict" adds what qemu-user 7.2 does not do: mq_notify, and the segment's line in
 * /proc/self/maps. Internal: "attach KEY" is the exec'd second program. */
#include "check.h"
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096
#ifndef SHM_REMAP
#define SHM_REMAP 040000
#endif
#ifndef SHM_EXEC
#define SHM_EXEC 0100000
#endif
#ifndef MSG_EXCEPT
#define MSG_EXCEPT 020000
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef SHM_DEST
#define SHM_DEST 01000
#endif

union semun_ {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

/* Checks qemu-user 7.2 gets wrong (its shmat/shmdt keep their own view of the address
 * space, its msgctl reports other pids, its mq_open makes the fd close-on-exec), or
 * cannot run (exec of an AArch64 program): elfuse only. */
static int g_strict;
#define SCHECK(cond) do { if (g_strict) CHECK(cond); } while (0)
#define SCHECK_ERR(expr, E) do { if (g_strict) CHECK_ERR(expr, E); } while (0)

static volatile sig_atomic_t g_usr1;
static void on_usr1(int s) { (void)s; g_usr1++; }

static int wait_child(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The second program: attaches the segment by key, checks the first program's bytes and
 * answers in the segment; exit status 0 when all went well. */
static int attach_main(const char *keystr)
{
    key_t key = (key_t)strtoul(keystr, NULL, 16);
    int id = shmget(key, 0, 0);
    if (id < 0)
        return 10;
    char *p = shmat(id, NULL, 0);
    if (p == (void *)-1)
        return 11;
    if (strcmp(p, "from the first program") != 0)
        return 12;
    strcpy(p + 100, "from the second program");
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) != 0 || ds.shm_nattch != 2)
        return 13;
    return shmdt(p) == 0 ? 0 : 14;
}

static void shm_basics(void)
{
    int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    CHECK(id >= 0);
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_segsz == 10000);
    CHECK(ds.shm_nattch == 0);
    CHECK((ds.shm_perm.mode & 0777) == 0600);
    CHECK(ds.shm_cpid == getpid());

    char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    CHECK(((uintptr_t)p & (PG - 1)) == 0);
    CHECK(p[0] == 0 && p[9999] == 0);
    strcpy(p, "segment");
    p[12287] = 'e'; /* the last page is whole */
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_nattch == 1);
    CHECK(ds.shm_lpid == getpid());
    CHECK(ds.shm_atime != 0);

    /* A second attachment of the same segment is the same memory. */
    char *q = shmat(id, NULL, SHM_RDONLY);
    CHECK(q != (void *)-1 && q != p);
    CHECK(strcmp(q, "segment") == 0);
    p[1] = 'E';
    CHECK(q[1] == 'E');
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_nattch == 2);
    /* Read-only attachment: no write permission to gain. */
    CHECK_ERR(mprotect(q, PG, PROT_READ | PROT_WRITE), EACCES);
    CHECK(mprotect(q, PG, PROT_NONE) == 0);
    CHECK(mprotect(q, PG, PROT_READ) == 0);
    CHECK(shmdt(q) == 0);
    CHECK_ERR(shmdt(q), EINVAL);
    CHECK_ERR(shmdt(p + 1), EINVAL);

    /* IPC_SET, then the values back. */
    ds.shm_perm.mode = 0640;
    CHECK(shmctl(id, IPC_SET, &ds) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK((ds.shm_perm.mode & 0777) == 0640);

    /* IPC_RMID while attached: marked, still usable, gone at the last detach. */
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_perm.mode & SHM_DEST);
    CHECK(strcmp(p, "sEgment") == 0);
    CHECK(shmdt(p) == 0);
    CHECK_ERR(shmctl(id, IPC_STAT, &ds), EINVAL);

    /* The limits and the global figures. */
    struct shminfo si;
    CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&si) >= 0);
    CHECK(si.shmmax > 0 && si.shmmni > 0);
    struct shm_info info;
    CHECK(shmctl(0, SHM_INFO, (struct shmid_ds *)&info) >= 0);
    CHECK_ERR(shmctl(-1, IPC_STAT, &ds), EINVAL);
    CHECK_ERR(shmctl(0, 1234, &ds), EINVAL);
    CHECK_ERR(shmat(-1, NULL, 0), EINVAL);
    CHECK_ERR(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600), EINVAL);
}

/* SHM_RND, SHM_REMAP, a chosen address, and shmdt of a partly unmapped attachment. */
static void shm_addresses(void)
{
    int id = shmget(IPC_PRIVATE, 3 * PG, IPC_CREAT | 0600);
    CHECK(id >= 0);
    char *area = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    CHECK(munmap(area, 8 * PG) == 0);

    CHECK_ERR(shmat(id, area + 100, 0), EINVAL);
    char *p = shmat(id, area + 100, SHM_RND);
    CHECK(p == area);
    strcpy(p + 2 * PG, "third page");
    /* Occupied: EINVAL without SHM_REMAP, replaced with it. */
    CHECK_ERR(shmat(id, area + PG, 0), EINVAL);
    SCHECK_ERR(shmat(id, NULL, SHM_REMAP), EINVAL);
    char *r = shmat(id, area + 4 * PG, SHM_REMAP);
    CHECK(r == area + 4 * PG);
    CHECK(strcmp(r + 2 * PG, "third page") == 0);
    CHECK(shmdt(r) == 0);

    /* munmap the middle page: shmdt still takes both pieces. */
    CHECK(munmap(p + PG, PG) == 0);
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    SCHECK(ds.shm_nattch == 2);
    CHECK(strcmp(p + 2 * PG, "third page") == 0);
    CHECK(shmdt(p) == 0);
    unsigned char v;
    CHECK_ERR(mincore(p, PG, &v), ENOMEM);
    CHECK_ERR(mincore(p + 2 * PG, PG, &v), ENOMEM);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    SCHECK(ds.shm_nattch == 0);
    SCHECK_ERR(shmdt(p), EINVAL);

    /* A piece whose first page is gone: shmdt at the attach address finds the rest. */
    p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    CHECK(munmap(p, PG) == 0);
    CHECK(shmdt(p) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    SCHECK(ds.shm_nattch == 0);

    /* mremap moves an attachment along with its contents. */
    p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    char *m = mremap(p, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, area);
    CHECK(m == area);
    CHECK(strcmp(m + 2 * PG, "third page") == 0);
    CHECK(shmdt(m) == 0);
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
}

/* Fork: both sides see each other's writes; a semaphore handshake orders them. */
static void shm_sem_fork(void)
{
    int id = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
    int sem = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    CHECK(id >= 0 && sem >= 0);
    volatile char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    strcpy((char *)p, "parent");
    pid_t pid = fork();
    if (pid == 0) {
        struct shmid_ds ds;
        int bad = strcmp((char *)p, "parent") != 0;
        bad |= shmctl(id, IPC_STAT, &ds) != 0 || ds.shm_nattch != 2;
        strcpy((char *)p + 64, "child");
        struct sembuf post = {0, 1, 0};
        bad |= semop(sem, &post, 1) != 0;
        struct sembuf wait = {1, -1, 0};
        bad |= semop(sem, &wait, 1) != 0;
        bad |= strcmp((char *)p + 128, "parent again") != 0;
        /* Undone when this process exits. */
        struct sembuf undo = {2, 5, SEM_UNDO};
        bad |= semop(sem, &undo, 1) != 0;
        bad |= semctl(sem, 2, GETVAL) != 5;
        _exit(bad);
    }
    struct sembuf wait = {0, -1, 0};
    CHECK(semop(sem, &wait, 1) == 0);
    CHECK(strcmp((char *)p + 64, "child") == 0);
    strcpy((char *)p + 128, "parent again");
    struct sembuf post = {1, 1, 0};
    CHECK(semop(sem, &post, 1) == 0);
    CHECK(wait_child(pid) == 0);
    CHECK(semctl(sem, 2, GETVAL) == 0);
    CHECK(semctl(sem, 1, GETPID) == pid);
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECK(ds.shm_nattch == 1);
    CHECK(shmdt((void *)p) == 0);
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
    CHECK(semctl(sem, 0, IPC_RMID) == 0);
}

/* A second program attaches by key. */
static void shm_exec(const char *self)
{
    key_t key = (key_t)(0x454c0000 ^ (getpid() & 0xffff));
    int id = shmget(key, 2 * PG, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(id >= 0);
    char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    strcpy(p, "from the first program");
    char ks[16];
    snprintf(ks, sizeof ks, "%x", (unsigned)key);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "attach", ks, (char *)NULL);
        _exit(99);
    }
    CHECK(wait_child(pid) == 0);
    CHECK(strcmp(p + 100, "from the second program") == 0);
    CHECK(shmget(key, PG, 0) == id);
    CHECK_ERR(shmget(key, PG, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    CHECK_ERR(shmget(key, 4 * PG, 0), EINVAL);
    CHECK(shmdt(p) == 0);
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
}

static void sems(void)
{
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    CHECK(id >= 0);
    unsigned short in[3] = {1, 2, 3}, out[3] = {0};
    CHECK(semctl(id, 0, SETALL, (union semun_){.array = in}) == 0);
    CHECK(semctl(id, 0, GETALL, (union semun_){.array = out}) == 0);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 3);
    CHECK(semctl(id, 1, GETVAL) == 2);
    CHECK(semctl(id, 1, SETVAL, (union semun_){.val = 7}) == 0);
    CHECK(semctl(id, 1, GETVAL) == 7);
    struct semid_ds ds;
    CHECK(semctl(id, 0, IPC_STAT, (union semun_){.buf = &ds}) == 0);
    CHECK(ds.sem_nsems == 3);
    CHECK((ds.sem_perm.mode & 0777) == 0600);
    CHECK(ds.sem_otime == 0);
    CHECK(ds.sem_ctime != 0);
    ds.sem_perm.mode = 0640;
    CHECK(semctl(id, 0, IPC_SET, (union semun_){.buf = &ds}) == 0);
    CHECK(semctl(id, 0, IPC_STAT, (union semun_){.buf = &ds}) == 0);
    CHECK((ds.sem_perm.mode & 0777) == 0640 && ds.sem_nsems == 3);

    struct sembuf ops[2] = {{0, -1, 0}, {2, 2, 0}};
    CHECK(semop(id, ops, 2) == 0);
    CHECK(semctl(id, 0, GETVAL) == 0 && semctl(id, 2, GETVAL) == 5);
    CHECK(semctl(id, 0, GETPID) == getpid());
    CHECK(semctl(id, 0, IPC_STAT, (union semun_){.buf = &ds}) == 0);
    CHECK(ds.sem_otime != 0);
    struct sembuf take = {0, -1, IPC_NOWAIT};
    CHECK_ERR(semop(id, &take, 1), EAGAIN);
    struct sembuf zero = {1, 0, IPC_NOWAIT};
    CHECK_ERR(semop(id, &zero, 1), EAGAIN);
    struct timespec ts = {0, 10 * 1000 * 1000};
    take.sem_flg = 0;
    CHECK_ERR(semtimedop(id, &take, 1, &ts), EAGAIN);
    struct timespec bad = {0, 2000000000};
    CHECK_ERR(semtimedop(id, &take, 1, &bad), EINVAL);
    CHECK_ERR(semop(id, ops, 0), EINVAL);
    struct sembuf range = {3, 1, 0};
    CHECK_ERR(semop(id, &range, 1), EFBIG);
    CHECK_ERR(semop(id, (struct sembuf *)8, 1), EFAULT);

    struct seminfo si;
    CHECK(semctl(id, 0, IPC_INFO, (union semun_){.__buf = &si}) >= 0);
    CHECK(si.semopm > 0 && si.semmsl > 0);
    {
        int n = si.semopm + 1;
        struct sembuf *many = calloc(n, sizeof *many);
        CHECK_ERR(semop(id, many, n), E2BIG);
        /* E2BIG comes before EFAULT. */
        SCHECK_ERR(semop(id, (struct sembuf *)8, n), E2BIG);
        free(many);
    }
    CHECK(semctl(id, 0, SEM_INFO, (union semun_){.__buf = &si}) >= 0);
    CHECK(semctl(id, 0, GETNCNT) == 0 && semctl(id, 0, GETZCNT) == 0);
    CHECK_ERR(semctl(id, 0, 1234), EINVAL);
    CHECK(semctl(id, 0, IPC_RMID) == 0);
    CHECK_ERR(semctl(id, 0, GETVAL), EINVAL);
}

/* A child keeps signalling until the parent's blocking call gives up with EINTR: the
 * SysV calls are never restarted, SA_RESTART or not. */
static pid_t nagger(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            kill(parent, SIGUSR1);
            usleep(20000);
        }
    }
    return pid;
}

static void stop_nagger(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void interrupted(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);

    int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    pid_t n = nagger();
    struct sembuf take = {0, -1, 0};
    CHECK_ERR(semop(sem, &take, 1), EINTR);
    stop_nagger(n);
    CHECK(g_usr1 > 0);
    semctl(sem, 0, IPC_RMID);

    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct { long type; char text[16]; } m;
    n = nagger();
    CHECK_ERR(msgrcv(q, &m, sizeof m.text, 0, 0), EINTR);
    stop_nagger(n);
    msgctl(q, IPC_RMID, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGUSR1, &sa, NULL);
}

struct msg {
    long type;
    char text[32];
};

static int snd(int q, long type, const char *s)
{
    struct msg m = {type, {0}};
    strcpy(m.text, s);
    return msgsnd(q, &m, strlen(s) + 1, 0);
}

static void msgs(void)
{
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(q >= 0);
    CHECK(snd(q, 3, "three") == 0);
    CHECK(snd(q, 1, "one") == 0);
    CHECK(snd(q, 2, "two") == 0);
    struct msqid_ds ds;
    CHECK(msgctl(q, IPC_STAT, &ds) == 0);
    CHECK(ds.msg_qnum == 3);
    CHECK(ds.msg_cbytes == 6 + 4 + 4);
    CHECK(ds.msg_lspid == getpid());
    CHECK((ds.msg_perm.mode & 0777) == 0600);

    struct msg m;
    CHECK(msgrcv(q, &m, sizeof m.text, 0, 0) == 6);
    CHECK(m.type == 3 && strcmp(m.text, "three") == 0);
    CHECK(msgrcv(q, &m, sizeof m.text, 2, 0) == 4);
    CHECK(m.type == 2 && strcmp(m.text, "two") == 0);
    CHECK(snd(q, 5, "five") == 0);
    CHECK(msgrcv(q, &m, sizeof m.text, -4, 0) == 4);
    CHECK(m.type == 1);
    CHECK(snd(q, 6, "six") == 0);
    CHECK(msgrcv(q, &m, sizeof m.text, 5, MSG_EXCEPT) == 4);
    CHECK(m.type == 6 && strcmp(m.text, "six") == 0);
    /* MSG_COPY: the message at index 0 stays queued. */
    CHECK(msgrcv(q, &m, sizeof m.text, 0, MSG_COPY | IPC_NOWAIT) == 5);
    CHECK(m.type == 5 && strcmp(m.text, "five") == 0);
    CHECK(msgctl(q, IPC_STAT, &ds) == 0 && ds.msg_qnum == 1);
    CHECK_ERR(msgrcv(q, &m, 2, 0, 0), E2BIG);
    CHECK(msgrcv(q, &m, 2, 0, MSG_NOERROR) == 2);
    CHECK(m.type == 5 && m.text[0] == 'f' && m.text[1] == 'i');
    CHECK_ERR(msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT), ENOMSG);
    CHECK_ERR(snd(q, 0, "zero"), EINVAL);
    CHECK_ERR(msgsnd(q, (void *)8, 4, 0), EFAULT);
    CHECK_ERR(msgsnd(q, &m, (size_t)-1, 0), EINVAL);

    /* Across fork: the child's message wakes the parent's blocking receive. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(snd(q, 9, "from the child") != 0);
    CHECK(msgrcv(q, &m, sizeof m.text, 9, 0) == 15);
    CHECK(strcmp(m.text, "from the child") == 0);
    CHECK(wait_child(pid) == 0);
    CHECK(msgctl(q, IPC_STAT, &ds) == 0);
    SCHECK(ds.msg_lrpid == getpid() && ds.msg_lspid == pid);

    ds.msg_qbytes = 1000;
    CHECK(msgctl(q, IPC_SET, &ds) == 0);
    CHECK(msgctl(q, IPC_STAT, &ds) == 0 && ds.msg_qbytes == 1000);
    struct msginfo mi;
    CHECK(msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) >= 0);
    CHECK(mi.msgmax > 0 && mi.msgmnb > 0);
    CHECK(msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) >= 0);
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);
    CHECK_ERR(msgctl(q, IPC_STAT, &ds), EINVAL);
}

static char g_mqname[64];

static void mqs(void)
{
    snprintf(g_mqname, sizeof g_mqname, "/elfuse-ipc-%d", (int)getpid());
    mq_unlink(g_mqname);
    struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 64};
    mqd_t q = mq_open(g_mqname, O_CREAT | O_EXCL | O_RDWR, 0600, &at);
    CHECK(q != (mqd_t)-1);
    SCHECK(fcntl(q, F_GETFD) == 0);
    struct mq_attr got;
    CHECK(mq_getattr(q, &got) == 0);
    CHECK(got.mq_maxmsg == 4 && got.mq_msgsize == 64 && got.mq_curmsgs == 0);
    CHECK(got.mq_flags == 0);
    CHECK(mq_send(q, "low", 4, 1) == 0);
    CHECK(mq_send(q, "high", 5, 5) == 0);
    struct pollfd pf = {q, POLLIN, 0};
    CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN));
    char buf[128];
    unsigned prio = 0;
    CHECK(mq_receive(q, buf, sizeof buf, &prio) == 5);
    CHECK(prio == 5 && strcmp(buf, "high") == 0);
    CHECK_ERR(mq_receive(q, buf, 10, &prio), EMSGSIZE);
    CHECK_ERR(mq_send(q, buf, 65, 0), EMSGSIZE);
    CHECK_ERR(mq_send(q, buf, 1, 40000), EINVAL);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 4);
    CHECK(strcmp(buf, "low") == 0);

    struct timespec past = {1, 0};
    CHECK_ERR(mq_timedreceive(q, buf, sizeof buf, NULL, &past), ETIMEDOUT);
    struct mq_attr nb = {.mq_flags = O_NONBLOCK}, old;
    CHECK(mq_setattr(q, &nb, &old) == 0);
    CHECK(old.mq_flags == 0);
    CHECK_ERR(mq_receive(q, buf, sizeof buf, NULL), EAGAIN);
    for (int i = 0; i < 4; i++)
        mq_send(q, "x", 1, 0);
    CHECK_ERR(mq_send(q, "x", 1, 0), EAGAIN);
    CHECK(mq_getattr(q, &got) == 0 && got.mq_curmsgs == 4 && got.mq_flags == O_NONBLOCK);
    while (mq_receive(q, buf, sizeof buf, NULL) > 0)
        ;
    nb.mq_flags = 0;
    CHECK(mq_setattr(q, &nb, NULL) == 0);

    /* A dup is the same queue; across fork the child's send wakes the parent. */
    int d = dup(q);
    CHECK(d >= 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(mq_send(d, "from the child", 15, 3) != 0);
    CHECK(mq_receive(q, buf, sizeof buf, &prio) == 15);
    CHECK(prio == 3 && strcmp(buf, "from the child") == 0);
    CHECK(wait_child(pid) == 0);
    CHECK(close(d) == 0);

    mqd_t r = mq_open(g_mqname, O_RDONLY | O_CLOEXEC);
    CHECK(r != (mqd_t)-1);
    CHECK(fcntl(r, F_GETFD) == FD_CLOEXEC);
    CHECK_ERR(mq_send(r, "x", 1, 0), EBADF);
    CHECK(mq_close(r) == 0);
    CHECK_ERR(mq_open(g_mqname, O_CREAT | O_EXCL | O_RDWR, 0600, &at), EEXIST);
    CHECK(mq_close(q) == 0);
    CHECK_ERR(mq_getattr(q, &got), EBADF);
    CHECK(mq_unlink(g_mqname) == 0);
    CHECK_ERR(mq_unlink(g_mqname), ENOENT);
    CHECK_ERR(mq_open(g_mqname, O_RDWR), ENOENT);
}

static volatile int g_thread_note;
static void on_note(union sigval v)
{
    g_thread_note = v.sival_int;
}

/* mq_notify: a signal with SI_MESGQ and the value; a notification thread (glibc and
 * musl build it on a netlink socket and SIGEV_THREAD). */
static void mq_notes(void)
{
    snprintf(g_mqname, sizeof g_mqname, "/elfuse-ipcn-%d", (int)getpid());
    mq_unlink(g_mqname);
    struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 64};
    mqd_t q = mq_open(g_mqname, O_CREAT | O_RDWR, 0600, &at);
    CHECK(q != (mqd_t)-1);
    /* A handler too (it never runs: the signal is blocked and waited for), as elfuse
     * does not tell a blocked default-fatal signal taken by sigtimedwait apart yet. */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, &old);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR2;
    ev.sigev_value.sival_int = 42;
    CHECK(mq_notify(q, &ev) == 0);
    CHECK_ERR(mq_notify(q, &ev), EBUSY);
    CHECK(mq_send(q, "wake", 5, 0) == 0);
    siginfo_t si;
    struct timespec limit = {10, 0};
    CHECK(sigtimedwait(&set, &si, &limit) == SIGUSR2);
    CHECK(si.si_code == SI_MESGQ);
    CHECK(si.si_value.sival_int == 42);
    CHECK(si.si_pid == getpid());
    /* One notification per registration. */
    char buf[64];
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 5);
    CHECK(mq_notify(q, &ev) == 0);
    CHECK(mq_notify(q, NULL) == 0);
    CHECK(mq_send(q, "none", 5, 0) == 0);
    struct timespec none = {0, 0};
    CHECK_ERR(sigtimedwait(&set, &si, &none), EAGAIN);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 5);
    sigprocmask(SIG_SETMASK, &old, NULL);

    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_note;
    ev.sigev_value.sival_int = 7;
    CHECK(mq_notify(q, &ev) == 0);
    CHECK(mq_send(q, "thread", 7, 0) == 0);
    for (int i = 0; i < 1000 && g_thread_note == 0; i++)
        usleep(10000);
    CHECK(g_thread_note == 7);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(g_mqname) == 0);
}

/* SETALL needs alter permission only, GETALL read permission (as root, checked from a
 * child that has become nobody). qemu-user 7.2 reads the set with IPC_STAT first. */
static void sem_perms(void)
{
    if (getuid() != 0)
        return;
    int id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0222);
    CHECK(id >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        unsigned short v[2] = {4, 5};
        if (semctl(id, 0, SETALL, (union semun_){.array = v}) != 0)
            _exit(11);
        errno = 0;
        if (semctl(id, 0, GETALL, (union semun_){.array = v}) != -1 || errno != EACCES)
            _exit(12);
        _exit(0);
    }
    CHECK(wait_child(pid) == 0);
    unsigned short out[2] = {0};
    CHECK(semctl(id, 0, GETALL, (union semun_){.array = out}) == 0);
    CHECK(out[0] == 4 && out[1] == 5);
    CHECK(semctl(id, 0, IPC_RMID) == 0);
}

/* The attachment's line in /proc/self/maps, as Linux names it. */
static void shm_maps(void)
{
    int id = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
    char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], want[64];
    int found = 0;
    snprintf(want, sizeof want, "%lx-", (unsigned long)p);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, want, strlen(want)) == 0)
            found = strstr(line, " rw-s ") && strstr(line, "/SYSV00000000 (deleted)");
    if (f)
        fclose(f);
    CHECK(found);
    CHECK(shmdt(p) == 0);
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "attach") == 0)
        return attach_main(argv[2]);
    int strict = g_strict = argc > 1 && strcmp(argv[1], "strict") == 0;
    shm_basics();
    shm_addresses();
    shm_sem_fork();
    if (strict)
        shm_exec(argv[0]);
    sems();
    msgs();
    mqs();
    interrupted();
    if (strict) {
        mq_notes();
        shm_maps();
        sem_perms();
    }
    return report();
}
