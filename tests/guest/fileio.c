/* fileio DIR: file I/O system calls inside the (empty, scratch) folder DIR. */
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* musl 1.2.3 has no struct statx: use our own layout (the kernel ABI). */
struct k_statx_ts { int64_t tv_sec; uint32_t tv_nsec; int32_t pad; };
struct k_statx {
    uint32_t stx_mask, stx_blksize;
    uint64_t stx_attributes;
    uint32_t stx_nlink, stx_uid, stx_gid;
    uint16_t stx_mode, pad1;
    uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct k_statx_ts stx_atime, stx_btime, stx_ctime, stx_mtime;
    uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    uint64_t spare[14];
};
#define K_STATX_TYPE 0x1U
#define K_STATX_MODE 0x2U
#define K_STATX_SIZE 0x200U

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fileio DIR\n");
        return 100;
    }
    umask(022);
    char buf[256];
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);

    int fd = openat(dfd, "a.txt", O_CREAT | O_RDWR | O_TRUNC, 0666);
    CHECK(fd >= 0);
    CHECK(write(fd, "hello world\n", 12) == 12);
    CHECK(lseek(fd, 0, SEEK_CUR) == 12);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    memset(buf, 0, sizeof buf);
    CHECK(read(fd, buf, sizeof buf) == 12 && memcmp(buf, "hello world\n", 12) == 0);
    CHECK(read(fd, buf, sizeof buf) == 0);
    CHECK(lseek(fd, -6, SEEK_END) == 6);
    CHECK(read(fd, buf, 5) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK_ERR(lseek(fd, -100, SEEK_SET), EINVAL);

    /* pread/pwrite do not move the file offset. */
    off_t before = lseek(fd, 0, SEEK_CUR);
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5);
    CHECK(pread(fd, buf, 5, 6) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK(pread(fd, buf, 12, 0) == 12 && memcmp(buf, "HELLO world\n", 12) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == before);
    CHECK(pread(fd, buf, 10, 1000) == 0);

    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 12);
    CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
    CHECK(fstatat(dfd, "a.txt", &st, 0) == 0 && st.st_size == 12);
    CHECK(st.st_nlink == 1);
    struct k_statx sx;
    memset(&sx, 0, sizeof sx);
    CHECK(syscall(SYS_statx, dfd, "a.txt", 0, K_STATX_TYPE | K_STATX_MODE | K_STATX_SIZE, &sx) == 0);
    CHECK((sx.stx_mask & K_STATX_SIZE) && sx.stx_size == 12);
    CHECK(S_ISREG(sx.stx_mode) && (sx.stx_mode & 07777) == 0644);
    CHECK(syscall(SYS_statx, fd, "", AT_EMPTY_PATH, K_STATX_SIZE, &sx) == 0 && sx.stx_size == 12);

    /* ftruncate shrinks, then grows with zeros. */
    CHECK(ftruncate(fd, 5) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 5);
    CHECK(ftruncate(fd, 100) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 100);
    memset(buf, 0x55, sizeof buf);
    CHECK(pread(fd, buf, sizeof buf, 0) == 100);
    {
        int zeros = 1;
        for (int i = 5; i < 100; i++)
            zeros &= buf[i] == 0;
        CHECK(memcmp(buf, "HELLO", 5) == 0 && zeros);
    }
    CHECK(fsync(fd) == 0);
    CHECK(fdatasync(fd) == 0);
    CHECK(close(fd) == 0);
    CHECK_ERR(close(fd), EBADF);

    /* O_APPEND always writes at the end, whatever the offset. */
    fd = openat(dfd, "a.txt", O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, "XY", 2) == 2);
    CHECK(lseek(fd, 0, SEEK_CUR) == 102);
    CHECK(fcntl(fd, F_GETFL) & O_APPEND);
    CHECK_ERR(read(fd, buf, 1), EBADF);
    close(fd);
    CHECK(stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode));

    /* Errors. */
    CHECK_ERR(openat(dfd, "a.txt", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    CHECK_ERR(openat(dfd, "missing.txt", O_RDONLY), ENOENT);
    CHECK_ERR(openat(dfd, "missing/x", O_CREAT | O_WRONLY, 0644), ENOENT);
    CHECK_ERR(openat(dfd, "a.txt/x", O_RDONLY), ENOTDIR);
    CHECK_ERR(openat(dfd, "a.txt", O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERR(read(dfd, buf, 1), EISDIR);
    CHECK_ERR(write(12345, "x", 1), EBADF);
    fd = openat(dfd, "a.txt", O_RDONLY);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    close(fd);

    /* rename and unlink. */
    CHECK(renameat(dfd, "a.txt", dfd, "b.txt") == 0);
    CHECK_ERR(fstatat(dfd, "a.txt", &st, 0), ENOENT);
    CHECK(fstatat(dfd, "b.txt", &st, 0) == 0 && st.st_size == 102);
    CHECK(unlinkat(dfd, "b.txt", 0) == 0);
    CHECK_ERR(unlinkat(dfd, "b.txt", 0), ENOENT);

    /* A megabyte written in odd-sized chunks reads back identically. */
    static unsigned char big[1 << 20], back[1 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 2654435761u >> 13);
    fd = openat(dfd, "big.bin", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    size_t off = 0, chunk = 1;
    int wr_ok = 1;
    while (off < sizeof big) {
        size_t n = chunk < sizeof big - off ? chunk : sizeof big - off;
        wr_ok &= write(fd, big + off, n) == (ssize_t)n;
        off += n;
        chunk = chunk * 3 + 7;
    }
    CHECK(wr_ok);
    CHECK(fstat(fd, &st) == 0 && st.st_size == (off_t)sizeof big);
    CHECK(pread(fd, back, sizeof back, 0) == (ssize_t)sizeof back);
    CHECK(memcmp(big, back, sizeof big) == 0);
    close(fd);
    CHECK(unlinkat(dfd, "big.bin", 0) == 0);

    /* Device files. */
    fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0 && write(fd, "discarded", 9) == 9 && read(fd, buf, 10) == 0);
    close(fd);
    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 1, 64);
    CHECK(fd >= 0 && read(fd, buf, 64) == 64 && buf[0] == 0 && buf[63] == 0);
    close(fd);

    close(dfd);
    return report();
}
