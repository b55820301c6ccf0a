/* The C half of ociruntime: thin syscall wrappers, the final steps of a container process, and
 * libseccomp's loading; bound for Python by cffi (cext/build_shim.py, ociruntime._shim).
 *
 * Policy lives in Python; this file only does what Python's os module cannot: namespace and mount
 * syscalls, the credential/capability/seccomp sequence, the final execve through the trampoline
 * (cext/trampoline.c) and the init's wait for start (which must not run Python: see oci_wait).
 */
/* first, as Python.h must be: the stable ABI's fork protocol and GIL calls (oci_fork_into_cgroup),
   like the binding cffi generates (abi3) */
#define Py_LIMITED_API 0x030b0000
#include <Python.h>
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <dlfcn.h>
#include <seccomp.h>  /* types and constants only: libseccomp itself is opened on first use */

#include "shim.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define RET(expr) do { long _r = (long)(expr); return _r < 0 ? -errno : (int)_r; } while (0)

int oci_unshare(int flags) { RET(unshare(flags)); }
int oci_setns(int fd, int nstype) { RET(setns(fd, nstype)); }
int oci_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)
{ RET(mount(src, target, fstype, flags, data)); }
int oci_umount2(const char *target, int flags) { RET(umount2(target, flags)); }
int oci_pivot_root(const char *new_root, const char *put_old) { RET(syscall(SYS_pivot_root, new_root, put_old)); }
int oci_sethostname(const char *name, size_t len) { RET(sethostname(name, len)); }
int oci_setdomainname(const char *name, size_t len) { RET(setdomainname(name, len)); }
int oci_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)
{ RET(prctl(option, a2, a3, a4, a5)); }
int oci_personality(unsigned long persona) { RET(personality(persona)); }
int oci_join_session_keyring(const char *name) { RET(syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name)); }

struct oci_open_how { uint64_t flags, mode, resolve; };
int oci_openat2(int dirfd, const char *path, int flags, int mode, unsigned long long resolve)
{
    struct oci_open_how how = { (uint64_t)(unsigned)flags, (uint64_t)mode, resolve };
    RET(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

struct oci_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
int oci_mount_setattr(int dirfd, const char *path, unsigned int flags, unsigned long long attr_set,
                      unsigned long long attr_clr, unsigned long long propagation)
{
    struct oci_mount_attr a = { attr_set, attr_clr, propagation, 0 };
    RET(syscall(SYS_mount_setattr, dirfd, path, flags, &a, sizeof a));
}

/* ---- the final steps of a container process ------------------------------------------------- */

static void report(int fd, const char *step, int err)
{
    /* "step:errno\n" with no allocation */
    char buf[96];
    size_t n = 0, i;
    char digits[12];
    int d = 0;
    for (i = 0; step[i] && n < sizeof buf - 16; i++)
        buf[n++] = step[i];
    buf[n++] = ':';
    if (err == 0)
        digits[d++] = '0';
    while (err > 0 && d < (int)sizeof digits) {
        digits[d++] = (char)('0' + err % 10);
        err /= 10;
    }
    while (d > 0)
        buf[n++] = digits[--d];
    buf[n++] = '\n';
    if (write(fd, buf, n) < 0) { /* nothing more can be done */ }
}

/* Send the listener fd and the container process state to the seccomp agent (runtime-spec
   "listenerPath"): one sendmsg carries the fd with the first bytes, the rest follows. */
static int send_listener(int sock, int fd, const char *msg, size_t len)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { (void *)msg, len };
    struct msghdr mh;
    struct cmsghdr *c;
    ssize_t n;
    memset(&mh, 0, sizeof mh);
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    while ((size_t)n < len) {
        ssize_t m = send(sock, msg + n, len - (size_t)n, MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR)
            continue;
        if (m < 0)
            return -1;
        n += m;
    }
    return 0;
}

static int load_seccomp(struct oci_final *x)
{
    struct sock_fprog prog = { x->seccomp_len, (struct sock_filter *)x->seccomp_filter };
    long fd;
    x->step = "seccomp";
    fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, x->seccomp_flags, &prog);
    if (fd < 0)
        return -1;
    if (x->seccomp_listener_sock >= 0) {
        /* the first syscalls under the filter: SCMP_ACT_NOTIFY is refused for sendmsg/send */
        x->step = "seccomp_listener";
        if (send_listener(x->seccomp_listener_sock, (int)fd, x->seccomp_listener_msg,
                          x->seccomp_listener_len) < 0)
            return -1;
        close((int)fd);
        close(x->seccomp_listener_sock);
    }
    return 0;
}

