#!/usr/bin/env python3
"""Measure capsule on generated archives and print the figures for BENCHMARKS.md.

    cargo build --release
    python3 bench/run.py [--sizes 1000,10000,100000] [--work /tmp/capsule-bench]

For each size it generates an archive (bench/gen_archive.py), makes it a git
repository, creates a server repository with capsule's hook, and measures:
  * the pre-receive hook for a push that changes one deposit (run directly, the way
    git runs it, with the new objects visible through GIT_QUARANTINE_PATH), and a
    full `git push` through the hook;
  * `capsule validate` over every deposit, and Python `jsonschema` (what CAP uses)
    on the same files (for sizes up to --python-max).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPSULE = ROOT / "target" / "release" / "capsule"
ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
           GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.org",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.org",
           CAPSULE_USER="alice", NO_COLOR="1")


def run(args, **kw):
    return subprocess.run(args, check=True, env=ENV, capture_output=True, text=True, **kw)


def timed(args, repeat, stdin=None, env=None, cwd=None):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        p = subprocess.run(args, input=stdin, env=env or ENV, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if p.returncode not in (0, 1):
            sys.exit(f"{args} failed: {p.stderr}")
    return statistics.median(times), p


def bench_size(n, work, python_max, repeat):
    base = work / f"a{n}"
    if base.exists():
        shutil.rmtree(base)
    start = time.perf_counter()
    run([sys.executable, str(ROOT / "bench/gen_archive.py"), str(base), "--deposits", str(n), "--seed", "1"])
    gen = time.perf_counter() - start
    run(["bash", str(ROOT / "bench/make_git.sh"), str(base)])
    server = work / f"s{n}.git"
    if server.exists():
        shutil.rmtree(server)
    run(["git", "clone", "-q", "--bare", str(base), str(server)])
    run([str(CAPSULE), "hook", "install", str(server)])
    run(["git", "remote", "add", "server", str(server)], cwd=base)

    # One changed deposit, committed in the work repository only.
    old = run(["git", "rev-parse", "HEAD"], cwd=base).stdout.strip()
    target = base / "deposits" / f"ana-{n // 2:06d}" / "deposit.json"
    doc = json.loads(target.read_text())
    doc["general_title"] = doc["general_title"] + " (revised)"
    target.write_text(json.dumps(doc, indent=2))
    run(["git", "commit", "-q", "-am", "Revise one analysis"], cwd=base)
    new = run(["git", "rev-parse", "HEAD"], cwd=base).stdout.strip()

    env = dict(ENV, GIT_DIR=str(server), GIT_QUARANTINE_PATH=str(base / ".git" / "objects"))
    hook, p = timed([str(CAPSULE), "hook", "pre-receive"], repeat, stdin=f"{old} {new} refs/heads/main\n", env=env)
    assert "ok:" in p.stderr, p.stderr

    # A full push through git and the hook (then undone, to push again).
    pushes = []
    for _ in range(max(3, repeat // 4)):
        start = time.perf_counter()
        run(["git", "push", "-q", "server", "HEAD:main"], cwd=base)
        pushes.append(time.perf_counter() - start)
        run(["git", "update-ref", "refs/heads/main", old], cwd=server)
        run(["git", "reflog", "expire", "--expire=now", "--all"], cwd=server)
    push = statistics.median(pushes)

    start = time.perf_counter()
    p = subprocess.run([str(CAPSULE), "validate", "--json"], cwd=base, env=ENV, capture_output=True, text=True)
    validate = time.perf_counter() - start
    report = json.loads(p.stdout)
    assert report["valid"], "generated deposits must be valid"

    py = None
    if n <= python_max:
        p = run([sys.executable, str(ROOT / "bench/validate_python.py"), str(base), "--json"])
        py = json.loads(p.stdout)
    return {"deposits": n, "generate_s": gen, "hook_ms": hook * 1000, "push_ms": push * 1000,
            "validate_s": validate, "validate_per_s": n / validate,
            "python_per_s": py and py["per_second"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--work", default="/tmp/capsule-bench")
    ap.add_argument("--python-max", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not CAPSULE.exists():
        sys.exit("build first: cargo build --release")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = [bench_size(int(s), work, a.python_max, a.repeat) for s in a.sizes.split(",")]
    print("| deposits | pre-receive hook, 1 deposit changed (median) | git push end to end (median) | capsule validate (all) | Python jsonschema |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        py = f"{r['python_per_s']:,.0f}/s" if r["python_per_s"] else "—"
        print(f"| {r['deposits']:,} | {r['hook_ms']:.1f} ms | {r['push_ms']:.0f} ms | {r['validate_s']:.2f} s = {r['validate_per_s']:,.0f}/s | {py} |")
    print(json.dumps(rows))
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
