/* The trampoline: what every final execve of the runtime goes through (CVE-2019-5736).
 *
 * The runtime's init and exec processes are forks of the runtime, so until their final execve
 * /proc/self/exe is the host's runtime program (or interpreter).  A program the container names
 * whose interpreter is "/proc/self/exe" would make the kernel start that host file inside the
 * container.  So the shim (cext/shim.c, oci_exec) runs this program instead, from a sealed private
 * memfd (execveat AT_EMPTY_PATH), and this program execve()s the real one: from then on the
 * process's exe is the memfd, never a host file.
 *
 * Built static and without libc (cext/build_shim.py: -nostdlib -static), embedded in the shim as
 * bytes.  It makes four system calls at most, which a seccomp profile already loaded must allow:
 * fcntl (F_SETFD), execve, and on failure write and exit_group.
 *
 * argv: [0] "oci-trampoline:<errfd>" (errfd -1: none), [1] the program's path, [2...] its argv.
 * The error fd (left open across the memfd's execveat) is made close-on-exec again, so the real
 * execve's success closes it (EOF to the reader); a failure writes "exec:<errno>\n" to it, as the
 * shim reports its own steps.  Started any other way (argv[0] without the marker: a script whose
 * interpreter is /proc/self/exe), it refuses and exits 127.
 */
#include <asm/unistd.h>

#define F_SETFD 2
#define FD_CLOEXEC 1

static const char MARK[] = "oci-trampoline:";

#if defined(__x86_64__)
static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
__asm__(".text\n.global _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n"
        "\tcall tramp_main\n\thlt\n");
#elif defined(__aarch64__)
static long sys3(long n, long a, long b, long c)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
__asm__(".text\n.global _start\n_start:\n\tmov x0, sp\n\tbl tramp_main\n");
#else
#error "the trampoline knows x86_64 and aarch64"
#endif

static void out(int fd, const char *s, long n)
{
    if (fd >= 0)
        sys3(__NR_write, fd, (long)s, n);
}

static void __attribute__((noreturn)) leave(int code)
{
    for (;;)
        sys3(__NR_exit_group, code, 0, 0);
}

void __attribute__((noreturn, used)) tramp_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    const char *a;
    long errfd = 0, i, err, n = 0;
    int neg = 0;
    char buf[32];

    if (argc < 3) {
        static const char msg[] = "ociruntime trampoline: not started by the runtime\n";
        out(2, msg, sizeof msg - 1);
        leave(127);
    }
    a = argv[0];
    for (i = 0; MARK[i]; i++)
        if (a[i] != MARK[i]) {
            static const char msg[] = "ociruntime trampoline: not started by the runtime\n";
            out(2, msg, sizeof msg - 1);
            leave(127);
        }
    a += i;
    if (*a == '-') {
        neg = 1;
        a++;
    }
    for (; *a >= '0' && *a <= '9'; a++)
        errfd = errfd * 10 + (*a - '0');
    if (neg)
        errfd = -1;
    if (errfd >= 0)
        sys3(__NR_fcntl, errfd, F_SETFD, FD_CLOEXEC);
    err = -sys3(__NR_execve, (long)argv[1], (long)(argv + 2), (long)envp);
    /* "exec:<errno>\n" */
    buf[n++] = 'e', buf[n++] = 'x', buf[n++] = 'e', buf[n++] = 'c', buf[n++] = ':';
    {
        char d[12];
        int k = 0;
        do
            d[k++] = (char)('0' + err % 10);
        while ((err /= 10) > 0 && k < 12);
        while (k > 0)
            buf[n++] = d[--k];
    }
    buf[n++] = '\n';
    out(errfd >= 0 ? (int)errfd : 2, buf, n);
    leave(127);
}
