/* The C half of ociruntime: thin syscall wrappers and the final steps before execve.
 *
 * Policy lives in Python; this file only does what Python's os module cannot: namespace and mount
 * syscalls, and the credential/capability/seccomp/exec sequence that must run without the
 * interpreter in between (no allocation, no Python after the first credential change).
 */
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

/* ---- the last steps before execve ---------------------------------------------------------- */

static void report(int fd, const char *step, int err)
{
    /* "step:errno\n" with no allocation (async-signal-safe) */
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

static int load_seccomp(const struct oci_exec *x, const char **step)
{
    struct sock_fprog prog = { x->seccomp_len, (struct sock_filter *)x->seccomp_filter };
    long fd;
    *step = "seccomp";
    fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, x->seccomp_flags, &prog);
    if (fd < 0)
        return -1;
    if (x->seccomp_listener_sock >= 0) {
        /* the first syscalls under the filter: SCMP_ACT_NOTIFY is refused for sendmsg/send */
        *step = "seccomp_listener";
        if (send_listener(x->seccomp_listener_sock, (int)fd, x->seccomp_listener_msg,
                          x->seccomp_listener_len) < 0)
            return -1;
        close((int)fd);
        close(x->seccomp_listener_sock);
    }
    return 0;
}

static int apply_caps(const struct oci_exec *x)
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

