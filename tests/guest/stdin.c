/* Reads all of standard input; prints the byte count, the line count and the
 * input upper-cased; writes one line to stderr. */
#include <ctype.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf && (n = read(0, buf + len, sizeof buf - len)) > 0)
        len += (size_t)n;
    int lines = 0;
    for (size_t i = 0; i < len; i++) {
        lines += buf[i] == '\n';
        buf[i] = (char)toupper((unsigned char)buf[i]);
    }
    printf("bytes=%zu lines=%d\n", len, lines);
    fwrite(buf, 1, len, stdout);
    fprintf(stderr, "stdin: done\n");
    return 0;
}
