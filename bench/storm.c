/* The benchmark workload: N opens of /dev/null for writing, each one a
 * file.write event when traced. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	for (long i = 0; i < n; i++) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}
