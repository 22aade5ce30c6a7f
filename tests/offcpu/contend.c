/* Waits for one byte on stdin, then THREADS threads take one mutex for ~HOLD_US of spinning
 * each, for SECONDS, and exit. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long hold_us;
static double end_at;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
__attribute__((noinline)) static void critical(void) {
    double e = now() + hold_us / 1e6;
    while (now() < e) {}
}
__attribute__((noinline)) static void take_lock(void) { pthread_mutex_lock(&lock); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) static void *worker(void *a) {
    (void)a;
    while (now() < end_at) { take_lock(); critical(); pthread_mutex_unlock(&lock); }
    return 0;
}
int main(int argc, char **argv) {
    int n = atoi(argv[1]); hold_us = atol(argv[2]); double secs = atof(argv[3]);
    char c;
    if (read(0, &c, 1) != 1) return 1;
    end_at = now() + secs;
    pthread_t t[64];
    for (int i = 0; i < n && i < 64; i++) pthread_create(&t[i], 0, worker, 0);
    for (int i = 0; i < n && i < 64; i++) pthread_join(t[i], 0);
    return 0;
}
