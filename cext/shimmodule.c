/* ociruntime._shim: the Python binding of the shim's C functions (cext/shim.c, cext/shim.h).
 *
 * Each function takes Python ints and bytes (None for a NULL string), calls its oci_* namesake and
 * returns what it returned: a result >= 0, or -errno, which ociruntime/_sys.py turns into OSError.
 * Out-parameters come back in a tuple after that result.  Nothing here decides anything.
 *
 * A plain extension module, on the stable ABI: a cffi binding of the same functions cost create,
 * run and exec ~1 ms to load (_cffi_backend, its _io import and the shim; docs/NOTES.md, Speed).
 * The launcher (cext/launcher.c) links this file in and registers it as the built-in module
 * _ociruntime_shim, so the program loads no library for it at all.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim.h"

/* bytes without a NUL -> const char *, None -> NULL (an "O&" converter) */
static int opt_bytes(PyObject *o, void *out)
{
    char *s;
    Py_ssize_t n;
    if (o == Py_None) {
        *(const char **)out = NULL;
        return 1;
    }
    if (PyBytes_AsStringAndSize(o, &s, &n) < 0)
        return 0;
    if ((Py_ssize_t)strlen(s) != n) {
        PyErr_SetString(PyExc_ValueError, "embedded null byte");
        return 0;
    }
    *(const char **)out = s;
    return 1;
}

/* a tuple of bytes -> a NULL-terminated char *[] (PyMem_Free it); the tuple keeps the strings */
static char **string_array(PyObject *t)
{
    Py_ssize_t n, i;
    char **a;
    if (!PyTuple_Check(t)) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of bytes");
        return NULL;
    }
    n = PyTuple_Size(t);
    a = PyMem_Malloc(sizeof(char *) * (size_t)(n + 1));
    if (!a) {
        PyErr_NoMemory();
        return NULL;
    }
    for (i = 0; i < n; i++)
        if (!opt_bytes(PyTuple_GetItem(t, i), &a[i]) || !a[i]) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "expected bytes, not None");
            PyMem_Free(a);
            return NULL;
        }
    a[n] = NULL;
    return a;
}

#define RESULT(expr) return PyLong_FromLong((long)(expr))

static PyObject *py_unshare(PyObject *m, PyObject *a)
{
    int flags;
    if (!PyArg_ParseTuple(a, "i", &flags))
        return NULL;
    RESULT(oci_unshare(flags));
}

static PyObject *py_setns(PyObject *m, PyObject *a)
{
    int fd, nstype;
    if (!PyArg_ParseTuple(a, "ii", &fd, &nstype))
        return NULL;
    RESULT(oci_setns(fd, nstype));
}

static PyObject *py_mount(PyObject *m, PyObject *a)
{
    const char *src, *target, *fstype, *data;
    unsigned long flags;
    if (!PyArg_ParseTuple(a, "O&yO&kO&", opt_bytes, &src, &target, opt_bytes, &fstype, &flags,
                          opt_bytes, &data))
        return NULL;
    RESULT(oci_mount(src, target, fstype, flags, data));
}

static PyObject *py_umount2(PyObject *m, PyObject *a)
{
    const char *target;
    int flags;
    if (!PyArg_ParseTuple(a, "yi", &target, &flags))
        return NULL;
    RESULT(oci_umount2(target, flags));
}

static PyObject *py_pivot_root(PyObject *m, PyObject *a)
{
    const char *new_root, *put_old;
    if (!PyArg_ParseTuple(a, "yy", &new_root, &put_old))
        return NULL;
    RESULT(oci_pivot_root(new_root, put_old));
}

/* sethostname and setdomainname: a name as bytes */
static PyObject *set_name(PyObject *a, int (*set)(const char *, size_t))
{
    const char *name;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(a, "y#", &name, &n))
        return NULL;
    RESULT(set(name, (size_t)n));
}

static PyObject *py_sethostname(PyObject *m, PyObject *a) { return set_name(a, oci_sethostname); }
static PyObject *py_setdomainname(PyObject *m, PyObject *a) { return set_name(a, oci_setdomainname); }

