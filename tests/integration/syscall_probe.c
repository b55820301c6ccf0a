/* syscall_probe NR CALL...: for each CALL ("a0,a1,...", numbers in C syntax) run syscall(NR, args)
 * and print "ret errno" on a line (errno 0 on success).  Built with gcc -static by the seccomp
 * tests and run inside the container. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long nr, a[6];
    int i, j;
    if (argc < 2)
        return 2;
    nr = strtol(argv[1], NULL, 0);
    for (i = 2; i < argc || i == 2; i++) {
        char *p = i < argc ? argv[i] : "";
        memset(a, 0, sizeof a);
        for (j = 0; j < 6 && *p; j++) {
            a[j] = (long)strtoull(p, &p, 0);
            if (*p == ',')
                p++;
        }
        errno = 0;
        long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        printf("%ld %d\n", r, r < 0 ? errno : 0);
        fflush(stdout);
    }
    return 0;
}
