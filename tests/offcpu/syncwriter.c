/* Latency-bound synchronous writes: waits for one byte on stdin, then writes BYTES bytes at a
 * time to FILE and fsyncs after each write, for SECONDS (queue depth 1: one request at a
 * time). Prints the number of fsyncs on exit.
 * Usage: syncwriter FILE BYTES SECONDS */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    long bytes = atol(argv[2]);
    double secs = atof(argv[3]);
    if (bytes < 1 || bytes > (1 << 24)) return 2;
    char *buf = malloc(bytes);
    memset(buf, 'x', bytes);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(argv[1]); return 1; }
    char c;
    if (read(0, &c, 1) != 1) return 1;
    double end = now() + secs;
    long n = 0;
    while (now() < end) {
        if (write(fd, buf, bytes) != bytes) { perror("write"); return 1; }
        if (fsync(fd)) { perror("fsync"); return 1; }
        if (++n % 1024 == 0) lseek(fd, 0, SEEK_SET); /* keep the file small */
    }
    close(fd);
    unlink(argv[1]);
    printf("%ld\n", n);
    return 0;
}