static PyObject *py_prctl(PyObject *m, PyObject *a)
{
    int option;
    unsigned long a2 = 0, a3 = 0, a4 = 0, a5 = 0;
    if (!PyArg_ParseTuple(a, "i|kkkk", &option, &a2, &a3, &a4, &a5))
        return NULL;
    RESULT(oci_prctl(option, a2, a3, a4, a5));
}

static PyObject *py_openat2(PyObject *m, PyObject *a)
{
    int dirfd, flags, mode;
    const char *path;
    unsigned long long resolve;
    if (!PyArg_ParseTuple(a, "iyiiK", &dirfd, &path, &flags, &mode, &resolve))
        return NULL;
    RESULT(oci_openat2(dirfd, path, flags, mode, resolve));
}

static PyObject *py_mount_setattr(PyObject *m, PyObject *a)
{
    int dirfd;
    const char *path;
    unsigned int flags;
    unsigned long long set, clr, propagation;
    if (!PyArg_ParseTuple(a, "iyIKKK", &dirfd, &path, &flags, &set, &clr, &propagation))
        return NULL;
    RESULT(oci_mount_setattr(dirfd, path, flags, set, clr, propagation));
}

static PyObject *py_personality(PyObject *m, PyObject *a)
{
    unsigned long persona;
    if (!PyArg_ParseTuple(a, "k", &persona))
        return NULL;
    RESULT(oci_personality(persona));
}

static PyObject *py_join_session_keyring(PyObject *m, PyObject *a)
{
    const char *name;
    if (!PyArg_ParseTuple(a, "O&", opt_bytes, &name))
        return NULL;
    RESULT(oci_join_session_keyring(name));
}

/* oci_exec(path, argv, envp, cwd, errfd, user, caps, last_cap, no_new_privs, seccomp,
            first_cloexec_fd): argv and envp tuples of bytes; user None or (uid, gid, groups), groups
   None (setgroups denied) or a tuple of ints; caps None or (bounding, effective, permitted,
   inheritable, ambient); seccomp None or (filter, flags, early, listener_sock, listener_msg), with
   listener_sock -1 for none.  Returns -errno only when a step (or execve) failed. */
static PyObject *py_exec(PyObject *m, PyObject *a)
{
    struct oci_exec x;
    PyObject *argv, *envp, *user, *caps, *sec, *groups = Py_None;
    char **av = NULL, **ev = NULL;
    unsigned int *gids = NULL;
    Py_ssize_t i, n;
    int ret = -EINVAL;

    memset(&x, 0, sizeof x);
    x.seccomp_listener_sock = -1;
    if (!PyArg_ParseTuple(a, "yO!O!O&iOOiiOi", &x.path, &PyTuple_Type, &argv, &PyTuple_Type, &envp,
                          opt_bytes, &x.cwd, &x.errfd, &user, &caps, &x.last_cap, &x.no_new_privs,
                          &sec, &x.first_cloexec_fd))
        return NULL;
    if (user != Py_None) {
        if (!PyArg_ParseTuple(user, "IIO", &x.uid, &x.gid, &groups))
            return NULL;
        x.set_user = 1;
        if (groups != Py_None) {
            if (!PyTuple_Check(groups)) {
                PyErr_SetString(PyExc_TypeError, "groups: expected a tuple of ints or None");
                return NULL;
            }
            n = PyTuple_Size(groups);
            gids = PyMem_Malloc(sizeof(unsigned int) * (size_t)(n ? n : 1));
            if (!gids)
                return PyErr_NoMemory();
            for (i = 0; i < n; i++) {
                gids[i] = (unsigned int)PyLong_AsUnsignedLong(PyTuple_GetItem(groups, i));
                if (PyErr_Occurred())
                    goto out;
            }
            x.set_groups = 1;
            x.ngroups = (int)n;
            x.groups = gids;
        }
    }
    if (caps != Py_None) {
        unsigned long long b, e, p, inh, amb;
        if (!PyArg_ParseTuple(caps, "KKKKK", &b, &e, &p, &inh, &amb))
            goto out;
        x.set_caps = 1;
        x.bounding = b, x.effective = e, x.permitted = p, x.inheritable = inh, x.ambient = amb;
    }
    if (sec != Py_None) {
        const char *filter, *msg;
        Py_ssize_t flen, mlen;
        if (!PyArg_ParseTuple(sec, "y#Iiiy#", &filter, &flen, &x.seccomp_flags, &x.seccomp_early,
                              &x.seccomp_listener_sock, &msg, &mlen))
            goto out;
        if (flen % 8 || flen / 8 > 0xFFFF) {
            PyErr_SetString(PyExc_ValueError, "seccomp filter: not a whole number of instructions, or too many");
            goto out;
        }
        x.seccomp_filter = filter;
        x.seccomp_len = (unsigned short)(flen / 8);
        x.seccomp_listener_msg = msg;
        x.seccomp_listener_len = (size_t)mlen;
    }
    if (!(av = string_array(argv)) || !(ev = string_array(envp)))
        goto out;
    x.argv = av;
    x.envp = ev;
    ret = oci_exec(&x);
out:
    PyMem_Free(av);
    PyMem_Free(ev);
    PyMem_Free(gids);
    if (PyErr_Occurred())
        return NULL;
    RESULT(ret);
}