static int apply_caps(const struct oci_final *x)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    int cap;
    d[0].effective = (uint32_t)x->effective;
    d[1].effective = (uint32_t)(x->effective >> 32);
    d[0].permitted = (uint32_t)x->permitted;
    d[1].permitted = (uint32_t)(x->permitted >> 32);
    d[0].inheritable = (uint32_t)x->inheritable;
    d[1].inheritable = (uint32_t)(x->inheritable >> 32);
    if (syscall(SYS_capset, &h, d) < 0)
        return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    for (cap = 0; cap <= x->last_cap; cap++)
        if ((x->ambient >> cap) & 1)
            /* the kernel raises an ambient capability only if it is also permitted and
               inheritable; like runc, one it refuses is left out rather than failing */
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
                return -1;
    return 0;
}

/* runc 1.1's order (standard_init_linux.go, finalizeNamespace): seccomp first when it needs
   CAP_SYS_ADMIN (no no_new_privs), the bounding set, the credentials (keeping the capabilities
   across setresuid), the five sets, no_new_privs, seccomp last otherwise. */
int oci_finalize(struct oci_final *x)
{
    int cap;
    if (x->seccomp_filter && x->seccomp_early && load_seccomp(x) < 0)
        goto fail;
    if (x->set_caps) {
        x->step = "capbset_drop";
        for (cap = 0; cap <= x->last_cap; cap++)
            if (!((x->bounding >> cap) & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                goto fail;
    }
    if (x->set_user) {
        x->step = "keepcaps";
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            goto fail;
        x->step = "setgroups";
        if (x->set_groups && setgroups((size_t)x->ngroups, (const gid_t *)x->groups) < 0)
            goto fail;
        x->step = "setresgid";
        if (setresgid(x->gid, x->gid, x->gid) < 0)
            goto fail;
        x->step = "setresuid";
        if (setresuid(x->uid, x->uid, x->uid) < 0)
            goto fail;
        x->step = "keepcaps";
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
            goto fail;
        /* a change of uid resets dumpable from fs.suid_dumpable: the process still runs the
           runtime's code until its final execve */
        x->step = "set non-dumpable";
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
            goto fail;
    }
    if (x->set_caps) {
        x->step = "capset";
        if (apply_caps(x) < 0)
            goto fail;
    }
    if (x->cwd) {
        x->step = "chdir";
        if (chdir(x->cwd) < 0)
            goto fail;
    }
    if (x->no_new_privs) {
        x->step = "no_new_privs";
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            goto fail;
    }
    if (x->seccomp_filter && !x->seccomp_early && load_seccomp(x) < 0)
        goto fail;
    x->step = NULL;
    return 0;
fail:
    return -errno;
}

/* ---- the trampoline (cext/trampoline.c, built by cext/build_shim.py into these bytes) ---------- */

#include <sys/mman.h>
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS (1024 + 9)
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern const unsigned char oci_trampoline_code[];
extern const size_t oci_trampoline_size;

int oci_trampoline(void)
{
    size_t done = 0;
    /* MFD_EXEC: executable even where vm.memfd_noexec makes memfds noexec by default */
    int fd = memfd_create("ociruntime-trampoline", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)  /* a kernel before 6.3 */
        fd = memfd_create("ociruntime-trampoline", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    while (done < oci_trampoline_size) {
        ssize_t n = write(fd, oci_trampoline_code + done, oci_trampoline_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        done += (size_t)n;
    }
    /* read and execute only: a process without CAP_DAC_OVERRIDE cannot even open it for writing */
    if (fchmod(fd, 0555) < 0)
        goto fail;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        goto fail;
    return fd;
fail:
    {
        int err = errno ? errno : EIO;
        close(fd);
        return -err;
    }
}

/* FD_CLOEXEC on every fd from `first` on: close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11), else each
   open fd found in /proc/self/fd, else every fd below the fd limit. */
static int cloexec_from(int first)
{
    char buf[4096];
    int dir, fd;
    struct rlimit rl;
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
    dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        for (;;) {
            long n = syscall(SYS_getdents64, dir, buf, sizeof buf), off = 0;
            if (n < 0) {
                close(dir);
                return -1;
            }
            if (n == 0)
                break;
            while (off < n) {
                struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; }
                    *e = (void *)(buf + off);
                const char *s = e->name;
                fd = 0;
                if (*s >= '0' && *s <= '9') {
                    for (; *s >= '0' && *s <= '9'; s++)
                        fd = fd * 10 + (*s - '0');
                    if (fd >= first && fd != dir)
                        fcntl(fd, F_SETFD, FD_CLOEXEC);
                }
                off += e->reclen;
            }
        }
        close(dir);
        return 0;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    for (fd = first; (rlim_t)fd < rl.rlim_cur && fd < (1 << 20); fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

int oci_exec(struct oci_exec *x)
{
    int errfd = x->errfd >= 0 ? x->errfd : 2;
    sigset_t all;
    int sig;

    /* Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: give the process a
       clean slate.  Errors (SIGKILL, SIGSTOP) are expected and harmless. */
    for (sig = 1; sig < 65; sig++)
        signal(sig, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    x->step = "close_range";
    if (x->first_cloexec_fd >= 0 && cloexec_from(x->first_cloexec_fd) < 0)
        goto fail;
    /* the error fd stays open into the trampoline, which makes it close-on-exec again */
    x->step = "exec";
    if (x->errfd >= 0 && fcntl(x->errfd, F_SETFD, 0) < 0)
        goto fail;
    syscall(SYS_execveat, x->trampoline_fd, "", x->argv, x->envp, AT_EMPTY_PATH);
    if (errno == ENOSYS || errno == EPERM || errno == EACCES) {
        /* execveat refused (a seccomp profile): the same memfd by its /proc path, never the
           program itself */
        char path[32] = "/proc/self/fd/";
        char digits[12];
        int n = 14, d = 0, v = x->trampoline_fd;
        do
            digits[d++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (d > 0)
            path[n++] = digits[--d];
        path[n] = 0;
        execve(path, x->argv, x->envp);
    }
fail:
    {
        int err = errno;
        if (x->errfd >= 0)
            fcntl(x->errfd, F_SETFD, FD_CLOEXEC);
        report(errfd, x->step, err);
        return -err;
    }
}

/* ---- the init's wait for start ----------------------------------------------------------------
   While it waits for `start` the init needs no program text resident: the resident pages of the
   read-only file mappings that hold no page of their own (libpython, libc, extension text and
   rodata: shared, still in the page cache, faulted back on use) are dropped.  A relocated page
   made read-only afterwards (RELRO) is a private copy, which must stay: /proc/self/pagemap tells
   page by page (top byte of each entry: 0x80 present, 0x40 swapped, 0x20 file-backed or shared).
   Each mapping is checked and dropped right away, in this single-threaded process, right before
   it blocks: Python running after the drop would fault the pages straight back
   (docs/NOTES.md, the waiting init's memory). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static int read_all(int fd, char **out)
{
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        ssize_t n;
        if (cap - len < 4096) {
            char *more = realloc(buf, cap * 2);
            if (!more)
                break;
            buf = more;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
    *out = buf;
    return (int)len;
}

static void drop_pages(int maps_fd, int pagemap_fd)
{
    char *maps = NULL, *line, *next;
    uint64_t *entries = NULL;
    size_t cap = 0;
    malloc_trim(0);
    if (read_all(maps_fd, &maps) < 0)
        return;
    for (line = maps; line && *line; line = next) {
        unsigned long lo, hi, n, i;
        char perms[5];
        int path_at = 0, keep = 0;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3 || !path_at ||
            line[path_at] != '/' || (strcmp(perms, "r-xp") != 0 && strcmp(perms, "r--p") != 0))
            continue;
        n = (hi - lo) >> 12;
        if (n > cap) {
            uint64_t *more = realloc(entries, n * sizeof *entries);
            if (!more)
                continue;
            entries = more;
            cap = n;
        }
        if (pread(pagemap_fd, entries, n * sizeof *entries, (off_t)((lo >> 12) * sizeof *entries)) !=
            (ssize_t)(n * sizeof *entries))
            continue;
        for (i = 0; i < n && !keep; i++) {
            unsigned top = (unsigned)(entries[i] >> 56);
            if ((top & 0x40) || (top & 0xA0) == 0x80) /* swapped, or present and not the file's */
                keep = 1;
        }
        if (!keep)
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    free(entries);
    free(maps);
}

int oci_wait(int maps_fd, int pagemap_fd, int ready_fd, const char *ready, size_t ready_len, int fifo_fd)
{
    char path[32] = "/proc/self/fd/";
    char digits[12];
    int n = 14, d = 0, v = fifo_fd, fd;
    if (maps_fd >= 0 && pagemap_fd >= 0)
        drop_pages(maps_fd, pagemap_fd);
    if (maps_fd >= 0)
        close(maps_fd);
    if (pagemap_fd >= 0)
        close(pagemap_fd);
    if (ready_fd >= 0) {
        ssize_t w;
        int e;
        do
            w = write(ready_fd, ready, ready_len);
        while (w < 0 && errno == EINTR);
        e = errno;
        close(ready_fd);
        if (w < 0)
            return -e;
    }
    if (fifo_fd < 0)
        return -EBADF;
    do
        digits[d++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (d > 0)
        path[n++] = digits[--d];
    path[n] = 0;
    do
        fd = open(path, O_WRONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    close(fifo_fd);
    if (write(fd, "0", 1) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* ---- libseccomp, opened on first use ---------------------------------------------------------
   Python builds the filter with these (security/seccomp.py) and exports it as BPF; oci_finalize
   loads it.  dlopen keeps the library's cost off every command that has no seccomp section.  Every
   entry point checks that the library is open: a call before oci_scmp_open fails. */

static struct {
    void *h;
    scmp_filter_ctx (*init)(uint32_t);
    void (*release)(scmp_filter_ctx);
    int (*arch_add)(scmp_filter_ctx, uint32_t);
    uint32_t (*arch_resolve_name)(const char *);
    int (*syscall_resolve_name)(const char *);
    int (*rule_add_array)(scmp_filter_ctx, uint32_t, int, unsigned int, const struct scmp_arg_cmp *);
    int (*export_bpf)(const scmp_filter_ctx, int);
    const struct scmp_version *(*version)(void);
} scmp;

int oci_scmp_open(void)
{
    void *h;
    if (scmp.h)
        return 0;
    h = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return -ELIBACC;
#define SYM(field, name) if (!(*(void **)&scmp.field = dlsym(h, name))) { memset(&scmp, 0, sizeof scmp); dlclose(h); return -ELIBBAD; }
    SYM(init, "seccomp_init")
    SYM(release, "seccomp_release")
    SYM(arch_add, "seccomp_arch_add")
    SYM(arch_resolve_name, "seccomp_arch_resolve_name")
    SYM(syscall_resolve_name, "seccomp_syscall_resolve_name")
    SYM(rule_add_array, "seccomp_rule_add_array")
    SYM(export_bpf, "seccomp_export_bpf")
    SYM(version, "seccomp_version")
#undef SYM
    scmp.h = h;
    return 0;
}

int oci_scmp_version(unsigned int *major, unsigned int *minor, unsigned int *micro)
{
    const struct scmp_version *v;
    if (!scmp.h)
        return -ELIBACC;
    v = scmp.version();
    if (!v)
        return -ELIBBAD;
    *major = v->major;
    *minor = v->minor;
    *micro = v->micro;
    return 0;
}

void *oci_scmp_init(uint32_t def_action) { return scmp.h ? scmp.init(def_action) : NULL; }

void oci_scmp_release(void *ctx)
{
    if (scmp.h && ctx)
        scmp.release(ctx);
}

int oci_scmp_arch_add(void *ctx, uint32_t arch) { return scmp.h && ctx ? scmp.arch_add(ctx, arch) : -ELIBACC; }

/* 0 (libseccomp's "no such architecture") while the library is not open */
uint32_t oci_scmp_arch_resolve(const char *name) { return scmp.h ? scmp.arch_resolve_name(name) : 0; }

/* -ELIBACC while the library is not open (libseccomp's own answers are the syscall's number,
   -1 for an unknown name, or a pseudo number below -10000) */
int oci_scmp_syscall_resolve(const char *name) { return scmp.h ? scmp.syscall_resolve_name(name) : -ELIBACC; }

int oci_scmp_export_bpf(void *ctx, int fd) { return scmp.h && ctx ? scmp.export_bpf(ctx, fd) : -ELIBACC; }

int oci_scmp_rule_add(void *ctx, uint32_t action, int nr, unsigned int argc, const struct oci_scmp_arg *args)
{
    struct scmp_arg_cmp a[6];
    unsigned int i;
    if (!scmp.h || !ctx)
        return -ELIBACC;
    if (argc > 6)
        return -EINVAL;
    for (i = 0; i < argc; i++) {
        a[i].arg = args[i].arg;
        a[i].op = (enum scmp_compare)args[i].op;
        a[i].datum_a = args[i].a;
        a[i].datum_b = args[i].b;
    }
    return scmp.rule_add_array(ctx, action, nr, argc, a);
}

/* 0 when the kernel accepts these seccomp(2) filter flags: with a NULL program a known flag set
   gets EFAULT, an unknown one EINVAL (the probe libseccomp and runc use). */
int oci_seccomp_flags_ok(unsigned int flags)
{
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 && errno == EFAULT)
        return 0;
    return -EINVAL;
}

/* ---- process attributes --------------------------------------------------------------------- */

struct oci_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

int oci_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice, unsigned int priority,
                      unsigned long long runtime, unsigned long long deadline, unsigned long long period)
{
    struct oci_sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sched_policy = policy;
    a.sched_flags = flags;
    a.sched_nice = nice;
    a.sched_priority = priority;
    a.sched_runtime = runtime;
    a.sched_deadline = deadline;
    a.sched_period = period;
    a.sched_util_min = 0;
    a.sched_util_max = 1024;  /* SCHED_CAPACITY_SCALE: no clamp unless the spec grows the fields */
    RET(syscall(SYS_sched_setattr, pid, &a, 0));
}

int oci_ioprio_set(int which, int who, int ioprio) { RET(syscall(SYS_ioprio_set, which, who, ioprio)); }

/* ---- bpf(2) (cgroups/ebpf.py builds the program and the attrs without pointers) ------------- */
#include <linux/bpf.h>

int oci_bpf(int cmd, void *attr, unsigned int size) { RET(syscall(SYS_bpf, cmd, attr, size)); }

int oci_bpf_prog_load(unsigned int prog_type, const void *insns, unsigned int insn_cnt, const char *license,
                      unsigned int log_level, char *log, unsigned int log_size, const char *name)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = prog_type;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = insn_cnt;
    a.license = (uint64_t)(uintptr_t)license;
    a.log_level = log_level;
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = log ? log_size : 0;
    if (name)
        strncpy(a.prog_name, name, sizeof a.prog_name - 1);
    RET(syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a));
}

int oci_bpf_prog_query(int target_fd, unsigned int attach_type, uint32_t *ids, unsigned int *count)
{
    union bpf_attr a;
    long r;
    memset(&a, 0, sizeof a);
    a.query.target_fd = (uint32_t)target_fd;
    a.query.attach_type = attach_type;
    a.query.prog_ids = (uint64_t)(uintptr_t)ids;
    a.query.prog_cnt = *count;
    r = syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof a);
    if (r < 0)
        return -errno;
    *count = a.query.prog_cnt;
    return 0;
}

/* ---- the new mount API (mounts made on fds, detached until attached) and fstatfs -------- */
#include <sys/vfs.h>

/* the same number on every architecture (the unified table from 424 on) */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif

int oci_open_tree(int dirfd, const char *path, unsigned int flags)
{ RET(syscall(SYS_open_tree, dirfd, path, flags)); }

int oci_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                   unsigned int flags)
{ RET(syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags)); }

int oci_fsopen(const char *fsname, unsigned int flags) { RET(syscall(SYS_fsopen, fsname, flags)); }

int oci_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)
{ RET(syscall(SYS_fsconfig, fd, cmd, key, value, aux)); }

int oci_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{ RET(syscall(SYS_fsmount, fd, flags, attr_flags)); }

long long oci_fstatfs_type(int fd)
{
    struct statfs st;
    if (fstatfs(fd, &st) < 0)
        return -errno;
    return (long long)(unsigned int)st.f_type;  /* magic numbers are 32-bit */
}

/* ---- libseccomp: per-architecture syscall numbers (the -ENOSYS stub, security/seccomp.py) -------
   Looked up on first use from the handle oci_scmp_open holds. */

static int (*scmp_resolve_arch)(uint32_t, const char *);
static uint32_t (*scmp_arch_native)(void);

int oci_scmp_syscall_resolve_arch(uint32_t arch, const char *name)
{
    if (!scmp.h)
        return -ELIBACC;
    if (!scmp_resolve_arch
        && !(*(void **)&scmp_resolve_arch = dlsym(scmp.h, "seccomp_syscall_resolve_name_arch")))
        return -ELIBBAD;
    return scmp_resolve_arch(arch, name);
}

uint32_t oci_scmp_arch_native(void)
{
    if (!scmp.h)
        return 0;
    if (!scmp_arch_native && !(*(void **)&scmp_arch_native = dlsym(scmp.h, "seccomp_arch_native")))
        return 0;
    return scmp_arch_native();
}

/* ---- fork with the child born in a cgroup2 cgroup: clone3(CLONE_INTO_CGROUP) (Linux 5.7) ----------
   os.fork's protocol around it (PyOS_BeforeFork, then PyOS_AfterFork_Child or _Parent), with the
   GIL, which cffi released for the call, taken back meanwhile as os.fork holds it.  As glibc's
   fork, which the raw syscall bypasses: the child's thread id goes to (and is cleared at its exit
   from) the word glibc keeps it in, this thread's clear_child_tid address (PR_GET_TID_ADDRESS),
   and the child registers the robust futex list again (the kernel drops it at fork; this process
   is single-threaded and holds no robust mutex, so the list is empty).  No atfork handler runs:
   nothing this runtime loads registers one.  Returns the child's pid (0 in the child) or -errno
   from clone3, nothing forked: ENOSYS (before 5.3, or a seccomp profile hides it), E2BIG or
   EINVAL (before 5.7), EPERM (a profile), or what a write to cgroup.procs would meet. */
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
#define OCI_CLONE_CHILD_CLEARTID 0x00200000ULL
#define OCI_CLONE_CHILD_SETTID 0x01000000ULL
#define OCI_CLONE_INTO_CGROUP 0x200000000ULL

struct oci_clone_args {  /* struct clone_args up to .cgroup (CLONE_ARGS_SIZE_VER2, 88 bytes) */
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};

int oci_fork_into_cgroup(int cgroup_fd)
{
    struct oci_clone_args args;
    int *tid = NULL;
    void *robust = NULL;
    size_t robust_len = 0;
    long pid;
    int err;
    PyGILState_STATE gil;

    if (cgroup_fd < 0)
        return -EBADF;
    memset(&args, 0, sizeof args);
    args.flags = OCI_CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_fd;
    if (prctl(PR_GET_TID_ADDRESS, &tid, 0, 0, 0) == 0 && tid) {
        args.flags |= OCI_CLONE_CHILD_SETTID | OCI_CLONE_CHILD_CLEARTID;
        args.child_tid = (uint64_t)(uintptr_t)tid;
    }
    if (syscall(SYS_get_robust_list, 0, &robust, &robust_len) != 0)
        robust = NULL;
    gil = PyGILState_Ensure();
    PyOS_BeforeFork();
    pid = syscall(SYS_clone3, &args, sizeof args);
    err = errno;
    if (pid == 0) {
        if (robust)
            syscall(SYS_set_robust_list, robust, robust_len);
        PyOS_AfterFork_Child();
    } else {
        PyOS_AfterFork_Parent();
    }
    PyGILState_Release(gil);
    return pid < 0 ? -err : (int)pid;
}
