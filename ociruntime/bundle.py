"""``Bundle``: an OCI bundle (a directory holding config.json, and a root filesystem) built in code.

It starts from the config `ociruntime spec` writes (runc's default: pid, network, ipc, uts and
mount namespaces, a read-only root, the usual /proc, /dev and /sys mounts, three capabilities) with
``process.terminal`` false, and the methods change the parts a program usually sets: the process,
mounts, resources, namespaces, annotations.  Everything else is ``config``, the plain dict that
is written as config.json (the runtime-spec's JSON is the model: nothing is hidden from it).
Passing a Bundle where a bundle directory is expected (``Container.create``, ``os.fspath``)
writes it first.  Nothing is checked here: ``create`` validates the config as it validates any.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import abspath, join, write_atomic

# the annotations of the two opt-in features of issue 24, as their modules name them
# (ociruntime/network/__init__.py and rootfs/overlay.py: ANNOTATIONS; `ociruntime features` lists
# them): org.ociruntime.net.<key>, and org.ociruntime.overlay[.<key>]
NET_PREFIX = "org.ociruntime.net."
OVERLAY = "org.ociruntime.overlay"


class Bundle:
    """A bundle at ``path`` (made when written) whose root filesystem is ``rootfs`` (a directory:
    absolute, or relative to the bundle), running ``args``.  ``readonly``: root.readonly;
    ``rootless``: `ociruntime spec --rootless`'s config (a user namespace mapping the caller to
    root).  The changing methods return the Bundle, so they chain."""

    def __init__(self, path, rootfs="rootfs", args=None, *, readonly=True, rootless=False):
        from ociruntime.specgen import default_spec
        self.path = abspath(os.fspath(path))
        self.config = default_spec(rootless)
        self.config["process"]["terminal"] = False
        self.config["root"] = {"path": os.fspath(rootfs), "readonly": bool(readonly)}
        if args is not None:
            self.args = args

    @classmethod
    def load(cls, path):
        """The bundle at ``path``, its config.json read (ConfigError if it cannot be)."""
        from ociruntime import jsonio, read_file
        from ociruntime.errors import ConfigError
        self = cls.__new__(cls)
        self.path = abspath(os.fspath(path))
        try:
            self.config = jsonio.loads(read_file(join(self.path, "config.json")))
        except OSError as e:
            raise ConfigError("config.json: %s: %s" % (join(self.path, "config.json"), e.strerror)) from None
        except ValueError as e:
            raise ConfigError("config.json: invalid JSON: %s" % e) from None
        return self

    def __repr__(self):
        return "Bundle(%r)" % self.path

    # -- the process ---------------------------------------------------------------------------
    @property
    def args(self):
        return self.config.setdefault("process", {}).get("args")

    @args.setter
    def args(self, value):
        if isinstance(value, str):
            raise TypeError("Bundle.args: a list of strings, not a string")
        self.config.setdefault("process", {})["args"] = list(value)

    @property
    def hostname(self):
        return self.config.get("hostname")

    @hostname.setter
    def hostname(self, value):
        self.config["hostname"] = value

    def process(self, args=None, *, cwd=None, env=None, uid=None, gid=None, additional_gids=None,
                terminal=None, no_new_privileges=None, capabilities=None, umask=None, rlimits=None):
        """Change the process: ``env`` (a dict: each name set, replacing that name's entry; the
        others, PATH among them, stay), ``capabilities`` (names: the bounding, effective,
        permitted and ambient sets become them), ``rlimits`` ({"RLIMIT_NOFILE": (soft, hard)}:
        those types replaced); the others set the field of the same name (None: unchanged)."""
        p = self.config.setdefault("process", {})
        if args is not None:
            self.args = args
        if cwd is not None:
            p["cwd"] = cwd
        for name, value in (env or {}).items():
            self.setenv(name, value)
        user = p.setdefault("user", {"uid": 0, "gid": 0})
        if uid is not None:
            user["uid"] = uid
        if gid is not None:
            user["gid"] = gid
        if additional_gids is not None:
            user["additionalGids"] = list(additional_gids)
        if umask is not None:
            user["umask"] = umask
        if terminal is not None:
            p["terminal"] = bool(terminal)
        if no_new_privileges is not None:
            p["noNewPrivileges"] = bool(no_new_privileges)
        if capabilities is not None:
            p["capabilities"] = {s: list(capabilities) for s in ("bounding", "effective", "permitted", "ambient")}
        if rlimits:
            kept = [r for r in p.get("rlimits") or () if r.get("type") not in rlimits]
            p["rlimits"] = kept + [{"type": t, "soft": soft, "hard": hard} for t, (soft, hard) in rlimits.items()]
        return self

    def setenv(self, name, value):
        """Set the process's environment variable ``name`` (its entry replaced, or added)."""
        p = self.config.setdefault("process", {})
        env = [e for e in p.get("env") or () if e.split("=", 1)[0] != name]
        p["env"] = env + ["%s=%s" % (name, value)]
        return self

    # -- mounts --------------------------------------------------------------------------------
    def mount(self, destination, source=None, type="bind", options=None):
        """Add a mount at ``destination`` (inside the container).  ``type`` "bind" (the default)
        binds the host's ``source`` recursively ("rbind", unless ``options`` say "bind"); options
        such as "ro", "nosuid" as the runtime-spec has them.  A mount already at ``destination``
        is replaced."""
        options = list(options or ())
        if type == "bind" and "bind" not in options and "rbind" not in options:
            options.insert(0, "rbind")
        entry = {"destination": destination, "type": type, "source": source if source is not None else type}
        if options:
            entry["options"] = options
        mounts = [m for m in self.config.get("mounts") or () if m.get("destination") != destination]
        self.config["mounts"] = mounts + [entry]
        return self

    def tmpfs(self, destination, size=None, mode=None, options=("nosuid", "nodev")):
        """Add a tmpfs at ``destination`` (``size`` in bytes, ``mode`` an int such as 0o1777)."""
        opts = list(options)
        if size is not None:
            opts.append("size=%d" % size)
        if mode is not None:
            opts.append("mode=%o" % mode)
        return self.mount(destination, "tmpfs", "tmpfs", opts)

    # -- linux ---------------------------------------------------------------------------------
    def resources(self, *, memory=None, memory_swap=None, pids=None, cpu_shares=None, cpu_quota=None,
                  cpu_period=None, cpus=None, **sections):
        """Set linux.resources: ``memory`` (bytes), ``memory_swap`` (bytes, memory+swap),
        ``pids`` (a number), ``cpu_shares``, ``cpu_quota`` and ``cpu_period`` (microseconds),
        ``cpus`` ("0-1"); other sections as the runtime-spec has them (``blockIO={...}``,
        ``hugepageLimits=[...]``, ``unified={...}``), each replacing that section."""
        res = self.config.setdefault("linux", {}).setdefault("resources", {})
        for section, field, value in (("memory", "limit", memory), ("memory", "swap", memory_swap),
                                      ("pids", "limit", pids), ("cpu", "shares", cpu_shares),
                                      ("cpu", "quota", cpu_quota), ("cpu", "period", cpu_period),
                                      ("cpu", "cpus", cpus)):
            if value is not None:
                res.setdefault(section, {})[field] = value
        res.update(sections)
        return self

    def namespace(self, type, path=None):
        """Give the container a namespace of ``type`` ("network", "user", ...): a new one, or with
        ``path`` the one at that path (/proc/PID/ns/net, a bind mount of one)."""
        entry = {"type": type}
        if path is not None:
            entry["path"] = path
        linux = self.config.setdefault("linux", {})
        linux["namespaces"] = [n for n in linux.get("namespaces") or () if n.get("type") != type] + [entry]
        return self

    def share_namespace(self, type):
        """Take ``type`` out of the namespaces: the container shares the runtime's (the host's)."""
        linux = self.config.setdefault("linux", {})
        linux["namespaces"] = [n for n in linux.get("namespaces") or () if n.get("type") != type]
        return self

    # -- annotations and the opt-in features ---------------------------------------------------
    @property
    def annotations(self):
        """The config's annotations (a dict, changed in place)."""
        return self.config.setdefault("annotations", {})

    def annotate(self, key, value):
        """Set the annotation ``key`` (values are strings in the runtime-spec: others are
        converted, True/False to "true"/"false")."""
        self.annotations[key] = _annotation_value(value)
        return self

    def network(self, bridge, subnet, *, gateway=None, address=None, nat=None, ports=None, firewall=None):
        """Ask for the runtime's networking: a veth pair to the host's ``bridge`` (made if
        missing), eth0 inside with an address leased from ``subnet`` ("10.88.0.0/24"), a default
        route through ``gateway``; ``address`` to lease a given one, ``nat`` to masquerade what
        leaves the subnet, ``ports`` published (["8080:80/tcp"]), ``firewall`` "nft" or
        "iptables".  Sets the org.ociruntime.net.* annotations (None: not set); the container
        needs a network namespace of its own (the default config has one)."""
        for key, value in (("bridge", bridge), ("subnet", subnet), ("gateway", gateway), ("address", address),
                           ("nat", nat), ("ports", ports), ("firewall", firewall)):
            if value is not None:
                self.annotate(NET_PREFIX + key, value)
        return self

    def overlay(self, *lower, upper=None, keep=None):
        """Ask for a copy-on-write rootfs: an overlay whose lower directories are ``lower``
        (uppermost first; relative to the bundle), or without them root.path alone, with the
        upper and work directories in ``upper`` (None: the state dir, removed on delete;
        "tmpfs[:size=N]"; or a directory of yours, kept), and kept on delete with ``keep``.
        Sets the org.ociruntime.overlay annotations."""
        if lower:
            self.annotate(OVERLAY + ".lower", ":".join(os.fspath(d) for d in lower))
        else:
            self.annotate(OVERLAY, True)
        if upper is not None:
            self.annotate(OVERLAY + ".upper", upper)
        if keep is not None:
            self.annotate(OVERLAY + ".keep", keep)
        return self

    # -- writing -------------------------------------------------------------------------------
    def write(self):
        """Write config.json (making the bundle directory if needed); returns the bundle's path.
        Raises ConfigError when it cannot be written."""
        from ociruntime import jsonio
        from ociruntime.errors import ConfigError
        data = (jsonio.dumps(self.config, indent="\t") + "\n").encode()
        try:
            try:
                os.mkdir(self.path, 0o755)
            except FileExistsError:
                pass
            write_atomic(join(abspath(self.path), "config.json"), data, 0o644)
        except OSError as e:
            raise ConfigError("write %s: %s" % (e.filename or join(self.path, "config.json"), e.strerror)) from None
        return self.path

    __fspath__ = write


def _annotation_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