/* ---- libseccomp: a filter context travels as its address (0 for NULL) */

static PyObject *py_scmp_open(PyObject *m, PyObject *a) { RESULT(oci_scmp_open()); }

static PyObject *py_scmp_version(PyObject *m, PyObject *a)
{
    unsigned int major, minor, micro;
    oci_scmp_version(&major, &minor, &micro);
    return Py_BuildValue("III", major, minor, micro);
}

static PyObject *py_scmp_init(PyObject *m, PyObject *a)
{
    unsigned int def;
    if (!PyArg_ParseTuple(a, "I", &def))
        return NULL;
    return PyLong_FromVoidPtr(oci_scmp_init(def));
}

static int context(PyObject *o, void *out)
{
    void *p = PyLong_AsVoidPtr(o);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "NULL seccomp context");
        return 0;
    }
    *(void **)out = p;
    return 1;
}

static PyObject *py_scmp_release(PyObject *m, PyObject *a)
{
    void *ctx;
    if (!PyArg_ParseTuple(a, "O&", context, &ctx))
        return NULL;
    oci_scmp_release(ctx);
    Py_RETURN_NONE;
}

static PyObject *py_scmp_arch_add(PyObject *m, PyObject *a)
{
    void *ctx;
    unsigned int arch;
    if (!PyArg_ParseTuple(a, "O&I", context, &ctx, &arch))
        return NULL;
    RESULT(oci_scmp_arch_add(ctx, arch));
}

static PyObject *py_scmp_arch_resolve(PyObject *m, PyObject *a)
{
    const char *name;
    if (!PyArg_ParseTuple(a, "y", &name))
        return NULL;
    return PyLong_FromUnsignedLong(oci_scmp_arch_resolve(name));
}

static PyObject *py_scmp_syscall_resolve(PyObject *m, PyObject *a)
{
    const char *name;
    if (!PyArg_ParseTuple(a, "y", &name))
        return NULL;
    RESULT(oci_scmp_syscall_resolve(name));
}

static PyObject *py_scmp_export_bpf(PyObject *m, PyObject *a)
{
    void *ctx;
    int fd;
    if (!PyArg_ParseTuple(a, "O&i", context, &ctx, &fd))
        return NULL;
    RESULT(oci_scmp_export_bpf(ctx, fd));
}

/* oci_scmp_rule_add(ctx, action, nr, conds): conds a tuple of up to 6 (arg, op, a, b) */
static PyObject *py_scmp_rule_add(PyObject *m, PyObject *a)
{
    void *ctx;
    unsigned int action;
    int nr;
    PyObject *conds;
    struct oci_scmp_arg args[6];
    Py_ssize_t n, i;
    if (!PyArg_ParseTuple(a, "O&IiO!", context, &ctx, &action, &nr, &PyTuple_Type, &conds))
        return NULL;
    n = PyTuple_Size(conds);
    if (n > 6) {
        PyErr_SetString(PyExc_ValueError, "more than 6 argument conditions");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        unsigned long long da, db;
        if (!PyArg_ParseTuple(PyTuple_GetItem(conds, i), "IiKK", &args[i].arg, &args[i].op, &da, &db))
            return NULL;
        args[i].a = da;
        args[i].b = db;
    }
    RESULT(oci_scmp_rule_add(ctx, action, nr, (unsigned int)n, args));
}

