/* Joining a cgroup v2 at fork: the parent's write of the child's pid to cgroup.procs (what create
 * does today) against clone3(CLONE_INTO_CGROUP) (crun's way: the child is born in the cgroup).
 * Each round waits `gap` ms first, as creates apart in time do (the write's cost is the first
 * taking of the kernel's threadgroup rwsem after idle: an RCU grace period).
 *
 *   cc -O2 -o clone3_cgroup bench/clone3_cgroup.c && ./clone3_cgroup [rounds [gap_ms]]
 * Makes and removes /sys/fs/cgroup/oci-bench-<pid> (pure cgroup v2, as root). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    printf("%-40s median %.3f ms  p90 %.3f ms  max %.3f ms\n", what, v[n / 2], v[n * 9 / 10], v[n - 1]);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 30, gap = argc > 2 ? atoi(argv[2]) : 100;
    char dir[64], procs[96];
    snprintf(dir, sizeof dir, "/sys/fs/cgroup/oci-bench-%d", getpid());
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    if (mkdir(dir, 0755)) { perror(dir); return 1; }
    int cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    double *w = calloc(rounds, sizeof *w), *c = calloc(rounds, sizeof *c), *f = calloc(rounds, sizeof *f);
    for (int i = 0; i < rounds; i++) {
        usleep(gap * 1000);
        double t0 = now();
        pid_t pid = fork();
        if (pid == 0) { pause(); _exit(0); }
        double t1 = now();
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%d", pid);
        if (write(fd, buf, len) != len) perror("write cgroup.procs");
        close(fd);
        double t2 = now();
        f[i] = t1 - t0;
        w[i] = t2 - t1;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    report("fork", f, rounds);
    report("write of cgroup.procs after fork", w, rounds);
    for (int i = 0; i < rounds; i++) {
        usleep(gap * 1000);
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = cgfd;
        double t0 = now();
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) { pause(); _exit(0); }
        double t1 = now();
        if (pid < 0) { perror("clone3"); return 1; }
        c[i] = t1 - t0;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    report("clone3(CLONE_INTO_CGROUP)", c, rounds);
    rmdir(dir);
    return 0;
}
