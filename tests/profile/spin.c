/* A CPU-bound workload with a known answer for `triage profile`'s tests: after one line on
 * stdin (so the sampler attaches first), it spins for SECS seconds, either all in
 * compute_hash (`spin SECS`) or split by work between work_a and work_b (`split SECS PCT_A`:
 * PCT_A of every 100 units in work_a, the rest in work_b; both do the same work per unit).
 * It prints its own CPU time in ns at the end. Built with clang -fno-omit-frame-pointer
 * -mno-omit-leaf-frame-pointer (gcc 12 drops leaf functions' frame pointers regardless). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNIT 20000

static volatile uint64_t sink;

__attribute__((noinline)) uint64_t compute_hash(uint64_t n, uint64_t seed)
{
	uint64_t h = seed;
	for (uint64_t i = 0; i < n; i++) {
		h ^= h << 13;
		h ^= h >> 7;
		h ^= h << 17;
		h *= 0x100000001b3ULL;
	}
	return h;
}

__attribute__((noinline)) uint64_t work_a(uint64_t n, uint64_t seed)
{
	uint64_t h = seed;
	for (uint64_t i = 0; i < n; i++) {
		h ^= h << 13;
		h ^= h >> 7;
		h ^= h << 17;
		h *= 0x100000001b3ULL;
	}
	return h + 1;
}

__attribute__((noinline)) uint64_t work_b(uint64_t n, uint64_t seed)
{
	uint64_t h = seed;
	for (uint64_t i = 0; i < n; i++) {
		h ^= h << 13;
		h ^= h >> 7;
		h ^= h << 17;
		h *= 0x100000001b3ULL;
	}
	return h + 2;
}

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: spin spin SECS | split SECS PCT_A\n");
		return 2;
	}
	char line[8];
	if (!getenv("SPIN_NOW"))
		(void)!read(0, line, sizeof(line));
	double secs = atof(argv[2]);
	int split = strcmp(argv[1], "split") == 0;
	int pct_a = split && argc >= 4 ? atoi(argv[3]) : 100;
	double t0 = now(CLOCK_MONOTONIC);
	uint64_t h = 1;
	while (now(CLOCK_MONOTONIC) - t0 < secs) {
		if (!split) {
			h = compute_hash(100 * UNIT, h);
			continue;
		}
		h = work_a((uint64_t)pct_a * UNIT, h);
		h = work_b((uint64_t)(100 - pct_a) * UNIT, h);
	}
	sink = h;
	printf("%.0f\n", now(CLOCK_PROCESS_CPUTIME_ID) * 1e9);
	return 0;
}
