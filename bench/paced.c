/* The soak workload: write-opens of /dev/null at a steady RATE per second
 * (in 10 ms ticks) for SECONDS, plus one short-lived child (/bin/true) per
 * second so the process table sees births and deaths, not one process
 * forever. Prints what it did as JSON. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long rate = argc > 1 ? atol(argv[1]) : 50000;
	double seconds = argc > 2 ? atof(argv[2]) : 600;
	long opens = 0, children = 0, behind = 0;
	double start = now(), next = start;
	long ticks = (long)(seconds * 100 + 0.5);
	for (long tick = 0; tick < ticks; tick++) {
		long target = (long)((tick + 1) * (rate / 100.0)) - (long)(tick * (rate / 100.0));
		for (long i = 0; i < target; i++) {
			int fd = open("/dev/null", O_WRONLY);
			if (fd >= 0)
				close(fd);
			opens++;
		}
		if (tick % 100 == 0) {
			pid_t p = fork();
			if (p == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			if (p > 0) {
				waitpid(p, NULL, 0);
				children++;
			}
		}
		next += 0.01;
		double wait = next - now();
		if (wait > 0) {
			struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
			nanosleep(&ts, NULL);
		} else {
			behind++;
		}
	}
	printf("{\"opens\":%ld,\"children\":%ld,\"ticks_behind\":%ld,\"seconds\":%.3f}\n", opens, children, behind, now() - start);
	return 0;
}
