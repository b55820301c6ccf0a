"""ociruntime features: the runtime-spec features document (features.md), runc's output shape.

Lists only what works: every table is read from the code that implements it (mount options from
rootfs/mounts.py, seccomp actions/operators/flags from security/seccomp.py, architectures from the
libseccomp that is loaded), so the document cannot promise more than the runtime does.
"""
import os
import sys

FLAGS = {}
ARGS = (0, 0)

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
# the architectures libseccomp may know (runc's list); those it resolves are listed
SECCOMP_ARCHS = ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
                 "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
                 "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
                 "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", "SCMP_ARCH_X32",
                 "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]


def run(ctx, opts, args):
    from ociruntime import jsonio
    sys.stdout.write(jsonio.dumps(features(), indent=4) + "\n")
    return 0


def features():
    from ociruntime.cli import SPEC_VERSION, VERSION
    from ociruntime.rootfs.mounts import FLAG_OPTS, PROPAGATION, REC_ATTRS
    from ociruntime.security import caps, lsm
    from ociruntime.container.extras import feature_annotations
    annotations = {"org.ociruntime.version": VERSION}
    annotations.update(feature_annotations())  # what the networking and overlay annotations take
    seccomp = _seccomp(annotations)
    from ociruntime.cgroups.systemd import available
    systemd = available() is None  # systemd as PID 1 on pure v2
    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": sorted(set(FLAG_OPTS) | set(PROPAGATION) | set(REC_ATTRS)),
        "linux": {
            "namespaces": [n for n in NAMESPACES if os.path.exists("/proc/self/ns/" + _proc_ns(n))],
            "capabilities": list(caps.NAMES[:caps.last_cap() + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": systemd, "systemdUser": systemd, "rdma": True},
            "seccomp": seccomp,
            # the LSMs are usable only where the host runs them (a label is refused otherwise)
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": False},
        },
        "annotations": annotations,
    }
    return doc


def _proc_ns(n):
    return {"mount": "mnt", "network": "net"}.get(n, n)


def _seccomp(annotations):
    try:
        from ociruntime import _sys as S
        from ociruntime.security import seccomp as sc
        version = S.scmp_open()
    except (ImportError, OSError):
        return {"enabled": False}
    annotations["io.github.seccomp.libseccomp.version"] = "%d.%d.%d" % version
    archs = [a for a in SECCOMP_ARCHS if S.lib.oci_scmp_arch_resolve(a[len("SCMP_ARCH_"):].lower().encode())]
    known = sorted(sc.FLAGS)
    supported = [f for f in known if sc.FLAGS[f] == 0 or S.seccomp_flags_ok(sc.FLAGS[f])]
    return {"enabled": True, "actions": sorted(sc.ACTIONS), "operators": sorted(sc.OPERATORS),
            "archs": archs, "knownFlags": known, "supportedFlags": supported}
