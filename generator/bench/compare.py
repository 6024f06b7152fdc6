#!/usr/bin/env python3
"""Side-by-side benchmark of two Quadlet generators (see compare.sh for usage).

For each size N it writes N realistic .container files (several keys each; every other one joins
a shared .network and mounts a shared .volume, every third one has [Install] WantedBy=), one
.network, one .volume and a container.d/ drop-in shared by all, then runs the two generators
ALTERNATELY (ours, reference, ours, ...) so that load changes on the machine hit both alike.
Every run writes into a FRESH, EMPTY output directory on tmpfs, as systemd gives a generator
(/run/systemd/generator is emptied before each run); creating and removing it is not timed.

Per run it records wall time and, from wait4(2), CPU time (user + system); peak RSS comes
from five extra runs each under /usr/bin/time. It prints
medians (and the min, the figure least disturbed by other load), then ratios reference/ours.
With valgrind available it also counts user-space instructions of one run each (a figure that
does not depend on machine load; kernel work shows up only in the system CPU time).

Only the standard library is used; valgrind and /usr/bin/time (Debian: valgrind, time) are
optional.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def write_corpus(src, n):
    os.makedirs(os.path.join(src, "container.d"))
    with open(os.path.join(src, "container.d", "10-restart.conf"), "w") as f:
        f.write("[Service]\nRestart=on-failure\nTimeoutStartSec=900\n")
    with open(os.path.join(src, "shared.network"), "w") as f:
        f.write(
            "[Unit]\nDescription=Shared application network\n\n"
            "[Network]\nSubnet=10.89.0.0/24\nGateway=10.89.0.1\nLabel=app=bench\n"
        )
    with open(os.path.join(src, "data.volume"), "w") as f:
        f.write("[Volume]\nLabel=app=bench\nUser=1000\nGroup=1000\n")
    for i in range(1, n + 1):
        shared = i % 2 == 1
        lines = [
            f"# Benchmark unit {i}",
            "[Unit]",
            f"Description=App {i}",
            "After=local-fs.target",
            "",
            "[Container]",
            f"Image=quay.io/example/app:{i}",
            f"ContainerName=app{i}",
            f'Environment=ID={i} MODE=prod "GREETING=hello world"',
            f"Label=app=app{i}",
            f"PublishPort={10000 + i}:80",
            f"Volume=/srv/app{i}:/srv:Z",
            "Volume=data.volume:/data" if shared else f"Volume=cache{i}:/cache",
            "Network=shared.network" if shared else "Network=host",
            "HealthCmd=/bin/check --fast",
            "AddCapability=CAP_NET_BIND_SERVICE",
            "NoNewPrivileges=true",
            f'Exec=--id {i} "--name=app {i}"',
            "",
            "[Service]",
            "Restart=always",
        ]
        if i % 3 == 1:
            lines += ["", "[Install]", "WantedBy=multi-user.target default.target"]
        with open(os.path.join(src, f"app{i}.container"), "w") as f:
            f.write("\n".join(lines) + "\n")


def count_files(d):
    return sum(len(files) + len(dirs) for _, dirs, files in os.walk(d))


def gen_env(src):
    """The generators' environment: the source directory, and UNITWRIGHT_PODMAN_VERSION when the
    benchmark itself runs with it (the podman release ours writes for; Quadlet ignores it), so
    that ours is timed writing the same units as the reference: e.g.
    UNITWRIGHT_PODMAN_VERSION=5.8.6 against Quadlet 5.8.6. Without it ours uses its default,
    `auto` (the detected version, cached in /run/unitwright)."""
    env = {"QUADLET_UNIT_DIRS": src}
    if "UNITWRIGHT_PODMAN_VERSION" in os.environ:
        env["UNITWRIGHT_PODMAN_VERSION"] = os.environ["UNITWRIGHT_PODMAN_VERSION"]
    return env


def run_once(binary, src, out_base, k):
    """One run into a fresh empty directory: (wall s, cpu s, entries written)."""
    out = os.path.join(out_base, f"run{k}")
    os.mkdir(out)
    env = gen_env(src)
    argv = [binary, "-no-kmsg-log", out]
    devnull = os.open(os.devnull, os.O_WRONLY)
    t0 = time.perf_counter()
    pid = os.posix_spawn(binary, argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{binary} exited with {code} (run it by hand on {src})")
    n = count_files(out)
    shutil.rmtree(out)
    return wall, ru.ru_utime + ru.ru_stime, n


def instructions(binary, src, out_base):
    """User-space instructions of one run (cachegrind's 'I refs'), or None.

    cachegrind rather than callgrind: callgrind aborts on the Go runtime's signals."""
    if shutil.which("valgrind") is None:
        return None
    out = os.path.join(out_base, "cachegrind")
    os.mkdir(out)
    try:
        r = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
             binary, "-no-kmsg-log", out],
            env=gen_env(src), capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(out)
    m = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
    return int(m.group(1).replace(",", "")) if m else None


