/* Waits for one byte on stdin, then sleeps MS milliseconds K times, prints how long the K
 * sleeps really took (ns, CLOCK_MONOTONIC: the ground truth, as a VM may oversleep) and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
__attribute__((noinline)) static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, 0);
    __asm__ volatile("" ::: "memory");
}
static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv) {
    long ms = atol(argv[1]), k = atol(argv[2]);
    char c;
    if (read(0, &c, 1) != 1) return 1;
    long long t0 = now_ns();
    for (long i = 0; i < k; i++) nap(ms);
    printf("%lld\n", now_ns() - t0);
    fflush(stdout);
    return 0;
}
