/* Opens PATH with O_DIRECT, waits for one byte on stdin, then reads N 4 KiB blocks (last
 * first, so no readahead or merging can help) and exits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) return 2;
    void *buf;
    if (posix_memalign(&buf, 4096, 4096)) return 3;
    char c;
    if (read(0, &c, 1) != 1) return 1;
    for (long i = n - 1; i >= 0; i--)
        if (pread(fd, buf, 4096, i * 4096) != 4096) return 4;
    return 0;
}