def peak_rss(binary, src, out_base, k):
    """Peak RSS in KiB, from /usr/bin/time (None without it).

    Not from our own wait4(2): the kernel carries the peak RSS of the process image replaced by
    exec over, so a child spawned from this Python process would report Python's peak. time(1)
    is small (about 1 MiB, a floor that is in both figures)."""
    if not os.access("/usr/bin/time", os.X_OK):
        return None
    out = os.path.join(out_base, f"rss{k}")
    os.mkdir(out)
    try:
        r = subprocess.run(
            ["/usr/bin/time", "-f", "%M", binary, "-no-kmsg-log", out],
            env=gen_env(src), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, check=False)
    finally:
        shutil.rmtree(out)
    return int(r.stderr.strip().splitlines()[-1])


def ms(x):
    return f"{x * 1000:8.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ours")
    ap.add_argument("reference")
    ap.add_argument("sizes", nargs="*", type=int, default=[1, 100, 1000])
    ap.add_argument("--runs", type=int, default=0,
                    help="runs per generator and size (default: by size)")
    ap.add_argument("--no-valgrind", action="store_true")
    ap.add_argument("--ref-name", default="quadlet-5.4.2",
                    help="the reference's label, e.g. quadlet-5.8.6")
    a = ap.parse_args()
    ref = a.ref_name
    gens = [("ours", os.path.realpath(a.ours)),
            (ref, os.path.realpath(a.reference))]
    work = tempfile.mkdtemp(prefix="uw-bench-")
    out_base = tempfile.mkdtemp(prefix="uw-bench-out-", dir="/dev/shm")
    summary = []
    try:
        for n in a.sizes:
            src = os.path.join(work, f"src-{n}")
            write_corpus(src, n)
            runs = a.runs or (300 if n <= 10 else 100 if n <= 100 else 40)
            res = {name: [] for name, _ in gens}
            written = {}
            k = 0
            for _ in range(3):  # warm-up: page cache, dynamic loader
                for name, b in gens:
                    run_once(b, src, out_base, k)
                    k += 1
            for _ in range(runs):
                for name, b in gens:
                    w, c, files = run_once(b, src, out_base, k)
                    k += 1
                    res[name].append((w, c))
                    written[name] = files
            rss = {name: None for name, _ in gens}
            for _ in range(5):
                for name, b in gens:
                    m = peak_rss(b, src, out_base, k)
                    k += 1
                    if m is not None:
                        rss[name] = max(rss[name] or 0, m)
            ins = {}
            if not a.no_valgrind:
                for name, b in gens:
                    ins[name] = instructions(b, src, out_base)
            print(f"== {n} .container files (+1 .network, +1 .volume), {runs} alternating runs each")
            print(f"{'':14} {'wall med':>9} {'wall min':>9} {'CPU med':>9} {'CPU min':>9}"
                  f" {'peak RSS':>9} {'instr (M)':>10} {'entries':>8}")
            row = {}
            for name, _ in gens:
                ws = [r[0] for r in res[name]]
                cs = [r[1] for r in res[name]]
                i = ins.get(name)
                row[name] = (statistics.median(ws), min(ws), statistics.median(cs), min(cs),
                             rss[name] or 0, i)
                istr = f"{i / 1e6:10.2f}" if i else f"{'n/a':>10}"
                print(f"{name:14} {ms(row[name][0])}m {ms(row[name][1])}m {ms(row[name][2])}m"
                      f" {ms(row[name][3])}m {row[name][4]:>6} KiB {istr} {written[name]:>8}")
            o, r = row["ours"], row[ref]
            ratio = [r[j] / o[j] if o[j] else float("nan") for j in range(5)]
            iratio = f"{r[5] / o[5]:.1f}x" if o[5] and r[5] else "n/a"
            print(f"{'ratio ref/ours':14} {ratio[0]:8.1f}x {ratio[1]:8.1f}x {ratio[2]:8.1f}x"
                  f" {ratio[3]:8.1f}x {ratio[4]:8.1f}x {iratio:>10}")
            print()
            summary.append((n, o, r, ratio, iratio))
        v = ref.rsplit("-", 1)[-1]
        print(f"| units | wall ours / {v} (median) | CPU ours / {v} (median) "
              f"| instructions ours / {v} | peak RSS ours / {v} |")
        print("|---:|---|---|---|---|")
        for n, o, r, ratio, iratio in summary:
            ins = (f"{o[5] / 1e6:.2f} M / {r[5] / 1e6:.2f} M ({iratio})"
                   if o[5] and r[5] else "n/a")
            print(f"| {n} | {o[0] * 1000:.2f} ms / {r[0] * 1000:.2f} ms ({ratio[0]:.1f}x) "
                  f"| {o[2] * 1000:.2f} ms / {r[2] * 1000:.2f} ms ({ratio[2]:.1f}x) | {ins} "
                  f"| {o[4] / 1024:.1f} MiB / {r[4] / 1024:.1f} MiB ({ratio[4]:.1f}x) |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(out_base, ignore_errors=True)


if __name__ == "__main__":
    main()
