"""linux.seccomp: syscalls newer than the profile get ENOSYS, not the default action (issue 20).

With a default-deny profile (docker's, Kubernetes' RuntimeDefault: defaultAction SCMP_ACT_ERRNO,
EPERM) a syscall the profile never heard of must look unimplemented, so that libcs fall back
(clone3 -> clone, faccessat2 -> faccessat, fchmodat2 -> fchmodat).  runc prepends a stub to the
filter that answers ENOSYS for every syscall number above the largest one the profile names, per
architecture; the numbers in between keep the profile's answers.

The profiles are podman's (the one test_seccomp uses) cut at a syscall number and with the default
errno left at EPERM; the static probes (syscall_probe.c; syscall_probe_i386.c, an i386 program
without libc) make raw syscalls inside the container and print "ret errno"."""

import ctypes
import errno
import shutil
import subprocess

import pytest

from test_seccomp import NR, podman_profile, probe  # noqa: F401 - probe is a fixture

pytestmark = pytest.mark.skipif(__import__("os").uname().machine != "x86_64", reason="syscall numbers are x86_64's")

# syscalls beyond the profiles below: real ones this kernel has (Linux 5.8+) and unused numbers
FACCESSAT2, PROCESS_MADVISE, EPOLL_PWAIT2, MOUNT_SETATTR = 439, 440, 441, 442
UNUSED_X86_64 = 375           # no x86_64 syscall between rseq (334) and pidfd_send_signal (424)
MEMBARRIER_X86_64, MEMBARRIER_I386, GETPID_I386 = 324, 375, 20
UNUSED_I386 = 387             # none between rseq (386) and semget (393)
AT_FDCWD = -100

RUNC_NO_ARCHES = ("runc 1.1.5 builds its stub from the listed architectures only, so a profile without "
                  "architectures gets none (runc 1.1.15 and 1.2 add the native one: runc PR 4219)")


class Libseccomp:
    """The host's libseccomp, to cut the profiles by number (their premise, not the answers)."""

    def __init__(self):
        self.lib = ctypes.CDLL("libseccomp.so.2")
        self.lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32

    def nr(self, name, arch="x86_64"):
        token = self.lib.seccomp_arch_resolve_name(arch.encode())
        return self.lib.seccomp_syscall_resolve_name_arch(ctypes.c_uint32(token), name.encode())

    def largest(self, profile, arch="x86_64"):
        return max(self.nr(n, arch) for s in profile["syscalls"] for n in s["names"])


@pytest.fixture(scope="module")
def scmp():
    return Libseccomp()


def limited_profile(scmp, last, drop=(), default="SCMP_ACT_ERRNO"):
    """podman's profile for amd64 with the default errno left at EPERM (docker's shape), without
    the syscalls numbered above `last` on x86_64 nor those in `drop` (names x86_64 lacks, such
    as socketcall, stay: libseccomp needs them for socket's rules on x86)."""
    prof = podman_profile()
    prof.pop("defaultErrnoRet", None)
    prof["defaultAction"] = default
    rules = []
    for rule in prof["syscalls"]:
        names = [n for n in rule["names"] if n not in drop and scmp.nr(n) <= last]
        if names:
            rules.append(dict(rule, names=names))
    prof["syscalls"] = rules
    assert scmp.largest(prof) == last, "podman's profile no longer names syscall %d" % last
    return prof


def errnos(out):
    """errno of each call the probes printed, in order (0: it succeeded)."""
    return [int(line.split()[1]) for line in out.splitlines() if line.strip() and not line.startswith("rc=")]


def probe_bundle(bundle, probe, profile, arches=None):   # noqa: F811 - probe is the fixture's value
    b = bundle()
    b.copy_rootfs()
    shutil.copy2(probe, b.own_rootfs / "probe")
    b.config["linux"]["seccomp"] = profile
    if arches is not None:
        profile["architectures"] = list(arches)
    else:
        profile.pop("architectures", None)
    return b


