/* A static musl program: musl's own start-up, TLS set-up and heap run under pysud.
   File I/O, printf, getenv, a sorted directory listing, qsort, thread-local data, malloc.
   Usage: musl_static DIR  (DIR: an empty scratch directory the program fills). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static __thread int tls_counter = 40;

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (chdir(argv[1]) != 0) {
        perror("chdir");
        return 1;
    }
    /* file I/O through stdio and raw descriptors */
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "file-%c.txt", 'e' - i);
        FILE *f = fopen(name, "w");
        if (!f) {
            perror("fopen");
            return 1;
        }
        fprintf(f, "line %d of %s\n", i, name);
        fclose(f);
    }
    int fd = open("file-c.txt", O_RDONLY);
    char buf[128] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("read %zd bytes: %s", n, buf);
    struct stat st;
    stat("file-a.txt", &st);
    printf("size of file-a.txt: %lld\n", (long long)st.st_size);
    errno = 0;
    if (open("no-such-file", O_RDONLY) < 0)
        printf("open missing: %s\n", strerror(errno));

    /* getenv */
    const char *v = getenv("PYSUD_MUSL_VAR");
    printf("PYSUD_MUSL_VAR=%s\n", v ? v : "(unset)");

    /* a directory listing, sorted */
    DIR *d = opendir(".");
    char *names[64];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 64)
        if (e->d_name[0] != '.')
            names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, count, sizeof names[0], cmp_str);
    for (int i = 0; i < count; i++) {
        printf("entry %s\n", names[i]);
        free(names[i]);
    }

    /* qsort of numbers in heap memory, large enough for musl to use mmap as well as brk */
    int small_n = 1000;
    int *nums = malloc(small_n * sizeof *nums);
    char *big = malloc(4 << 20);
    memset(big, 1, 4 << 20);
    unsigned seed = 12345;
    for (int i = 0; i < small_n; i++) {
        seed = seed * 1103515245u + 12345u;
        nums[i] = (int)(seed >> 8) % 100000;
    }
    qsort(nums, small_n, sizeof *nums, cmp_int);
    long sum = 0;
    for (int i = 0; i < 4 << 20; i += 4096)
        sum += big[i];
    printf("sorted: min %d max %d median %d; big pages %ld\n", nums[0], nums[small_n - 1], nums[small_n / 2],
           sum);
    free(big);
    free(nums);

    tls_counter += 2;
    printf("tls %d\n", tls_counter);
    fprintf(stderr, "to stderr\n");
    return 7;
}