static PyObject *py_seccomp_flags_ok(PyObject *m, PyObject *a)
{
    unsigned int flags;
    if (!PyArg_ParseTuple(a, "I", &flags))
        return NULL;
    RESULT(oci_seccomp_flags_ok(flags));
}

/* ---- process attributes, bpf, memory */

static PyObject *py_sched_setattr(PyObject *m, PyObject *a)
{
    int pid, nice;
    unsigned int policy, priority;
    unsigned long long flags, runtime, deadline, period;
    if (!PyArg_ParseTuple(a, "iIKiIKKK", &pid, &policy, &flags, &nice, &priority, &runtime, &deadline,
                          &period))
        return NULL;
    RESULT(oci_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period));
}

static PyObject *py_ioprio_set(PyObject *m, PyObject *a)
{
    int which, who, ioprio;
    if (!PyArg_ParseTuple(a, "iii", &which, &who, &ioprio))
        return NULL;
    RESULT(oci_ioprio_set(which, who, ioprio));
}

/* oci_bpf(cmd, attr): attr a writable buffer (bytearray) the kernel may write results into */
static PyObject *py_bpf(PyObject *m, PyObject *a)
{
    int cmd, r;
    PyObject *obj;
    Py_buffer view;
    if (!PyArg_ParseTuple(a, "iO", &cmd, &obj))
        return NULL;
    if (PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE) < 0)
        return NULL;
    r = oci_bpf(cmd, view.buf, (unsigned int)view.len);
    PyBuffer_Release(&view);
    RESULT(r);
}

/* the address of a buffer's bytes (bytes or bytearray, for bpf_attr's pointer fields): valid while
   the caller keeps the object and does not resize it */
static PyObject *py_address_of(PyObject *m, PyObject *a)
{
    PyObject *obj, *r;
    Py_buffer view;
    if (!PyArg_ParseTuple(a, "O", &obj))
        return NULL;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    r = PyLong_FromVoidPtr(view.buf);
    PyBuffer_Release(&view);
    return r;
}

static PyObject *py_malloc_trim(PyObject *m, PyObject *a) { RESULT(oci_malloc_trim()); }

/* oci_wait_fifo(dirfd, name, ranges, ready_fd, ready): ranges a tuple of (addr, len) */
static PyObject *py_wait_fifo(PyObject *m, PyObject *a)
{
    int dirfd, ready_fd, r;
    const char *name, *ready;
    Py_ssize_t ready_len, n, i;
    PyObject *ranges;
    unsigned long *flat;
    if (!PyArg_ParseTuple(a, "iyO!iy#", &dirfd, &name, &PyTuple_Type, &ranges, &ready_fd, &ready, &ready_len))
        return NULL;
    n = PyTuple_Size(ranges);
    flat = PyMem_Malloc(sizeof(unsigned long) * (size_t)(2 * n + 1));
    if (!flat)
        return PyErr_NoMemory();
    for (i = 0; i < n; i++)
        if (!PyArg_ParseTuple(PyTuple_GetItem(ranges, i), "kk", &flat[2 * i], &flat[2 * i + 1])) {
            PyMem_Free(flat);
            return NULL;
        }
    Py_BEGIN_ALLOW_THREADS
    r = oci_wait_fifo(dirfd, name, flat, (int)n, ready_fd, ready, (size_t)ready_len);
    Py_END_ALLOW_THREADS
    PyMem_Free(flat);
    RESULT(r);
}

/* (result, fd0, fd1) */
static PyObject *py_seqpacket_pair(PyObject *m, PyObject *a)
{
    int fds[2] = {-1, -1};
    int r = oci_seqpacket_pair(fds);
    return Py_BuildValue("iii", r, fds[0], fds[1]);
}

/* flock and poll retry after a signal, once its Python handler ran (as fcntl.flock and
   select.poll do); the handler's exception ends the wait */
