/* without_syscalls NR[=ERRNO][,NR[=ERRNO]...] PROGRAM [ARG...]: run PROGRAM with the given syscalls
 * failing with ENOSYS, or the errno given (a seccomp filter, inherited by everything it starts), as
 * on a kernel that lacks them or under a container manager's profile that hides or forbids them.
 * x86_64 numbers.  Built by the tests. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sock_filter f[64];
    unsigned n = 0, i, count = 0;
    long nrs[16], errs[16];
    char *p;
    if (argc < 3)
        return 2;
    for (p = argv[1]; *p && count < 16; count++) {
        nrs[count] = strtol(p, &p, 0);
        errs[count] = ENOSYS;
        if (*p == '=')
            errs[count] = strtol(p + 1, &p, 0);
        if (*p == ',')
            p++;
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (i = 0; i < count; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)errs[i] & 0xffff));
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { (unsigned short)n, f };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        perror("seccomp");
        return 1;
    }
    execv(argv[2], argv + 2);
    perror("execv");
    return 127;
}
