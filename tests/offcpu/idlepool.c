/* An idle thread pool beside a busy thread that holds no lock: waits for one byte on stdin,
 * then THREADS threads loop in pthread_cond_timedwait(TIMEOUT_MS) on one condition variable
 * that is never signalled (each wakes on its timeout, finds no work, waits again), while one
 * more thread burns BUSY_PCT of a CPU (spin, then sleep, in 10 ms periods), for SECONDS.
 * Usage: idlepool THREADS TIMEOUT_MS BUSY_PCT SECONDS */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static int queued; /* never set: there is no work */
static long timeout_ms, busy_pct;
static double end_at;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
__attribute__((noinline)) static void *idle_worker(void *a) {
    (void)a;
    pthread_mutex_lock(&lock);
    while (now() < end_at) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += timeout_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        int r = pthread_cond_timedwait(&work, &lock, &ts);
        if (r == 0 && queued)
            queued--;
    }
    pthread_mutex_unlock(&lock);
    return 0;
}
__attribute__((noinline)) static void *busy(void *a) {
    (void)a;
    while (now() < end_at) {
        double t = now() + busy_pct / 1e4; /* busy_pct% of 10 ms */
        while (now() < t) {}
        usleep((100 - busy_pct) * 100);
    }
    return 0;
}
int main(int argc, char **argv) {
    if (argc < 5) return 2;
    int n = atoi(argv[1]); timeout_ms = atol(argv[2]); busy_pct = atol(argv[3]);
    double secs = atof(argv[4]);
    char c;
    if (read(0, &c, 1) != 1) return 1;
    end_at = now() + secs;
    pthread_t t[65];
    for (int i = 0; i < n && i < 64; i++) pthread_create(&t[i], 0, idle_worker, 0);
    pthread_create(&t[64], 0, busy, 0);
    for (int i = 0; i < n && i < 64; i++) pthread_join(t[i], 0);
    pthread_join(t[64], 0);
    return 0;
}
