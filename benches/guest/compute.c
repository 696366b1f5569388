/* Compute workloads for benches/compute.rs: `compute <workload> [scale]`.
 * Each workload does its work and prints one line "<workload> <checksum>" so that
 * elfuse and qemu-aarch64 can be checked to compute the same thing. The bench times
 * the whole process (CPU time of the child); sizes keep each run ~0.3-1 s under qemu.
 * scale (default 1) multiplies the repetitions, not the working set. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    /* xorshift64*: deterministic, the same under every runner. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    return p;
}

/* Table-driven CRC-32 (IEEE) over a 32 MiB buffer, twice. */
static uint64_t w_crc32(int scale)
{
    static uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    size_t n = 32u << 20;
    uint8_t *buf = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 9));
    uint32_t crc = 0;
    for (int r = 0; r < 2 * scale; r++) {
        uint32_t c = 0xffffffffu;
        for (size_t i = 0; i < n; i++)
            c = table[(c ^ buf[i]) & 0xff] ^ (c >> 8);
        crc += ~c;
    }
    free(buf);
    return crc;
}

/* Double-precision matrix multiply, 200x200, naive i-k-j loop. */
static uint64_t w_matmul(int scale)
{
    enum { N = 200 };
    double *a = xmalloc(sizeof(double) * N * N), *b = xmalloc(sizeof(double) * N * N);
    double *c = xmalloc(sizeof(double) * N * N);
    for (int i = 0; i < N * N; i++) {
        a[i] = (double)(i % 17) * 0.25;
        b[i] = (double)(i % 13) * 0.5;
    }
    double sum = 0;
    for (int r = 0; r < 3 * scale; r++) {
        memset(c, 0, sizeof(double) * N * N);
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++) {
                double aik = a[i * N + k];
                for (int j = 0; j < N; j++)
                    c[i * N + j] += aik * b[k * N + j];
            }
        sum += c[(r * 7) % (N * N)];
    }
    free(a);
    free(b);
    free(c);
    return (uint64_t)sum;
}

static void sift(int *a, size_t start, size_t end)
{
    size_t root = start;
    while (2 * root + 1 <= end) {
        size_t child = 2 * root + 1;
        if (child + 1 <= end && a[child] < a[child + 1])
            child++;
        if (a[root] >= a[child])
            return;
        int t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

/* Heapsort of 1M random ints (4 MiB working set). */
static uint64_t w_heapsort(int scale)
{
    size_t n = 1u << 20;
    int *a = xmalloc(n * sizeof(int));
    uint64_t sum = 0;
    for (int r = 0; r < scale; r++) {
        for (size_t i = 0; i < n; i++)
            a[i] = (int)(rng() >> 33);
        for (size_t s = n / 2; s-- > 0;)
            sift(a, s, n - 1);
        for (size_t end = n - 1; end > 0; end--) {
            int t = a[0];
            a[0] = a[end];
            a[end] = t;
            sift(a, 0, end - 1);
        }
        for (size_t i = 1; i < n; i++)
            if (a[i - 1] > a[i]) {
                printf("heapsort: not sorted at %zu\n", i);
                exit(1);
            }
        sum += (uint64_t)a[n / 3];
    }
    free(a);
    return sum;
}

/* memcpy of 8 MiB between two buffers, 300 times. */
static uint64_t w_memcpy(int scale)
{
    size_t n = 8u << 20;
    uint8_t *src = xmalloc(n), *dst = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i ^ (i >> 11));
    uint64_t sum = 0;
    for (int r = 0; r < 300 * scale; r++) {
        src[r] = (uint8_t)r;
        memcpy(dst, src, n);
        sum += dst[(size_t)r * 4099 % n];
    }
    free(src);
    free(dst);
    return sum;
}

/* malloc/free churn: 3M operations over 4096 slots of 16..1040 bytes. */
static uint64_t w_malloc(int scale)
{
    enum { SLOTS = 4096 };
    static void *slot[SLOTS];
    uint64_t sum = 0;
    for (long i = 0; i < 3000000L * scale; i++) {
        uint64_t r = rng();
        size_t k = r % SLOTS;
        if (slot[k]) {
            sum += ((uint8_t *)slot[k])[0];
            free(slot[k]);
            slot[k] = NULL;
        } else {
            size_t sz = 16 + (r >> 20) % 1025;
            slot[k] = xmalloc(sz);
            ((uint8_t *)slot[k])[0] = (uint8_t)sz;
        }
    }
    for (int k = 0; k < SLOTS; k++)
        free(slot[k]);
    return sum;
}

/* Pointer chase over a randomly permuted 1M-node singly linked list (16 MiB). */
static uint64_t w_chase(int scale)
{
    struct node {
        struct node *next;
        uint64_t val;
    };
    size_t n = 1u << 20;
    struct node *nodes = xmalloc(n * sizeof(struct node));
    uint32_t *perm = xmalloc(n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng() % (i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        nodes[perm[i]].next = &nodes[perm[(i + 1) % n]];
        nodes[perm[i]].val = i;
    }
    free(perm);
    uint64_t sum = 0;
    struct node *p = &nodes[0];
    for (long i = 0; i < 3L * (long)n * scale; i++) {
        sum += p->val;
        p = p->next;
    }
    free(nodes);
    return sum;
}

/* String functions over 16 MiB: strlen, strchr, strcmp, strcpy, memchr, memset. */
static uint64_t w_string(int scale)
{
    size_t n = 16u << 20;
    char *a = xmalloc(n + 1), *b = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        a[i] = (char)('a' + i % 23);
    a[n] = 0;
    uint64_t sum = 0;
    for (int r = 0; r < 4 * scale; r++) {
        sum += strlen(a);
        strcpy(b, a);
        sum += (uint64_t)(strchr(b, 'z' + 1 - r % 2) != NULL);
        b[n - 1 - r] = 'A';
        sum += (uint64_t)(strcmp(a, b) > 0);
        sum += (uint64_t)((char *)memchr(a, 'A', n) - a + 1 == 0);
        memset(b, 'q', n / 2);
        sum += (uint64_t)b[n / 2 - 1];
    }
    free(a);
    free(b);
    return sum;
}

/* 48 forked children, each running a short compute loop; the parent waits for all. */
static uint64_t w_fork(int scale)
{
    uint64_t sum = 0;
    for (int r = 0; r < 48 * scale; r++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(2);
        }
        if (pid == 0) {
            uint32_t h = 2166136261u + (uint32_t)r;
            for (int i = 0; i < 2000000; i++)
                h = (h ^ (uint32_t)i) * 16777619u;
            _exit((int)(h & 0x7f));
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
            printf("fork: child failed\n");
            exit(1);
        }
        sum += (uint64_t)WEXITSTATUS(st);
    }
    return sum;
}

static const struct {
    const char *name;
    uint64_t (*fn)(int);
} workloads[] = {
    {"crc32", w_crc32},   {"matmul", w_matmul}, {"heapsort", w_heapsort}, {"memcpy", w_memcpy},
    {"malloc", w_malloc}, {"chase", w_chase},   {"string", w_string},     {"fork", w_fork},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
            printf("%s\n", workloads[i].name);
        return 0;
    }
    int scale = argc > 2 ? atoi(argv[2]) : 1;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (strcmp(argv[1], workloads[i].name) == 0) {
            printf("%s %llu\n", argv[1], (unsigned long long)workloads[i].fn(scale < 1 ? 1 : scale));
            return 0;
        }
    fprintf(stderr, "compute: unknown workload %s\n", argv[1]);
    return 2;
}
