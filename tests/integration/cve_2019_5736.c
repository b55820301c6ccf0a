/* The CVE-2019-5736 attacker, run inside a container (tests/integration/test_cve_2019_5736.py).
 *
 * For SECONDS seconds it opens /proc/PID/exe of every process it can see (O_PATH: no read or
 * write permission needed) and keeps the handle; then, again and again, it tries to reopen each
 * handle for writing through /proc/self/fd/N, which the kernel refuses (ETXTBSY) only while some
 * process still runs the file.  It never writes: a handle opened for writing is closed at once and
 * reported.  One line per handle it got at the end:
 *
 *   exe PID TARGET DEV:INO WRITE
 *
 * WRITE is "no" (never opened for writing), "sealed" (opened, but a memfd sealed against writes:
 * no write can land) or "WRITABLE" (a handle through which the file could have been written).
 * Then "done".  Usage: cve_2019_5736 SECONDS
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif

#define MAX 4096

struct held { int fd, pid; char target[256]; dev_t dev; ino_t ino; const char *write; };
static struct held held[MAX];
static int nheld;
static int seen[1 << 16];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void grab(int pid)
{
    char path[64];
    struct stat st;
    int fd;
    if (pid < (int)(sizeof seen / sizeof seen[0]) && seen[pid])
        return;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return;  /* non-dumpable (the runtime's processes), gone, or a kernel thread */
    if (pid < (int)(sizeof seen / sizeof seen[0]))
        seen[pid] = 1;
    if (nheld == MAX || fstat(fd, &st) < 0) {
        close(fd);
        return;
    }
    held[nheld].fd = fd;
    held[nheld].pid = pid;
    held[nheld].dev = st.st_dev;
    held[nheld].ino = st.st_ino;
    held[nheld].write = "no";
    if (readlink(path, held[nheld].target, sizeof held[nheld].target - 1) < 0)
        strcpy(held[nheld].target, "?");
    nheld++;
}

static void try_write(struct held *h)
{
    char path[64];
    int w;
    if (strcmp(h->write, "no") != 0)
        return;
    snprintf(path, sizeof path, "/proc/self/fd/%d", h->fd);
    w = open(path, O_WRONLY | O_CLOEXEC);  /* never O_TRUNC, never a write */
    if (w < 0)
        return;
    {
        int seals = fcntl(w, F_GET_SEALS);
        h->write = seals >= 0 && (seals & F_SEAL_WRITE) ? "sealed" : "WRITABLE";
    }
    close(w);
}

int main(int argc, char **argv)
{
    double end = now() + (argc > 1 ? atof(argv[1]) : 5);
    int self = getpid(), i;
    while (now() < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        if (d) {
            while ((e = readdir(d)) != NULL) {
                int pid = atoi(e->d_name);
                if (pid > 0 && pid != self)
                    grab(pid);
            }
            closedir(d);
        }
        for (i = 0; i < nheld; i++)
            try_write(&held[i]);
    }
    for (i = 0; i < nheld; i++)
        printf("exe %d %s %lu:%lu %s\n", held[i].pid, held[i].target, (unsigned long)held[i].dev,
               (unsigned long)held[i].ino, held[i].write);
    printf("done\n");
    return 0;
}