@pytest.fixture(scope="session")
def probe_i386(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe_i386") / "syscall_probe_i386"
    r = subprocess.run(["gcc", "-m32", "-nostdlib", "-static", "-ffreestanding", "-fno-pie", "-no-pie",
                        "-fno-stack-protector", "-O1", "-o", str(out),
                        str(__import__("pathlib").Path(__file__).resolve().parent / "syscall_probe_i386.c")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "building the i386 probe: " + r.stderr
    if subprocess.run([str(out), str(GETPID_I386)], capture_output=True, timeout=10).returncode != 0:
        pytest.skip("this kernel runs no i386 programs (CONFIG_IA32_EMULATION)")
    return out


ARCHES = {
    "unlisted": None,                                                    # libseccomp's native one only
    "x86_64": ["SCMP_ARCH_X86_64"],
    "docker": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],    # docker's and podman's for amd64
}


@pytest.mark.parametrize("arches", sorted(ARCHES))
def test_newer_syscalls_get_enosys(runtime, bundle, probe, scmp, arches):  # noqa: F811
    """Above the profile's largest syscall (pidfd_getfd, 438): ENOSYS, for an unused number and for
    faccessat2, which this kernel has; below it the profile answers: EPERM (the default) for one it
    leaves out, the listed errno for one it lists."""
    if arches == "unlisted" and runtime.name == "runc":
        pytest.skip(RUNC_NO_ARCHES)
    prof = limited_profile(scmp, 438, drop=["getppid", "getpgid"])
    prof["syscalls"].append({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV})
    b = probe_bundle(bundle, probe, prof, ARCHES[arches])
    out = runtime.output(b, f"/probe 1000; /probe {FACCESSAT2} {AT_FDCWD}; /probe {UNUSED_X86_64}; "
                            f"/probe {NR['getppid']}; /probe {NR['getpgid']} 0")
    assert errnos(out) == [errno.ENOSYS, errno.ENOSYS, errno.EPERM, errno.EPERM, errno.EXDEV]


def test_the_largest_listed_syscall_bounds_the_stub(runtime, bundle, probe, scmp):  # noqa: F811
    """Listing a syscall, whatever its action, moves the bound: process_madvise (440) listed with
    EXDEV keeps it, faccessat2 (439) below it is the default's EPERM again, epoll_pwait2 (441)
    listed with the default action (a rule libseccomp is not given) still counts; 442 is above."""
    prof = limited_profile(scmp, 438)
    prof["syscalls"] += [{"names": ["process_madvise"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
                         {"names": ["epoll_pwait2"], "action": "SCMP_ACT_ERRNO"}]
    b = probe_bundle(bundle, probe, prof, ARCHES["docker"])
    out = runtime.output(b, f"/probe {FACCESSAT2} {AT_FDCWD}; /probe {PROCESS_MADVISE}; /probe {EPOLL_PWAIT2}; "
                            f"/probe {MOUNT_SETATTR}; /probe 1000")
    assert errnos(out) == [errno.EPERM, errno.EXDEV, errno.EPERM, errno.ENOSYS, errno.ENOSYS]


@pytest.mark.parametrize("default", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"])
def test_newer_syscalls_are_not_killed(runtime, bundle, probe, scmp, default):  # noqa: F811
    """With a killing default action too: newer syscalls get ENOSYS, the profile's own range is
    still killed (SIGSYS)."""
    prof = limited_profile(scmp, 438, drop=["getpriority"], default=default)    # sh itself calls getppid
    b = probe_bundle(bundle, probe, prof, ARCHES["docker"])
    out = runtime.output(b, f"/probe 1000; /probe {FACCESSAT2} {AT_FDCWD}; /probe {NR['getpriority']} 0,0; "
                            "echo rc=$?")
    assert errnos(out) == [errno.ENOSYS, errno.ENOSYS]
    assert out.splitlines()[-1] == "rc=%d" % (128 + 31), out       # SIGSYS


@pytest.mark.parametrize("default", ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"])
def test_no_stub_with_an_allowing_default(runtime, bundle, probe, default):  # noqa: F811
    """A default that lets syscalls through lets newer ones through too: faccessat2 runs (EFAULT
    for its NULL path) although the profile's largest syscall is getppid."""
    prof = {"defaultAction": default, "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}
    b = probe_bundle(bundle, probe, prof, ARCHES["docker"])
    out = runtime.output(b, f"/probe {FACCESSAT2} {AT_FDCWD}; /probe {NR['getppid']}")
    assert errnos(out) == [errno.EFAULT, errno.EPERM]


def test_default_errno_enosys_needs_no_stub(runtime, bundle, probe, scmp):  # noqa: F811
    """podman's own profile (defaultErrnoRet ENOSYS): everything it leaves out is ENOSYS, in range
    or above it."""
    prof = limited_profile(scmp, 438, drop=["getppid"])
    prof["defaultErrnoRet"] = errno.ENOSYS
    b = probe_bundle(bundle, probe, prof, ARCHES["docker"])
    out = runtime.output(b, f"/probe 1000; /probe {FACCESSAT2} {AT_FDCWD}; /probe {NR['getppid']}")
    assert errnos(out) == [errno.ENOSYS] * 3


@pytest.mark.parametrize("arches", ["x86_64+x86", "docker"])
def test_each_architecture_its_own_bound(runtime, bundle, probe, probe_i386, scmp, arches):  # noqa: F811
    """The bound is each architecture's: cut at rseq (334) on x86_64, the profile's largest i386
    syscall is sched_rr_get_interval_time64 (423, one x86_64 lacks).  Number 375 is above x86_64's
    bound (ENOSYS) and, as i386's membarrier left out of the profile, below i386's (EPERM), as is
    the unused 387; i386's 424 and 1000 are above (ENOSYS); i386's getpid runs."""
    prof = limited_profile(scmp, 334, drop=["membarrier"])
    assert scmp.largest(prof, "x86") == 423 and scmp.nr("membarrier", "x86") == MEMBARRIER_I386
    b = probe_bundle(bundle, probe, prof, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] if arches != "docker"
                     else ARCHES["docker"])
    shutil.copy2(probe_i386, b.own_rootfs / "probe32")
    out = runtime.output(b, f"/probe {UNUSED_X86_64}; /probe {MEMBARRIER_X86_64}; "
                            f"/probe32 {MEMBARRIER_I386} {UNUSED_I386} 424 1000 {GETPID_I386}")
    assert errnos(out) == [errno.ENOSYS, errno.EPERM, errno.EPERM, errno.EPERM, errno.ENOSYS, errno.ENOSYS, 0]
    assert int(out.splitlines()[-1].split()[0]) > 0               # a pid