static PyObject *py_flock(PyObject *m, PyObject *a)
{
    int fd, op, r;
    if (!PyArg_ParseTuple(a, "ii", &fd, &op))
        return NULL;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = oci_flock(fd, op);
        Py_END_ALLOW_THREADS
        if (r != -EINTR)
            RESULT(r);
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* oci_poll(fds, events, timeout): (result, revents tuple), fds a tuple of up to 16; after a
   signal the wait goes on with what is left of ``timeout`` ms (-1: none) */
static PyObject *py_poll(PyObject *m, PyObject *a)
{
    PyObject *fds, *out;
    int ints[16], timeout, r;
    short events, rev[16];
    Py_ssize_t n, i;
    long long deadline;
    if (!PyArg_ParseTuple(a, "O!hi", &PyTuple_Type, &fds, &events, &timeout))
        return NULL;
    n = PyTuple_Size(fds);
    if (n > 16) {
        PyErr_SetString(PyExc_ValueError, "more than 16 fds");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        ints[i] = (int)PyLong_AsLong(PyTuple_GetItem(fds, i));
        if (PyErr_Occurred())
            return NULL;
        rev[i] = 0;
    }
    deadline = timeout >= 0 ? now_ms() + timeout : 0;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = oci_poll(ints, (int)n, events, rev, timeout);
        Py_END_ALLOW_THREADS
        if (r != -EINTR)
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
        if (timeout >= 0) {
            long long left = deadline - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
    }
    if (!(out = PyTuple_New(n)))
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(rev[i]);
        if (!v || PyTuple_SetItem(out, i, v) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return Py_BuildValue("iN", r, out);
}

static PyObject *py_rlimit_number(PyObject *m, PyObject *a)
{
    const char *name;
    if (!PyArg_ParseTuple(a, "y", &name))
        return NULL;
    RESULT(oci_rlimit_number(name));
}

static PyObject *py_setrlimit(PyObject *m, PyObject *a)
{
    int resource;
    unsigned long long soft, hard;
    if (!PyArg_ParseTuple(a, "iKK", &resource, &soft, &hard))
        return NULL;
    RESULT(oci_setrlimit(resource, soft, hard));
}

static PyObject *py_ifup(PyObject *m, PyObject *a)
{
    const char *name;
    if (!PyArg_ParseTuple(a, "y", &name))
        return NULL;
    RESULT(oci_ifup(name));
}

static PyObject *py_netns_start(PyObject *m, PyObject *a) { RESULT(oci_netns_start()); }

static PyObject *py_netns_wait(PyObject *m, PyObject *a)
{
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = oci_netns_wait();
    Py_END_ALLOW_THREADS
    RESULT(r);
}

static PyObject *py_shed_start(PyObject *m, PyObject *a) { RESULT(oci_shed_start()); }

/* (result, ((start, length), ...)) */
static PyObject *py_shed_wait(PyObject *m, PyObject *a)
{
    unsigned long *r = NULL;
    PyObject *out;
    int n, i;
    Py_BEGIN_ALLOW_THREADS
    n = oci_shed_wait(&r);
    Py_END_ALLOW_THREADS
    out = PyTuple_New(n > 0 ? n : 0);
    for (i = 0; out && i < n; i++) {
        PyObject *pair = Py_BuildValue("(kk)", r[2 * i], r[2 * i + 1]);
        if (!pair || PyTuple_SetItem(out, i, pair) < 0) {
            Py_CLEAR(out);
        }
    }
    free(r);
    return out ? Py_BuildValue("iN", n < 0 ? n : 0, out) : NULL;
}

/* ---- the new mount API and fstatfs */

static PyObject *py_open_tree(PyObject *m, PyObject *a)
{
    int dirfd;
    const char *path;
    unsigned int flags;
    if (!PyArg_ParseTuple(a, "iyI", &dirfd, &path, &flags))
        return NULL;
    RESULT(oci_open_tree(dirfd, path, flags));
}

static PyObject *py_move_mount(PyObject *m, PyObject *a)
{
    int from_dirfd, to_dirfd;
    const char *from_path, *to_path;
    unsigned int flags;
    if (!PyArg_ParseTuple(a, "iyiyI", &from_dirfd, &from_path, &to_dirfd, &to_path, &flags))
        return NULL;
    RESULT(oci_move_mount(from_dirfd, from_path, to_dirfd, to_path, flags));
}

static PyObject *py_fsopen(PyObject *m, PyObject *a)
{
    const char *fsname;
    unsigned int flags;
    if (!PyArg_ParseTuple(a, "yI", &fsname, &flags))
        return NULL;
    RESULT(oci_fsopen(fsname, flags));
}

static PyObject *py_fsconfig(PyObject *m, PyObject *a)
{
    int fd, aux;
    unsigned int cmd;
    const char *key, *value;
    if (!PyArg_ParseTuple(a, "iIO&O&i", &fd, &cmd, opt_bytes, &key, opt_bytes, &value, &aux))
        return NULL;
    RESULT(oci_fsconfig(fd, cmd, key, value, aux));
}

static PyObject *py_fsmount(PyObject *m, PyObject *a)
{
    int fd;
    unsigned int flags, attr_flags;
    if (!PyArg_ParseTuple(a, "iII", &fd, &flags, &attr_flags))
        return NULL;
    RESULT(oci_fsmount(fd, flags, attr_flags));
}

static PyObject *py_fstatfs_type(PyObject *m, PyObject *a)
{
    int fd;
    if (!PyArg_ParseTuple(a, "i", &fd))
        return NULL;
    return PyLong_FromLongLong(oci_fstatfs_type(fd));
}

#define F(name, fn) {name, (PyCFunction)(void (*)(void))fn, METH_VARARGS, NULL}
static PyMethodDef methods[] = {
    F("oci_unshare", py_unshare), F("oci_setns", py_setns), F("oci_mount", py_mount),
    F("oci_umount2", py_umount2), F("oci_pivot_root", py_pivot_root),
    F("oci_sethostname", py_sethostname), F("oci_setdomainname", py_setdomainname),
    F("oci_prctl", py_prctl), F("oci_openat2", py_openat2), F("oci_mount_setattr", py_mount_setattr),
    F("oci_personality", py_personality), F("oci_join_session_keyring", py_join_session_keyring),
    F("oci_exec", py_exec),
    F("oci_scmp_open", py_scmp_open), F("oci_scmp_version", py_scmp_version),
    F("oci_scmp_init", py_scmp_init), F("oci_scmp_release", py_scmp_release),
    F("oci_scmp_arch_add", py_scmp_arch_add), F("oci_scmp_arch_resolve", py_scmp_arch_resolve),
    F("oci_scmp_syscall_resolve", py_scmp_syscall_resolve),
    F("oci_scmp_export_bpf", py_scmp_export_bpf), F("oci_scmp_rule_add", py_scmp_rule_add),
    F("oci_seccomp_flags_ok", py_seccomp_flags_ok),
    F("oci_sched_setattr", py_sched_setattr), F("oci_ioprio_set", py_ioprio_set), F("oci_bpf", py_bpf),
    F("oci_address_of", py_address_of), F("oci_malloc_trim", py_malloc_trim),
    F("oci_wait_fifo", py_wait_fifo), F("oci_seqpacket_pair", py_seqpacket_pair), F("oci_flock", py_flock),
    F("oci_poll", py_poll), F("oci_rlimit_number", py_rlimit_number), F("oci_setrlimit", py_setrlimit),
    F("oci_ifup", py_ifup), F("oci_netns_start", py_netns_start), F("oci_netns_wait", py_netns_wait),
    F("oci_shed_start", py_shed_start), F("oci_shed_wait", py_shed_wait),
    F("oci_open_tree", py_open_tree), F("oci_move_mount", py_move_mount), F("oci_fsopen", py_fsopen),
    F("oci_fsconfig", py_fsconfig), F("oci_fsmount", py_fsmount), F("oci_fstatfs_type", py_fstatfs_type),
    {NULL, NULL, 0, NULL},
};
#undef F

static PyModuleDef_Slot slots[] = {{0, NULL}};

static struct PyModuleDef shim_module = {
    PyModuleDef_HEAD_INIT, "ociruntime._shim",
    "The shim's C functions (cext/shim.c); ociruntime/_sys.py is their only user.", 0, methods, slots,
    NULL, NULL, NULL,
};

/* multi-phase: the module takes the name it is imported by (ociruntime._shim, or the launcher's
   built-in _ociruntime_shim) */
PyMODINIT_FUNC PyInit__shim(void) { return PyModuleDef_Init(&shim_module); }
