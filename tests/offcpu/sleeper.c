/* Waits for one byte on stdin, then sleeps MS milliseconds K times and exits. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
__attribute__((noinline)) static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, 0);
    __asm__ volatile("" ::: "memory");
}
int main(int argc, char **argv) {
    long ms = atol(argv[1]), k = atol(argv[2]);
    char c;
    if (read(0, &c, 1) != 1) return 1;
    for (long i = 0; i < k; i++) nap(ms);
    return 0;
}
