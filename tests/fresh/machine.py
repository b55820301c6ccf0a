"""Writes the runc config.json of the fresh machine: machine.py BUNDLE CACHE HOSTNAME CGROUPS_PATH ARGS...

A privileged container standing in for a fresh Debian 12 machine: every capability this process
holds, no seccomp, no masked or read-only paths (so the runtime under test can mount proc and
sysfs of its own inside), the host's network namespace (apt and PyPI), its own pid, mount, ipc and
uts namespaces, /proc and /sys read-write, the host's cgroup hierarchies bound read-write (no
cgroup namespace: the paths in /proc/self/cgroup then match the mounted trees), every device
allowed in the devices cgroup, a real-time CPU budget, and the device nodes of a machine that a
container runtime and its tests use. apt's download cache (its archives directory) is bound in:
the machine still starts without any of the packages.
"""

import json
import os
import sys

CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]


def held_caps():
    # the bounding set of this (root) process: a capability outside it cannot be given
    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return ["CAP_" + name for bit, name in enumerate(CAPS) if bnd >> bit & 1]


def device(path, kind, major, minor, mode=0o666):
    return {"path": path, "type": kind, "major": major, "minor": minor, "fileMode": mode, "uid": 0, "gid": 0}


def main():
    bundle, cache, hostname, cgroups_path, *args = sys.argv[1:]
    caps = held_caps()
    bind = ["rbind", "rw"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=262144k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "rw"]},
        {"destination": "/sys/fs/cgroup", "type": "bind", "source": "/sys/fs/cgroup", "options": bind},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf",
         "options": ["bind", "ro"]},
        {"destination": "/var/cache/apt/archives", "type": "bind", "source": os.path.join(cache, "apt"),
         "options": bind},
    ]
    devices = [device("/dev/null", "c", 1, 3), device("/dev/zero", "c", 1, 5), device("/dev/full", "c", 1, 7),
               device("/dev/random", "c", 1, 8), device("/dev/urandom", "c", 1, 9),
               device("/dev/tty", "c", 5, 0), device("/dev/fuse", "c", 10, 229),
               device("/dev/net/tun", "c", 10, 200), device("/dev/kmsg", "c", 1, 11, 0o644),
               device("/dev/loop-control", "c", 10, 237, 0o660)]
    devices += [device("/dev/loop%d" % i, "b", 7, i, 0o660) for i in range(8)]
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
            "cwd": "/root",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted", "inheritable")},
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts")],
            "cgroupsPath": cgroups_path,
            # a real-time budget, as a machine's root cgroup has: a new cgroup gets none (cpu.rt_runtime_us
            # 0), and without one none can be given to the containers inside
            "resources": {"devices": [{"allow": True, "access": "rwm"}],
                          "cpu": {"realtimeRuntime": 200000, "realtimePeriod": 1000000}},
            "devices": devices,
        },
    }
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


if __name__ == "__main__":
    main()
