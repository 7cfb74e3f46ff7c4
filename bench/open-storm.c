/* Open storms for the hooks benchmark (bench/hooks-bench.mjs):
 *   open-storm N PATH ro   N read-only opens of PATH (nothing recorded unless PATH is sensitive)
 *   open-storm N PATH wo   N write opens of PATH (a file.write each when traced)
 * Each open is closed at once: the syscall pair every open storm pays. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	const char *path = argc > 2 ? argv[2] : "/dev/null";
	int flags = argc > 3 && !strcmp(argv[3], "wo") ? O_WRONLY : O_RDONLY;
	for (long i = 0; i < n; i++) {
		int fd = open(path, flags);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}
