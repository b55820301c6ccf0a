#!/usr/bin/env python3
"""What the opt-in features cost (a benchmark, not a test): create and delete of one busybox
bundle, plain and with the networking and overlay annotations, interleaved, in a network
namespace of its own (removed at the end) and a state root in a temporary directory.

    sudo python3 bench/extras.py [-n 20] [--ociruntime PATH]

Prints the median [min-max] of each in ms.  Addresses are from 10.254.0.0/24, inside that
namespace only.
"""
import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

VARIANTS = {
    "plain": {},
    "net": {"org.ociruntime.net.bridge": "benchbr0", "org.ociruntime.net.subnet": "10.254.0.0/24"},
    "net+nat+port (nft)": {"org.ociruntime.net.bridge": "benchbr0", "org.ociruntime.net.subnet": "10.254.0.0/24",
                           "org.ociruntime.net.nat": "true", "org.ociruntime.net.ports": "8080:80"},
    "overlay": {"org.ociruntime.overlay": "true"},
    "overlay (tmpfs)": {"org.ociruntime.overlay": "true", "org.ociruntime.overlay.upper": "tmpfs"},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--ociruntime", default=os.path.join(os.path.dirname(sys.executable), "ociruntime"))
    args = ap.parse_args()
    from helpers import default_spec
    work = tempfile.mkdtemp(prefix="oci-bench-extras-")
    ns = "oci-bench-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["bash", os.path.join(HERE, "..", "tests", "mkrootfs.sh"), work + "/rootfs"], check=True,
                       stdout=subprocess.DEVNULL)
        root = work + "/root"
        times = {v: {"create": [], "delete": []} for v in VARIANTS}
        for i in range(args.n):
            for name, ann in VARIANTS.items():
                bundle = "%s/b-%d" % (work, list(VARIANTS).index(name))
                if not os.path.exists(bundle):
                    os.mkdir(bundle)
                    spec = default_spec(["true"])
                    spec["root"] = {"path": work + "/rootfs", "readonly": not ann.get("org.ociruntime.overlay")}
                    spec["annotations"] = ann
                    with open(bundle + "/config.json", "w") as f:
                        json.dump(spec, f)
                cid = "bench-%d" % i
                cmd = ["nsenter", "--net=/run/netns/" + ns, args.ociruntime, "--root", root]
                for op, argv in (("create", ["create", "--bundle", bundle, cid]), ("delete", ["delete", "--force", cid])):
                    t = time.perf_counter()
                    subprocess.run(cmd + argv, check=True)
                    times[name][op].append((time.perf_counter() - t) * 1000)
        print("# %s, load %s, n=%d (nsenter's exec included in each)" % (
            time.strftime("%Y-%m-%d %H:%M"), " ".join(open("/proc/loadavg").read().split()[:3]), args.n))
        for name, ops in times.items():
            print("%-22s" % name + "".join("  %s %5.1f [%5.1f-%5.1f]" % (op, statistics.median(v), min(v), max(v))
                                          for op, v in ops.items()))
    finally:
        subprocess.run(["ip", "netns", "delete", ns])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
