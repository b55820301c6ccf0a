/* syscall_probe_i386 NR...: an i386 program without libc (gcc -m32 -nostdlib -static, so no 32-bit
 * libc is needed): for each NR make the i386 syscall NR with zero arguments (int $0x80) and print
 * "ret errno" on a line (errno 0 on success).  The seccomp tests run it inside the container to
 * see what a filter answers for the i386 architecture (AUDIT_ARCH_I386). */

#define NR_EXIT_GROUP 252
#define NR_WRITE 4

static long sys3(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}

static int put_num(char *p, long v)
{
    char tmp[16];
    int n = 0, len = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0)
        p[len++] = '-';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        p[len++] = tmp[--n];
    return len;
}

static long parse(const char *s)
{
    long v = 0, sign = 1;
    if (*s == '-') {
        sign = -1;
        s++;
    }
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return v * sign;
}

__attribute__((used)) void probe_main(long *sp)
{
    int argc = (int)sp[0], i;
    char **argv = (char **)(sp + 1);
    for (i = 1; i < argc; i++) {
        char line[40];
        long r = sys3(parse(argv[i]), 0, 0, 0);
        int n = put_num(line, r < 0 && r > -4096 ? -1 : r);
        line[n++] = ' ';
        n += put_num(line + n, r < 0 && r > -4096 ? -r : 0);
        line[n++] = '\n';
        sys3(NR_WRITE, 1, (long)line, n);
    }
    sys3(NR_EXIT_GROUP, 0, 0, 0);
}

__asm__(".globl _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %esp, %eax\n"
        "  and $-16, %esp\n"
        "  sub $12, %esp\n"
        "  push %eax\n"
        "  call probe_main\n"
        "  hlt\n");