int oci_exec(const struct oci_exec *x)
{
    int errfd = x->errfd >= 0 ? x->errfd : 2;
    const char *step;
    sigset_t all;
    int sig, cap;

    /* Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: give the process a
       clean slate.  Errors (SIGKILL, SIGSTOP) are expected and harmless. */
    for (sig = 1; sig < 65; sig++)
        signal(sig, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    step = "close_range";
    if (x->first_cloexec_fd >= 0 &&
        syscall(SYS_close_range, x->first_cloexec_fd, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        goto fail;
    if (x->seccomp_filter && x->seccomp_early) {
        if (load_seccomp(x, &step) < 0)
            goto fail;
    }
    if (x->set_caps) {
        step = "capbset_drop";
        for (cap = 0; cap <= x->last_cap; cap++)
            if (!((x->bounding >> cap) & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                goto fail;
    }
    if (x->set_user) {
        step = "keepcaps";
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            goto fail;
        step = "setgroups";
        if (x->set_groups && setgroups((size_t)x->ngroups, (const gid_t *)x->groups) < 0)
            goto fail;
        step = "setresgid";
        if (setresgid(x->gid, x->gid, x->gid) < 0)
            goto fail;
        step = "setresuid";
        if (setresuid(x->uid, x->uid, x->uid) < 0)
            goto fail;
        step = "keepcaps";
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
            goto fail;
    }
    if (x->set_caps) {
        step = "capset";
        if (apply_caps(x) < 0)
            goto fail;
    }
    if (x->cwd) {
        step = "chdir";
        if (chdir(x->cwd) < 0)
            goto fail;
    }
    if (x->no_new_privs) {
        step = "no_new_privs";
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            goto fail;
    }
    if (x->seccomp_filter && !x->seccomp_early) {
        if (load_seccomp(x, &step) < 0)
            goto fail;
    }
    step = "exec";
    execve(x->path, x->argv, x->envp);
fail:
    {
        int err = errno;
        report(errfd, step, err);
        return -err;
    }
}

/* ---- libseccomp, opened on first use ---------------------------------------------------------
   Python builds the filter with these (security/seccomp.py) and exports it as BPF; oci_exec loads
   it.  dlopen keeps the library's cost off every command that has no seccomp section. */

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
#define SYM(field, name) if (!(*(void **)&scmp.field = dlsym(h, name))) { dlclose(h); return -ELIBBAD; }
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
    const struct scmp_version *v = scmp.version();
    *major = v->major;
    *minor = v->minor;
    *micro = v->micro;
    return 0;
}

void *oci_scmp_init(uint32_t def_action) { return scmp.init(def_action); }
void oci_scmp_release(void *ctx) { scmp.release(ctx); }
int oci_scmp_arch_add(void *ctx, uint32_t arch) { return scmp.arch_add(ctx, arch); }
uint32_t oci_scmp_arch_resolve(const char *name) { return scmp.arch_resolve_name(name); }
int oci_scmp_syscall_resolve(const char *name) { return scmp.syscall_resolve_name(name); }
int oci_scmp_export_bpf(void *ctx, int fd) { return scmp.export_bpf(ctx, fd); }

int oci_scmp_rule_add(void *ctx, uint32_t action, int nr, unsigned int argc, const struct oci_scmp_arg *args)
{
    struct scmp_arg_cmp a[6];
    unsigned int i;
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

/* bpf(2): Python builds union bpf_attr (cgroups/ebpf.py); the kernel may write results back into it */
int oci_bpf(int cmd, void *attr, unsigned int size) { RET(syscall(SYS_bpf, cmd, attr, size)); }

/* the waiting init gives free heap back before it drops its file pages (oci_wait_fifo) */
#include <sys/mman.h>
#include <malloc.h>
int oci_malloc_trim(void) { return malloc_trim(0); }

/* The init's wait for start: drop the resident pages of n (addr, len) ranges (program text, which
   running Python would fault straight back in), then, if ready_fd >= 0, send the ready message on
   it and close it (so create returns only once the pages are dropped: no Python runs in between),
   then block opening the fifo for writing until `start` opens it for reading, and write the byte
   that releases it. */
int oci_wait_fifo(int dirfd, const char *name, const unsigned long *ranges, int n,
                  int ready_fd, const char *ready, size_t ready_len)
{
    for (int i = 0; i < n; i++)
        madvise((void *)ranges[2 * i], ranges[2 * i + 1], MADV_DONTNEED);
    if (ready_fd >= 0) {
        ssize_t w;
        do w = write(ready_fd, ready, ready_len); while (w < 0 && errno == EINTR);
        int e = errno;
        close(ready_fd);
        if (w < 0)
            return -e;
    }
    int fd;
    do fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    int r = write(fd, "0", 1) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* ---- fds, locks and limits for create/run/exec (ociruntime/_sys.py): these commands load this
   shim anyway, while _socket, fcntl, select and resource are a library to load each */
#include <net/if.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

/* the parent/child channel (process/channel.py): AF_UNIX SOCK_SEQPACKET, close-on-exec */
int oci_seqpacket_pair(int *fds) { RET(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)); }

/* EINTR is returned (the Python wrappers retry), so a signal handler runs while we wait */
int oci_flock(int fd, int op) { RET(flock(fd, op)); }

/* poll(2) over n fds, all for the same events; their revents are written to revents[] */
int oci_poll(const int *fds, int n, short events, short *revents, int timeout)
{
    struct pollfd p[16];
    int i, r;
    if (n < 0 || n > 16)
        return -EINVAL;
    for (i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = events;
        p[i].revents = 0;
    }
    r = poll(p, (nfds_t)n, timeout);
    if (r < 0)
        return -errno;
    for (i = 0; i < n; i++)
        revents[i] = p[i].revents;
    return r;
}

/* The resource number of an RLIMIT_* name (they differ between architectures), -EINVAL if none */
int oci_rlimit_number(const char *name)
{
    static const struct { const char *name; int num; } t[] = {
        {"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
        {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_OFILE", RLIMIT_OFILE},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
        {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
        {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    };
    size_t i;
    for (i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(name, t[i].name) == 0)
            return t[i].num;
    return -EINVAL;
}

/* prlimit64 on ourselves: 64-bit limits on every architecture; ~0 is RLIM64_INFINITY */
int oci_setrlimit(int resource, unsigned long long soft, unsigned long long hard)
{
    struct { uint64_t cur, max; } r = { soft, hard };
    RET(syscall(SYS_prlimit64, 0, resource, &r, NULL));
}

/* Set IFF_UP on the network interface `name` of our network namespace (SIOCGIFFLAGS, then
   SIOCSIFFLAGS with IFF_UP added) */
int oci_ifup(const char *name)
{
    struct ifreq ifr;
    int fd, err = 0;
    if (strlen(name) >= IFNAMSIZ)
        return -EINVAL;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, name);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        err = -errno;
    else {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
            err = -errno;
    }
    close(fd);
    return err;
}

/* ---- a network namespace made beside the caller --------------------------------------------
   Creating a network namespace takes ~0.6 ms here (the other namespaces together ~0.1): create
   makes it, with its loopback up, on a thread of its own while it validates and prepares, and
   the init joins it (setns) instead of creating it.  The shim's threads touch nothing of
   Python's, block every signal, and are joined before the caller forks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int start_thread(pthread_t *t, int *running, void *(*fn)(void *))
{
    pthread_attr_t attr;
    sigset_t all, old;
    int r;
    if (*running)
        return -EBUSY;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    pthread_attr_setstacksize(&attr, 64 * 1024);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread starts with every signal blocked */
    r = pthread_create(t, &attr, fn, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    *running = !r;
    return -r;
}

static int join_thread(pthread_t t, int *running)
{
    int r = *running ? pthread_join(t, NULL) : ECHILD; /* ECHILD: none was started */
    *running = 0;
    return -r;
}

static pthread_t netns_thread;
static int netns_result, netns_running;

/* its loopback is brought up here too (~0.2 ms of the kernel's, off the init's path): the init
   of a namespace made this way has nothing left to do in it */
static void *netns_make(void *arg)
{
    int fd, r;
    (void)arg;
    if (unshare(CLONE_NEWNET) < 0) {
        netns_result = -errno;
        return NULL;
    }
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        netns_result = -errno;
        return NULL;
    }
    r = oci_ifup("lo");
    if (r < 0) {
        close(fd);
        fd = r;
    }
    netns_result = fd;
    return NULL;
}

int oci_netns_start(void) { return start_thread(&netns_thread, &netns_running, netns_make); }

int oci_netns_wait(void)
{
    int r = join_thread(netns_thread, &netns_running);
    return r ? r : netns_result;
}

/* ---- what a waiting init can drop, found beside the caller ------------------------------------
   process/init.py sheds, while the init waits for start, the resident pages of the file mappings
   that hold no page of their own (read-only text and data of the program and its libraries): a
   relocated page made read-only afterwards (RELRO) is a private copy, which must stay.
   /proc/self/pagemap tells page by page (top byte of each entry: 0x80 present, 0x40 swapped,
   0x20 file-backed or shared); walking it took ~0.3 ms of the init.  create scans on a thread
   of its own while it validates and prepares (the init is its fork: the mappings are the same,
   and a library loaded after the scan is only left resident).  tests/unit/test_shed.py checks
   it against its own reading of maps and pagemap. */
static pthread_t shed_thread;
static unsigned long *shed_out;
static int shed_count, shed_running;

static int read_all(const char *path, char **out)
{
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!buf || fd < 0) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
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
    close(fd);
    buf[len] = 0;
    *out = buf;
    return (int)len;
}

static void *shed_scan(void *arg)
{
    char *maps = NULL, *line, *next;
    uint64_t *entries = NULL;
    size_t cap = 0;
    int pagemap;
    (void)arg;
    shed_count = 0;
    if (read_all("/proc/self/maps", &maps) < 0)
        return NULL;
    pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) {
        free(maps);
        return NULL;
    }
    for (line = maps; line && *line; line = next) {
        unsigned long lo, hi, n, i;
        char perms[5];
        int path_at = 0, keep = 1;
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
        if (pread(pagemap, entries, n * sizeof *entries, (off_t)((lo >> 12) * sizeof *entries)) !=
            (ssize_t)(n * sizeof *entries))
            continue;
        for (i = 0; i < n && keep; i++) {
            unsigned top = (unsigned)(entries[i] >> 56);
            if ((top & 0x40) || (top & 0xA0) == 0x80) /* swapped, or present and not the file's */
                keep = 0;
        }
        if (!keep)
            continue;
        unsigned long *more = realloc(shed_out, (size_t)(shed_count + 1) * 2 * sizeof *shed_out);
        if (!more)
            break;
        shed_out = more;
        shed_out[2 * shed_count] = lo;
        shed_out[2 * shed_count + 1] = hi - lo;
        shed_count++;
    }
    close(pagemap);
    free(entries);
    free(maps);
    return NULL;
}

int oci_shed_start(void) { return start_thread(&shed_thread, &shed_running, shed_scan); }

int oci_shed_wait(unsigned long **ranges)
{
    int r = join_thread(shed_thread, &shed_running);
    if (r)
        return r;
    *ranges = shed_out;
    shed_out = NULL;
    r = shed_count;
    shed_count = 0;
    return r;
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
