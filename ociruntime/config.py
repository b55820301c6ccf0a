"""Load a bundle's config.json, validate it against spec/, and answer the questions the lifecycle
asks of it.  Returns the plain dict (no object model: the spec's JSON is the model)."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import S_IFDIR, S_IFMT, abspath, join, jsonio, normpath, read_file
from ociruntime.errors import ConfigError

SUPPORTED = ((1, 0), (1, 1), (1, 2), (1, 3))


def load_bundle(bundle):
    """Returns (config, bundle_abs, rootfs_abs).  ``process`` may be absent (the spec has create
    accept it; start refuses such a container)."""
    bundle = abspath(bundle or ".")
    path = join(bundle, "config.json")
    try:
        raw = read_file(path)
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found (bundle %s)" % bundle) from None
    except OSError as e:
        raise ConfigError("config.json: %s" % e.strerror) from None
    try:
        doc = jsonio.loads(raw)
    except ValueError as e:
        raise ConfigError("config.json: invalid JSON: %s" % e) from None
    if not isinstance(doc, dict):
        raise ConfigError("config.json: the document must be a JSON object")
    check_version(doc.get("ociVersion"))
    validate(doc)
    if "linux" not in doc:
        raise ConfigError("config.json: linux: required on this platform")
    rootfs = doc["root"]["path"] if isinstance(doc.get("root"), dict) else None
    if not rootfs:
        raise ConfigError("config.json: root.path: required")
    rootfs = normpath(join(bundle, rootfs))
    try:
        st = os.stat(rootfs)
    except OSError as e:
        raise ConfigError("invalid rootfs: stat %s: %s" % (rootfs, e.strerror.lower())) from None
    if st.st_mode & S_IFMT != S_IFDIR:
        raise ConfigError("invalid rootfs: %s: not a directory" % rootfs)
    return doc, bundle, rootfs


def check_version(v):
    if not isinstance(v, str):
        return  # the schema names the missing/mistyped field
    core = v.split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    try:
        nums = tuple(int(p) for p in parts)
    except ValueError:
        nums = ()
    if len(nums) != 3 or nums[:2] not in SUPPORTED:
        raise ConfigError('config.json: ociVersion: unsupported version "%s" (supported: 1.0.0 to 1.3.x)' % v)


def validate(doc):
    from ociruntime.validate import validate_config
    validate_config(doc)


def namespaces(doc):
    """{type: path or None} of linux.namespaces."""
    return {ns["type"]: ns.get("path") or None for ns in doc.get("linux", {}).get("namespaces") or ()}
