"""config.json ``process``: everything needed for the final exec, prepared in Python so that the C
shim only has to run it (credentials, capabilities, no_new_privs, exec)."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import fsdecode, isdir, join, read_file
from ociruntime.errors import ConfigError, InitError
from ociruntime.security import caps as _caps

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def check(process, warn=None):
    """Parent side, before anything is created: what can be refused from the config alone.
    Returns the capability masks for final_args (an absent capabilities object, or an absent set
    in it, is empty, as runc: never the runtime's own sets); the names left out of them go to
    ``warn``."""
    caps, ignored = _caps.masks(process.get("capabilities") or {})
    if ignored and warn is not None:
        warn(_caps.ignored_message(ignored))
    if process.get("rlimits"):
        from ociruntime.security import rlimits
        rlimits.parse(process["rlimits"])
    return caps


def check_mapped(user, linux, where="process.user"):
    """The ids a process takes in the container's own user namespace must be mapped there
    (``linux``: the config's linux object, whose uidMappings/gidMappings give that namespace's;
    a namespace joined by path is not checked): the kernel would refuse them only at the last
    step, setresuid/setresgid/setgroups.  runc's words."""
    checks = [("uid", "uid", [user.get("uid", 0)], linux.get("uidMappings")),
              ("gid", "gid", [user.get("gid", 0)], linux.get("gidMappings")),
              ("gid", "additionalGids", list(user.get("additionalGids") or ()), linux.get("gidMappings"))]
    for kind, field, ids, maps in checks:
        for i, v in enumerate(ids):
            if maps and not any(m["containerID"] <= v < m["containerID"] + m["size"] for m in maps):
                name = "%s.%s" % (where, field) + ("[%d]" % i if field == "additionalGids" else "")
                raise ConfigError("cannot set %s to unmapped user in user namespace: %s %d is not in "
                                  "linux.%sMappings" % (kind, name, v, kind))


def lookup(argv0, env):
    """Resolve args[0] like Go's exec.LookPath inside the container (after pivot_root)."""
    if "/" in argv0:
        try:
            st = os.stat(argv0)
        except OSError as e:
            raise InitError('exec: "%s"' % argv0, e.errno, "",
                            "stat %s: %s" % (argv0, e.strerror.lower())) from None
        if not (st.st_mode & 0o111) or isdir(argv0):
            raise InitError('exec: "%s"' % argv0, 13, "", "permission denied")
        return argv0
    path = DEFAULT_PATH
    for e in env:
        if e.startswith("PATH="):
            path = e[5:]
    for d in path.split(":"):
        cand = join(d or ".", argv0)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if st.st_mode & 0o111 and not isdir(cand):
            return cand
    raise InitError('exec: "%s"' % argv0, 2, "", "executable file not found in $PATH")


def home_of(uid):
    """The home directory of ``uid`` in the container's /etc/passwd, "/" without an entry, as
    runc (an entry's empty home stays empty, as runc's).  Read as bytes: a text-mode open() would
    load the codec registry into the init, and an entry that is not UTF-8 must not stop the
    lookup."""
    try:
        data = read_file("/etc/passwd")
    except OSError:
        return "/"
    want = b"%d" % uid
    for line in data.split(b"\n"):
        parts = line.removesuffix(b"\r").split(b":")
        if len(parts) >= 6 and parts[2] == want:
            return fsdecode(parts[5])
    return "/"


def environ(env, uid):
    """process.env as runc's init sets it (os.Setenv, one entry after the other): a name given
    twice keeps its first place and its last value; HOME unset or empty becomes the home of
    ``uid`` in the container's /etc/passwd."""
    out, where = [], {}
    for e in env:
        name, eq, _ = e.partition("=")
        if not eq:
            out.append(e)
        elif name in where:
            out[where[name]] = e
        else:
            where[name] = len(out)
            out.append(e)
    if "HOME" not in where:
        out.append("HOME=" + home_of(uid))
    elif out[where["HOME"]] == "HOME=":
        out[where["HOME"]] = "HOME=" + home_of(uid)
    return out


def final_args(process, set_groups=True, seccomp=None, listener=None, caps=None):
    """What the final steps need (in the container, after pivot): ``path``, ``argv``, ``envp``
    for _sys.exec_trampoline, the rest keyword arguments of _sys.finalize.  ``caps``: check's
    masks.

    ``seccomp`` is the container's filter (security.seccomp.compile(linux.seccomp), built before
    fork while libseccomp and the host's files are reachable); with a listenerPath, ``listener``
    is ``(connected socket fd, container process state bytes)`` (security.seccomp.connect and
    listener_message).  Without no_new_privs the filter is loaded before the credentials change
    (it needs CAP_SYS_ADMIN then), otherwise last (_sys.finalize, runc's order)."""
    user = process.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    env = environ(process.get("env") or (), uid)
    args = process["args"]
    path = lookup(args[0], env)
    groups = list(user.get("additionalGids") or ())
    nnp = bool(process.get("noNewPrivileges"))
    sec = None
    if seccomp is not None:
        sec = (seccomp.bpf, seccomp.flags, not nnp)
        if seccomp.listener_path:
            if listener is None:
                raise InitError("seccomp", 0, "", "the filter notifies %s but no listener socket was given"
                                % seccomp.listener_path)
            sec += tuple(listener)
    return dict(path=path, argv=args, envp=env, cwd=process.get("cwd") or "/",
                user=(uid, gid, groups if set_groups else None), caps=caps,
                last_cap=_caps.last_cap(), no_new_privs=nnp, seccomp=sec)


def finalize(args, cwd, seccomp_sock=None):
    """The process's credentials, capabilities, no_new_privs and seccomp (final_args's ``args``;
    ``cwd`` the directory still to enter as the process's user), in runc's order
    (_sys.finalize); a failure is an InitError naming the step.  The listener socket
    ``seccomp_sock`` is the shim's once it sent the listener fd on it (and closed it)."""
    from ociruntime import _sys as S
    try:
        S.finalize(user=args["user"], caps=args["caps"], last_cap=args["last_cap"],
                   no_new_privs=args["no_new_privs"], seccomp=args["seccomp"], cwd=cwd)
    except OSError as e:
        raise InitError(e.filename, e.errno) from None
    if seccomp_sock is not None:
        seccomp_sock.detach()


def umask_of(process):
    u = (process.get("user") or {}).get("umask")
    return 0o022 if u is None else u
