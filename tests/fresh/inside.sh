#!/bin/bash
# Runs inside a fresh machine that tests/fresh/run.sh makes, in its copy of the checkout
# (/root/ociruntime): inside.sh PLAN [PYTEST ARGS]
#   scripts  the README's two commands: `bash tools/demo.sh`, then `bash tests/run.sh` with the
#            test selection given as arguments;
#   pip      the README's pip install line, on a machine given only the packages the README names
#            for it, then the installed program's --version.
# Both first check that the machine has none of the project's packages. Each step's output goes to
# /root/fresh-out/STEP.log, its exit status to STEP.rc and its seconds to STEP.time; run.sh judges them.
set -u
plan=${1:?usage: inside.sh scripts|pip [PYTEST ARGS]}
shift
out=/root/fresh-out
mkdir -p "$out"
cd /root/ociruntime || exit 1

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2 start rc
    shift 2
    echo "== $name: $*"
    start=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>&1 </dev/null
    rc=$?
    echo "$(( $(date +%s) - start ))" >"$out/$name.time"
    echo "$rc" >"$out/$name.rc"
    echo "== $name: exit $rc after $(cat "$out/$name.time") s"
}

fresh() {
    local bad=0 p
    grep -H '^VERSION_ID=' /etc/os-release
    command -v python3 && python3 --version
    for p in gcc libc6-dev make python3-dev python3-venv python3-pip libseccomp-dev busybox-static \
             busybox runc crun; do
        if dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            echo "$p is installed: not a fresh machine"
            bad=1
        fi
    done
    for p in gcc cc busybox ociruntime pip3; do
        if command -v "$p"; then
            echo "$p is on PATH: not a fresh machine"
            bad=1
        fi
    done
    if python3 -c 'import ensurepip' 2>/dev/null; then
        echo "python3 can make a venv with pip: not a fresh machine"
        bad=1
    fi
    if [ -e .venv ]; then
        echo ".venv exists in the checkout"
        bad=1
    fi
    grep -q '^VERSION_ID="12"$' /etc/os-release || { echo "not Debian 12"; bad=1; }
    return $bad
}

# the README's command lines, in order (the demo, the tests, the pip install a user types), and
# the apt command it gives for the pip install
mapfile -t readme < <(python3 - <<'PY'
import re
text = open("README.md").read()
section = text.split("\n## Two commands", 1)[1].split("\n## ", 1)[0]
for line in section.splitlines():
    if line.startswith("    ") and line.strip():
        print(re.sub(r"\s+#.*", "", line.strip()))
apt = re.findall(r"Debian: `([^`]*apt install [^`]*)`", " ".join(section.split()))
print(apt[0] if len(apt) == 1 else "")
PY
)
if [ ${#readme[@]} -ne 4 ] || [ "${readme[0]}" != "bash tools/demo.sh" ] || [ "${readme[1]}" != "bash tests/run.sh" ] \
        || [[ "${readme[2]}" != *"pip install ./ociruntime"* ]] || [ -z "${readme[3]}" ]; then
    echo "README.md's 'Two commands' section does not hold the three command lines and the apt" \
         "command for the third that this test runs:" >&2
    printf '  %s\n' "${readme[@]}" >&2
    exit 1
fi

export -f fresh
step fresh 60 bash -c fresh
case $plan in
scripts)
    step demo 1200 bash -c "${readme[0]}"
    step tests 1800 bash -c "${readme[1]} \"\$@\"" bash "$@"
    ;;
pip)
    # apt as a person at a terminal would answer it: yes to installing
    echo 'APT::Get::Assume-Yes "true";' >/etc/apt/apt.conf.d/90fresh-assume-yes
    step apt 900 env DEBIAN_FRONTEND=noninteractive bash -c "${readme[3]}"
    # from the checkout's parent directory, where ./ociruntime is this checkout
    step pip 900 bash -c "cd /root && ${readme[2]}"
    venv=$(sed -n 's/.*python3 -m venv \([^ ]*\) .*/\1/p' <<<"${readme[2]}")
    step version 60 "$venv/bin/ociruntime" --version
    ;;
*)
    echo "inside.sh: unknown plan $plan" >&2
    exit 1 ;;
esac
