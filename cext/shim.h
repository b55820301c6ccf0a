/* The shim's C functions (cext/shim.c).  This file is also the cdef of the cffi binding
   (cext/build_shim.py drops the preprocessor lines and hands the rest to cffi): keep it to plain
   declarations cffi parses (no macros, no inline code, fixed-size types from stdint.h).

   Every function returns 0 or a result >= 0 on success and -errno on failure; ociruntime/_sys.py
   (the binding's only importer) turns negatives into OSError.  Only what Python's os module lacks,
   the final steps that must not run as Python, and libseccomp's loading belong here. */
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
int oci_sched_setattr(int pid, unsigned int policy, unsigned long long flags, int nice, unsigned int priority,
                      unsigned long long runtime, unsigned long long deadline, unsigned long long period);
int oci_ioprio_set(int which, int who, int ioprio);

/* bpf(2) with an attr that holds no pointer (attach, detach, get_fd_by_id); the two commands that
   pass buffers take them here and build the attr themselves, so no address crosses into Python */
int oci_bpf(int cmd, void *attr, unsigned int size);
int oci_bpf_prog_load(unsigned int prog_type, const void *insns, unsigned int insn_cnt, const char *license,
                      unsigned int log_level, char *log, unsigned int log_size, const char *name);
int oci_bpf_prog_query(int target_fd, unsigned int attach_type, uint32_t *ids, unsigned int *count);

/* The credential, capability, no_new_privs and seccomp steps of a container process, in runc's
   order; run by the init before it reports ready (and by exec's process before its exec).  On
   failure `step` names the step that failed. */
struct oci_final {
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
    int seccomp_listener_sock;   /* SCMP_ACT_NOTIFY: connected socket of the agent, -1 for none */
    const char *seccomp_listener_msg;  /* container process state JSON sent with the fd */
    size_t seccomp_listener_len;
    const char *cwd;             /* chdir after the credentials change; NULL: stay */
    const char *step;            /* out: the failed step */
};
int oci_finalize(struct oci_final *x);

/* A sealed memfd (close-on-exec) holding the trampoline (cext/trampoline.c), made before seccomp
   is loaded; oci_exec runs it. */
int oci_trampoline(void);

/* The final execve, through the trampoline: signals reset, every fd from first_cloexec_fd on made
   close-on-exec (errfd excepted, which the trampoline's argv names), then execveat(trampoline_fd,
   "", argv, envp, AT_EMPTY_PATH), or execve("/proc/self/fd/N") where execveat is refused.  argv
   is the trampoline's ("oci-trampoline:<errfd>", path, the program's argv...).  Returns only on
   failure, after writing "step:errno\n" to errfd (fd 2 if errfd < 0). */
struct oci_exec {
    int trampoline_fd;
    char *const *argv;
    char *const *envp;
    int errfd;
    int first_cloexec_fd;
    const char *step;            /* out: the failed step */
};
int oci_exec(struct oci_exec *x);

/* The init's wait for start.  With maps_fd and pagemap_fd (this process's /proc/self/maps and
   pagemap, opened while it could; -1 for no drop): give free heap back, then, mapping by mapping,
   check that a read-only file mapping holds no page of its own and drop its resident pages (the
   check and the drop in this same single-threaded moment; those fds closed).  Then send `ready`
   on ready_fd and close it, block opening /proc/self/fd/<fifo_fd> (an O_PATH fd of exec.fifo)
   for writing until `start` opens it for reading, write the byte that releases start, close
   fifo_fd.  Returns the fifo's new write fd (close-on-exec). */
int oci_wait(int maps_fd, int pagemap_fd, int ready_fd, const char *ready, size_t ready_len, int fifo_fd);

/* libseccomp, opened on first use (oci_scmp_open first; every other entry point fails with
   -ELIBACC, or returns NULL/0, while it is not open); results are libseccomp's own */
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

/* the new mount API (open_tree, move_mount, fsopen, fsconfig, fsmount: an fd, or -errno) and
   fstatfs (the magic number of the filesystem an fd is on, or -errno) */
int oci_open_tree(int dirfd, const char *path, unsigned int flags);
int oci_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                   unsigned int flags);
int oci_fsopen(const char *fsname, unsigned int flags);
int oci_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux);
int oci_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
long long oci_fstatfs_type(int fd);

/* libseccomp's per-architecture syscall numbers and the native architecture (the -ENOSYS stub of
   security/seccomp.py); -ELIBACC / 0 while the library is not open, -ELIBBAD when it lacks them */
int oci_scmp_syscall_resolve_arch(uint32_t arch, const char *name);
uint32_t oci_scmp_arch_native(void);

/* fork(), the child born in the cgroup2 cgroup of the directory fd cgroup_fd (clone3 with
   CLONE_INTO_CGROUP), with CPython's fork protocol around it, as os.fork: the child's pid, 0 in the
   child, -errno when clone3 (or the flag) is refused and nothing was forked */
int oci_fork_into_cgroup(int cgroup_fd);

#endif
