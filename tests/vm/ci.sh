#!/bin/bash
# What CI runs for the pure cgroup v2 + systemd host: build (or reuse) the VM image, boot it once and
# run the VM's test selection in it with ociruntime (tests/vm/inside.sh), exit status passed through.
#
#   tests/vm/ci.sh [PYTEST ARG...]      (default: the selection below, -q -rs)
#
# VM_RUNTIMES="ociruntime runc" runs the selection a second time with runc in the same boot.
# VM_TIMEOUT (seconds, default 3000) bounds the whole VM run.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SELECTION=(
    tests/integration/test_cgroups_v2.py
    tests/integration/test_cgroups_v2_host.py
    tests/integration/test_cgroups.py
    tests/integration/test_cgroup_birth.py
    tests/integration/test_systemd_cgroup.py
    tests/integration/test_rootless.py::test_rootless_systemd_cgroup_memory_limit_enforced
    tests/clients/test_systemd_clients.py
    tests/integration/test_lifecycle.py
    # faults on pure v2: a frozen cgroup or parent refused, kill -9 at the cgroup steps of create and delete
    tests/integration/test_leaks_cgroups.py
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[create-create:cgroup-made-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[create-create:resources-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[create-create:forked-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[create-create:joined-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[create-create:ready-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[delete-delete:killed-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[delete-delete:cgroups-removed-plain]"
    "tests/integration/test_leaks_kill9.py::test_killed_at_each_step[pause-pause:written-plain]"
)
[ $# -gt 0 ] || set -- -q -rs "${SELECTION[@]}"
start=$(date +%s)
bash "$HERE/build-image.sh" >/dev/null || { echo "tests/vm/ci.sh: the image could not be built" >&2; exit 1; }
echo "tests/vm/ci.sh: image ready after $(( $(date +%s) - start )) s"
"$HERE/run.sh" --timeout "${VM_TIMEOUT:-3000}" env VM_RUNTIMES="${VM_RUNTIMES:-ociruntime}" \
    bash /vm/src/tests/vm/inside.sh "$@"
rc=$?
echo "tests/vm/ci.sh: exit $rc after $(( $(date +%s) - start )) s"
exit $rc
