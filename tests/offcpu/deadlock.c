/* Two threads take two mutexes in opposite orders and deadlock; the main thread joins them. */
#include <pthread.h>
#include <unistd.h>
static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
__attribute__((noinline)) static void *one(void *x) { (void)x; pthread_mutex_lock(&a); usleep(100000); pthread_mutex_lock(&b); return 0; }
__attribute__((noinline)) static void *two(void *x) { (void)x; pthread_mutex_lock(&b); usleep(100000); pthread_mutex_lock(&a); return 0; }
int main(void) {
    pthread_t t1, t2;
    pthread_create(&t1, 0, one, 0);
    pthread_create(&t2, 0, two, 0);
    pthread_join(t1, 0);
    pthread_join(t2, 0);
    return 0;
}
