"""AppArmor profile and SELinux labels (process.apparmorProfile, process.selinuxLabel,
linux.mountLabel).

Where the LSM is enabled the label is set for the next execve through /proc (what runc does).
Where it is not, a config asking for it is refused at create, as runc refuses it (runc fails the
AppArmor case in its init with "apparmor failed to apply profile: write /proc/self/attr/exec:
invalid argument", and the SELinux case at create with the message used here); crun refuses both
too.  mountLabel on an SELinux host (the `context=` mount option) is not implemented: refused.
"""

from ociruntime import exists, isdir
from ociruntime.errors import ConfigError


def apparmor_enabled():
    # runc's test: securityfs shows AppArmor and the module says it is enabled
    if not isdir("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read(1) == "Y"
    except OSError:
        return False


def selinux_enabled():
    return exists("/sys/fs/selinux/enforce")


def check(cfg):
    process = cfg.get("process") or {}
    linux = cfg.get("linux") or {}
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise ConfigError('apparmor profile "%s" is specified in config, but apparmor is not enabled on this host'
                          % process["apparmorProfile"])
    if process.get("selinuxLabel") and not selinux_enabled():
        raise ConfigError("selinux label is specified in config, but selinux is disabled or not supported")
    if linux.get("mountLabel"):
        if not selinux_enabled():
            raise ConfigError("selinux mount label is specified in config, but selinux is disabled or not supported")
        raise ConfigError("config.json: linux.mountLabel: SELinux mount labels are not supported yet")


def apply(process):
    """Label the next execve, through the runtime's procfs (ociruntime.procfs), never the
    container's /proc (CVE-2019-16884)."""
    profile = process.get("apparmorProfile")
    label = process.get("selinuxLabel")
    if profile or label:
        from ociruntime import procfs
    if profile:
        data = "exec " + profile
        path = "self/attr/apparmor/exec"
        if not procfs.exists(path):
            path = "self/attr/exec"       # kernels before 5.8
        procfs.write(path, data, "apply apparmor profile %s" % profile)
    if label:
        procfs.write("self/attr/exec", label, "set selinux label %s" % label)
