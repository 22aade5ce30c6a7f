/*
 * The C floor of a per-process scan (`cargo xtask bench --procs-scan`): list /proc, and for
 * every process read /proc/PID/stat and /proc/PID/statm, twice (what a window's t0 and t1
 * need). Plain open/read/close, no parsing: the cheapest honest /proc pass. Prints how many
 * processes the last pass read.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char buf[8192];

static int read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n < 0 ? -1 : 0;
}

static int pass(void)
{
	char path[64];
	int n = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (read_file(path))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/statm", e->d_name);
		if (read_file(path))
			continue;
		n++;
	}
	closedir(d);
	return n;
}

int main(void)
{
	pass();
	printf("%d\n", pass());
	return 0;
}
