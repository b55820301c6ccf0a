"""The state root's network registry: address leases and the bridges containers use.

One file, ``<root>/@network.json`` (``@`` is not allowed in a container id, so it never meets a
state directory), read and rewritten whole (a temp file renamed over it) while this process holds
``flock`` on the state root directory itself: two creates, also in parallel, never lease the
same address, and a bridge is made once and removed by whoever removes its last user.  The
file goes when it holds nothing, so a root whose containers are all deleted is as it was.

    {"leases":  {"10.88.0.0/24": {"10.88.0.2": "<container id>", ...}},
     "bridges": {"<netns id>/<name>": {"made": true, "addresses": ["10.88.0.1/24"],
                                       "users": ["<container id>", ...]}}}

``made``: the runtime created the bridge (it removes it when its last user goes; a bridge that
was there before is never removed).  ``addresses``: the gateway addresses the runtime added to
it (removed then too; none when the bridge already had one in the subnet).  The netns id keeps
bridges of the same name in different network namespaces apart.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import flock, join, read_file, write_atomic
from ociruntime.errors import OCIError

REGISTRY = "@network.json"


class Registry:
    """The registry, loaded under the root's lock (``with Registry(root) as reg``); written back
    by ``save``; the lock is released on leaving the block."""

    def __init__(self, root):
        self.root, self.path = root, join(root, REGISTRY)
        self.fd = -1
        self.data = None

    def __enter__(self):
        self.fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            flock(self.fd)
            self.data = self._load()
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # (releases the lock)
        self.fd = -1

    def _load(self):
        from ociruntime import jsonio
        try:
            data = jsonio.loads(read_file(self.path))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as e:
            raise OCIError("network registry %s: %s" % (self.path, getattr(e, "strerror", None) or e)) from None
        data.setdefault("leases", {})
        data.setdefault("bridges", {})
        return data

    def save(self):
        """Write the registry back (or remove the file when nothing is left in it)."""
        from ociruntime import jsonio
        self.data["leases"] = {k: v for k, v in self.data["leases"].items() if v}
        self.data["bridges"] = {k: v for k, v in self.data["bridges"].items() if v.get("users")}
        if not self.data["leases"] and not self.data["bridges"]:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            return
        try:
            write_atomic(self.path, jsonio.dumps(self.data).encode())
        except OSError as e:
            raise OCIError("write network registry %s: %s" % (self.path, e.strerror)) from None

    # -- leases --------------------------------------------------------------------------------
    def lease(self, subnet, cid, candidates):
        """The first of ``candidates`` (addresses, in order) not leased in ``subnet``, now leased
        to ``cid`` (the one it holds already, if any); None when every one is taken."""
        held = self.data["leases"].setdefault(subnet, {})
        for addr, owner in held.items():
            if owner == cid:
                return addr
        for addr in candidates:
            if addr not in held:
                held[addr] = cid
                return addr
        return None

    def release(self, cid):
        """Free every address ``cid`` holds; returns them."""
        freed = []
        for held in self.data["leases"].values():
            for addr in [a for a, owner in held.items() if owner == cid]:
                del held[addr]
                freed.append(addr)
        return freed

    def leased(self, subnet):
        return len(self.data["leases"].get(subnet) or ())

    # -- bridges -------------------------------------------------------------------------------
    def bridge(self, key):
        return self.data["bridges"].get(key)

    def add_bridge(self, key, made):
        entry = {"made": made, "addresses": [], "users": []}
        self.data["bridges"][key] = entry
        return entry

    def drop_user(self, key, cid):
        """Remove ``cid`` from the bridge's users; returns the entry when it was the last one (the
        bridge's own removal is then the caller's), else None."""
        entry = self.data["bridges"].get(key)
        if entry is None:
            return None
        if cid in entry["users"]:
            entry["users"].remove(cid)
        if entry["users"]:
            return None
        return entry
