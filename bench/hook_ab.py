#!/usr/bin/env python3
"""The pre-receive hook of several capsule binaries and `git diff-tree -r`, interleaved.

    python3 bench/run.py --sizes 10000 --work W --leave-servers --python-max 0 --validate-repeat 0
    python3 bench/hook_ab.py --work W --size 10000 --runs 30 OLD_CAPSULE NEW_CAPSULE [git]

Each round runs every binary once on the same push (the one bench/run.py left in W:
its packed server, the pushed objects in a quarantine, the ref update), so that a
shared machine's load falls on all of them alike. `git` stands for `git diff-tree -r`
between the same two commits. Prints CPU time (perf stat task-clock: min, first
quartile, median) and page faults per binary, with the load average around the run.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
           CAPSULE_USER="alice", NO_COLOR="1")


def measure(args, env, stdin=None):
    with tempfile.NamedTemporaryFile("r", suffix=".csv") as out:
        p = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock,page-faults", "-o", out.name, "--"] + args,
                           env=env, input=stdin, capture_output=True, text=True)
        values = {}
        for line in out:
            fields = line.split(",")
            if len(fields) > 3:
                values[fields[2]] = float(fields[0])
    return p, values["task-clock"], values["page-faults"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("binaries", nargs="+", help="capsule binaries, or `git` for git diff-tree -r")
    a = ap.parse_args()
    old, new, ref = (a.work / f"in{a.size}").read_text().split()
    server, quarantine = a.work / f"s{a.size}-packed.git", a.work / f"q{a.size}"
    results = {b: ([], []) for b in a.binaries}
    load = os.getloadavg()[0]
    for _ in range(a.runs):
        for b in a.binaries:
            if b == "git":
                env = dict(ENV, GIT_DIR=str(server), GIT_ALTERNATE_OBJECT_DIRECTORIES=str(quarantine))
                p, cpu, faults = measure(["git", "diff-tree", "-r", old, new], env)
                assert "deposit.json" in p.stdout, p.stderr
            else:
                env = dict(ENV, GIT_DIR=str(server), GIT_QUARANTINE_PATH=str(quarantine))
                p, cpu, faults = measure([b, "hook", "pre-receive"], env, f"{old} {new} {ref}\n")
                assert "ok:" in p.stderr, p.stderr
            results[b][0].append(cpu)
            results[b][1].append(faults)
    print(f"{a.size:,} deposits, {a.runs} rounds; load average (1 min) {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores")
    for b, (cpu, faults) in results.items():
        cpu.sort()
        print(f"{b}: CPU min {cpu[0]:.2f} ms, p25 {cpu[len(cpu) // 4]:.2f} ms, "
              f"median {statistics.median(cpu):.2f} ms; page faults {statistics.median(faults):.0f}")


if __name__ == "__main__":
    main()
