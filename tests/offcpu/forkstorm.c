/* A process-creation storm: waits for one byte on stdin, then THREADS threads each vfork +
 * exec PROGRAM (default /bin/true) + wait in a loop, for SECONDS, paced to RATE children per
 * second in total (0: as fast as possible). Prints the number of children on exit.
 * Usage: forkstorm RATE SECONDS [THREADS [PROGRAM]] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double rate, end_at;
static int threads = 2;
static const char *prog = "/bin/true";
static long spawned[64];
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void *spawner(void *a) {
    long i = (long)a;
    double t0 = now(), per = rate > 0 ? threads / rate : 0;
    while (now() < end_at) {
        pid_t p = vfork();
        if (p == 0) {
            execl(prog, prog, (char *)0);
            _exit(127);
        }
        if (p > 0) {
            waitpid(p, 0, 0);
            spawned[i]++;
        }
        if (per > 0) {
            double next = t0 + spawned[i] * per, d = next - now();
            if (d > 0) usleep((useconds_t)(d * 1e6));
        }
    }
    return 0;
}
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    rate = atof(argv[1]);
    double secs = atof(argv[2]);
    if (argc > 3) threads = atoi(argv[3]);
    if (argc > 4) prog = argv[4];
    if (threads < 1 || threads > 64) return 2;
    char c;
    if (read(0, &c, 1) != 1) return 1;
    end_at = now() + secs;
    pthread_t t[64];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], 0, spawner, (void *)i);
    long total = 0;
    for (int i = 0; i < threads; i++) { pthread_join(t[i], 0); total += spawned[i]; }
    printf("%ld\n", total);
    return 0;
}
