"""The container's record (state.json) and the runtime-spec state runc's `state` prints."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import fsdecode, join
from ociruntime.container import status as _status
from ociruntime.container.statedir import StateDir

OCI_VERSION = "1.3.0"


def default_root():
    """runc's default state root: /run/ociruntime, or $XDG_RUNTIME_DIR/ociruntime for a user."""
    if os.geteuid() != 0:
        xdg = os.environ.get(b"XDG_RUNTIME_DIR")
        if xdg:
            return join(fsdecode(xdg), "ociruntime")
    return "/run/ociruntime"


def rfc3339_now():
    import time  # create's (imported by create.py before its fork); start, delete, state need none
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
        (".%09d" % (ns % 1_000_000_000)).rstrip("0").rstrip(".") + "Z"


def make_state(cid, pid, start_time, bundle, rootfs, cfg, cg):
    return {
        "id": cid, "pid": pid, "start_time": start_time, "bundle": bundle, "rootfs": rootfs,
        "created": rfc3339_now(), "owner": "", "annotations": cfg.get("annotations") or {},
        "ociVersion": cfg.get("ociVersion", OCI_VERSION), "cgroup": cg.to_state() if cg else None,
        "config": cfg,
    }


def make_record(cid, bundle, rootfs, cfg, cg, made):
    """statedir's made.json: the container as `state` shows it before it has a process, and the
    cgroup directories create makes (``made``, those missing before it ran)."""
    rec = {"id": cid, "pid": 0, "start_time": 0, "bundle": bundle, "rootfs": rootfs, "created": rfc3339_now(),
           "owner": "", "ociVersion": cfg.get("ociVersion", OCI_VERSION), "cgroup": None}
    if cg is not None:
        rec["cgroup"] = dict(cg.to_state(), created=list(made))  # (the systemd driver adds its unit)
    return rec


def public(state, status):
    """runc's `state` object: the runtime-spec state plus created and owner."""
    out = {
        "ociVersion": state.get("ociVersion", OCI_VERSION),
        "id": state["id"],
        "pid": state["pid"] if status != _status.STOPPED else 0,
        "status": status,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
    }
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    out["owner"] = state.get("owner", "")
    return out


def state_json(state, status):
    """The spec state given to hooks on stdin (no pid once stopped: the spec requires it only while
    created or running, and runc leaves it out for poststop)."""
    s = {"ociVersion": state.get("ociVersion", OCI_VERSION), "id": state["id"], "status": status,
         "pid": state["pid"], "bundle": state["bundle"]}
    if status == _status.STOPPED:
        del s["pid"]
    if state.get("annotations"):
        s["annotations"] = state["annotations"]
    from ociruntime import jsonio
    return jsonio.dumps(s)


def load(root, cid, lock=False):
    """(statedir, state, status) of an existing container."""
    sd = StateDir.open(root, cid, lock=lock)
    try:
        state = sd.load()
    except BaseException:
        sd.close()
        raise
    return sd, state, _status.status_of(state, sd)


def get(root, cid):
    sd, state, st = load(root, cid)
    sd.close()
    return public(state, st)


def list_all(root):
    """The state of each container in ``root``; one that cannot be read is left out, with a
    warning naming it (as runc's list), so that the others are still listed."""
    from ociruntime.container.statedir import list_ids
    from ociruntime.errors import StateError
    out = []
    for cid in list_ids(root):
        try:
            st = get(root, cid)
        except StateError as e:
            if str(e) != "container does not exist":  # (deleted meanwhile)
                _warn(str(e))
            continue
        except Exception as e:  # noqa: BLE001 (one container's trouble is no reason to list none)
            _warn("container %s: %s: %s" % (cid, e.__class__.__name__, e))
            continue
        st["owner"] = owner_of(root, cid)  # runc: "" in `state`, the user name in `list`
        out.append(st)
    return out


def _warn(msg):
    from ociruntime import log
    log.current.warning(msg)


def owner_of(root, cid):
    try:
        uid = os.stat(join(root, cid)).st_uid
    except OSError:
        return ""
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)
