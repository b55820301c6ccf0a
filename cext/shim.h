/* The shim's C functions (cext/shim.c), bound for Python by cext/shimmodule.c.  Every function
   returns 0 or a result >= 0 on success and -errno on failure; ociruntime/_sys.py turns negatives
   into OSError.  Keep this list short: only what Python's os module lacks or what must not run as
   Python (oci_exec). */
#ifndef OCI_SHIM_H
#define OCI_SHIM_H
#include <stddef.h>
#include <stdint.h>

int oci_unshare(int flags);
int oci_setns(int fd, int nstype);
int oci_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data);
int oci_umount2(const char *target, int flags);
int oci_pivot_root(const char *new_root, const char *put_old);
int oci_sethostname(const char *name, size_t len);
int oci_setdomainname(const char *name, size_t len);
int oci_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int oci_openat2(int dirfd, const char *path, int flags, int mode, unsigned long long resolve);
int oci_mount_setattr(int dirfd, const char *path, unsigned int flags, unsigned long long attr_set,
                      unsigned long long attr_clr, unsigned long long propagation);
int oci_personality(unsigned long persona);
int oci_join_session_keyring(const char *name);

struct oci_exec {
    const char *path;            /* absolute path, resolved by Python */
    char *const *argv;
    char *const *envp;
    const char *cwd;             /* chdir after the credentials change; NULL: stay */
    int errfd;                   /* failure report "step:errno\n"; -1: report on fd 2 */
    int set_user;                /* change credentials to uid/gid/groups */
    unsigned int uid, gid;
    int set_groups;              /* 0 where setgroups is denied (user namespace without the map) */
    int ngroups;
    const unsigned int *groups;
    int set_caps;                /* apply the five capability sets */
    int last_cap;
    uint64_t bounding, effective, permitted, inheritable, ambient;
    int no_new_privs;
    const void *seccomp_filter;  /* struct sock_filter[], NULL for none */
    unsigned short seccomp_len;
    unsigned int seccomp_flags;
    int seccomp_early;           /* load before dropping caps (needed without no_new_privs) */
    int first_cloexec_fd;        /* every fd >= this gets FD_CLOEXEC (3 + preserve_fds) */
    int seccomp_listener_sock;   /* SCMP_ACT_NOTIFY: connected socket of the agent, -1 for none */
    const char *seccomp_listener_msg;  /* container process state JSON sent with the fd */
    size_t seccomp_listener_len;
};
int oci_exec(const struct oci_exec *x);

/* libseccomp (dlopen on first use; oci_scmp_open first); results are libseccomp's own */
struct oci_scmp_arg { unsigned int arg; int op; uint64_t a, b; };
int oci_scmp_open(void);
int oci_scmp_version(unsigned int *major, unsigned int *minor, unsigned int *micro);
void *oci_scmp_init(uint32_t def_action);
void oci_scmp_release(void *ctx);
int oci_scmp_arch_add(void *ctx, uint32_t arch);
uint32_t oci_scmp_arch_resolve(const char *name);
int oci_scmp_syscall_resolve(const char *name);
int oci_scmp_export_bpf(void *ctx, int fd);
int oci_scmp_rule_add(void *ctx, uint32_t action, int nr, unsigned int argc, const struct oci_scmp_arg *args);
int oci_seccomp_flags_ok(unsigned int flags);
int oci_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice, unsigned int priority,
                      unsigned long long runtime, unsigned long long deadline, unsigned long long period);
int oci_ioprio_set(int which, int who, int ioprio);
int oci_bpf(int cmd, void *attr, unsigned int size);
int oci_malloc_trim(void);
int oci_wait_fifo(int dirfd, const char *name, const unsigned long *ranges, int n,
                  int ready_fd, const char *ready, size_t ready_len);
/* fds, locks and limits for create/run/exec, which load this shim anyway: not _socket, fcntl,
   select and resource (a library to load each) */
int oci_seqpacket_pair(int *fds);
int oci_flock(int fd, int op);
int oci_poll(const int *fds, int n, short events, short *revents, int timeout);
int oci_rlimit_number(const char *name);
int oci_setrlimit(int resource, unsigned long long soft, unsigned long long hard);
int oci_ifup(const char *name);
/* a network namespace made on a thread of the shim's while the caller goes on: start, then wait
   (joins the thread; an fd of the namespace, or -errno) */
int oci_netns_start(void);
int oci_netns_wait(void);
/* the file mappings a waiting init may drop, found on a thread of the shim's: start, then wait
   (joins the thread; the number of (start, length) pairs in *ranges, which the caller frees) */
int oci_shed_start(void);
int oci_shed_wait(unsigned long **ranges);

/* the new mount API (open_tree, move_mount, fsopen, fsconfig, fsmount: an fd, or -errno) and
   fstatfs (the magic number of the filesystem an fd is on, or -errno) */
int oci_open_tree(int dirfd, const char *path, unsigned int flags);
int oci_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                   unsigned int flags);
int oci_fsopen(const char *fsname, unsigned int flags);
int oci_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux);
int oci_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
long long oci_fstatfs_type(int fd);

#endif
