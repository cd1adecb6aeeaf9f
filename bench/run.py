#!/usr/bin/env python3
"""Measure capsule on generated archives and print the figures for BENCHMARKS.md.

    cargo build --release
    python3 bench/run.py [--sizes 1000,10000,100000] [--work /tmp/capsule-bench] [--keep]

For each size it generates an archive (bench/gen_archive.py), makes it a git
repository, creates server repositories with capsule's hook (one with loose objects,
one packed as after `git gc`), and measures:
  * the pre-receive hook for a push that changes one deposit, run directly the way git
    runs it: the ref update on stdin, and only the pushed objects in a quarantine
    directory (GIT_QUARANTINE_PATH), written loose as git's unpack-objects writes a
    small push. Wall time and, where `perf` is installed, CPU time (task-clock);
  * `git diff-tree -r` between the same two commits on the same repository: the least
    any tool that finds the changed files must do (git inflates the same trees);
  * a whole `git push` through the hook, and the same push to a server without hooks;
  * `capsule validate --json` over every deposit (median of --validate-repeat runs),
    and Python `jsonschema` (what CAP uses) on the same files, up to --python-max.

The capsule binary is $CARGO_TARGET_DIR/release/capsule (or target/release/capsule),
or --capsule. With --keep the generated archives stay in --work and later runs reuse
them (generating 100k deposits takes minutes).
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
           GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.org",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.org",
           CAPSULE_USER="alice", NO_COLOR="1")
HAVE_PERF = shutil.which("perf") is not None


def deposit_path(dep_id: str) -> str:
    """deposits/<shard>/<id>/deposit.json, as capsule's deposit::metadata_path makes it."""
    return f"deposits/{hashlib.sha256(dep_id.encode()).hexdigest()[:2]}/{dep_id}/deposit.json"


def run(args, **kw):
    return subprocess.run(args, check=True, env=kw.pop("env", ENV), capture_output=True, text=True, **kw)


def cpu_seconds(args, stdin, env, cwd=None):
    """CPU time (user + system) of one run, from `perf stat -e task-clock`."""
    with tempfile.NamedTemporaryFile("r", suffix=".csv") as out:
        subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "-o", out.name, "--"] + args,
                       input=stdin, env=env, cwd=cwd, capture_output=True, text=True)
        for line in out:
            if "task-clock" in line:
                return float(line.split(",")[0]) / 1000
    return None


def timed(args, repeat, stdin=None, env=None, cwd=None):
    """Median wall time, minimum wall time, median CPU time (or None), last result."""
    times, cpus = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        p = subprocess.run(args, input=stdin, env=env or ENV, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if p.returncode not in (0, 1):
            sys.exit(f"{args} failed: {p.stderr}")
        if HAVE_PERF:
            cpus.append(cpu_seconds(args, stdin, env or ENV, cwd))
    cpu = statistics.median(cpus) if cpus and None not in cpus else None
    return statistics.median(times), min(times), cpu, p


def archive(n, work, keep):
    """The generated archive with its one import commit (reused with --keep)."""
    base = work / f"a{n}"
    stamp = base / ".git" / "bench-complete"
    if keep and stamp.exists():
        return base, 0.0
    if base.exists():
        shutil.rmtree(base)
    start = time.perf_counter()
    run([sys.executable, str(ROOT / "bench/gen_archive.py"), str(base), "--deposits", str(n), "--seed", "1"])
    gen = time.perf_counter() - start
    run(["bash", str(ROOT / "bench/make_git.sh"), str(base)])
    stamp.touch()
    return base, gen


def server(base, path, capsule, pack=False, hook=True):
    if path.exists():
        shutil.rmtree(path)
    run(["git", "clone", "-q", "--bare", str(base), str(path)])
    run(["git", "config", "gc.auto", "0"], cwd=path)
    if pack:
        run(["git", "repack", "-adq"], cwd=path)
        run(["git", "prune-packed"], cwd=path)
    if hook:
        run([str(capsule), "hook", "install", str(path)])
    return path


def bench_size(n, work, a, capsule):
    base, gen = archive(n, work, a.keep)
    servers = {
        "loose": server(base, work / f"s{n}.git", capsule),
        "packed": server(base, work / f"s{n}-packed.git", capsule, pack=True),
    }
    # Cloned from the packed server: its pack is hard-linked, not made again (a repack
    # of 1M deposits takes a quarter of an hour).
    plain = server(servers["packed"], work / f"s{n}-nohook.git", capsule, hook=False)

    # One changed deposit, committed in a clone (the generated archive stays as it is).
    clone = work / f"w{n}"
    if clone.exists():
        shutil.rmtree(clone)
    run(["git", "clone", "-q", str(base), str(clone)])
    run(["git", "config", "gc.auto", "0"], cwd=clone)
    old = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    target = clone / deposit_path(f"ana-{n // 2:06d}")
    doc = json.loads(target.read_text())
    doc["general_title"] = doc["general_title"] + " (revised)"
    target.write_text(json.dumps(doc, indent=2))
    run(["git", "commit", "-q", "-am", "Revise one analysis"], cwd=clone)
    new = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()

    # The quarantine git would make: only the pushed objects, loose.
    quarantine = work / f"q{n}"
    if quarantine.exists():
        shutil.rmtree(quarantine)
    quarantine.mkdir()
    pushed = run(["git", "rev-list", "--objects", new, "--not", old], cwd=clone).stdout.split("\n")
    qenv = dict(ENV, GIT_OBJECT_DIRECTORY=str(quarantine))
    for line in filter(None, pushed):
        oid = line.split()[0]
        kind = run(["git", "cat-file", "-t", oid], cwd=clone).stdout.strip()
        body = subprocess.run(["git", "cat-file", kind, oid], cwd=clone, env=ENV, capture_output=True, check=True).stdout
        subprocess.run(["git", "hash-object", "-w", "-t", kind, "--stdin"], input=body, cwd=clone, env=qenv,
                       capture_output=True, check=True)

    row = {"deposits": n, "generate_s": gen}
    for kind, path in servers.items():
        env = dict(ENV, GIT_DIR=str(path), GIT_QUARANTINE_PATH=str(quarantine))
        med, low, cpu, p = timed([str(capsule), "hook", "pre-receive"], a.repeat,
                                 stdin=f"{old} {new} refs/heads/main\n", env=env)
        assert "ok:" in p.stderr, p.stderr
        row[f"hook_{kind}_ms"], row[f"hook_{kind}_min_ms"] = med * 1000, low * 1000
        row[f"hook_{kind}_cpu_ms"] = cpu and cpu * 1000
        genv = dict(ENV, GIT_DIR=str(path), GIT_ALTERNATE_OBJECT_DIRECTORIES=str(quarantine))
        med, low, cpu, p = timed(["git", "diff-tree", "-r", old, new], a.repeat, env=genv)
        assert "deposit.json" in p.stdout, p.stdout + p.stderr
        row[f"diff_tree_{kind}_ms"], row[f"diff_tree_{kind}_min_ms"] = med * 1000, low * 1000
        row[f"diff_tree_{kind}_cpu_ms"] = cpu and cpu * 1000

    # Whole pushes through git (then undone, to push again), with and without the hook.
    for label, path in [("push_ms", servers["packed"]), ("push_nohook_ms", plain)]:
        run(["git", "remote", "add", label, str(path)], cwd=clone)
        pushes = []
        for _ in range(max(3, a.repeat // 3)):
            start = time.perf_counter()
            run(["git", "push", "-q", label, "HEAD:main"], cwd=clone)
            pushes.append(time.perf_counter() - start)
            run(["git", "update-ref", "refs/heads/main", old], cwd=path)
            run(["git", "reflog", "expire", "--expire=now", "--all"], cwd=path)
        row[label] = statistics.median(pushes) * 1000

    if a.validate_repeat > 0:
        runs = []
        for _ in range(a.validate_repeat):
            start = time.perf_counter()
            p = subprocess.run([str(capsule), "validate", "--json"], cwd=base, env=ENV, capture_output=True, text=True)
            runs.append(time.perf_counter() - start)
            report = json.loads(p.stdout)
            assert report["valid"] and len(report["deposits"]) == n, "generated deposits must be valid"
        row["validate_s"] = statistics.median(runs)
        row["validate_per_s"] = n / row["validate_s"]
        if HAVE_PERF:
            row["validate_cpu_s"] = cpu_seconds([str(capsule), "validate", "--json"], None, ENV, cwd=base)
    row["python_per_s"] = None
    if n <= a.python_max:
        p = run([sys.executable, str(ROOT / "bench/validate_python.py"), str(base), "--json"])
        row["python_per_s"] = json.loads(p.stdout)["per_second"]
    if a.leave_servers:
        # For bench/hook_ab.py: the packed server, the quarantine and the ref update.
        (work / f"in{n}").write_text(f"{old} {new} refs/heads/main\n")
        for path in [servers["loose"], plain, clone]:
            shutil.rmtree(path)
    else:
        for path in [*servers.values(), plain, clone, quarantine]:
            shutil.rmtree(path)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--work", default="/tmp/capsule-bench")
    ap.add_argument("--capsule", type=Path, default=TARGET / "release" / "capsule")
    ap.add_argument("--python-max", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=21, help="runs of the hook and diff-tree (median)")
    ap.add_argument("--validate-repeat", type=int, default=5,
                    help="runs of capsule validate (median); 0 skips it (at 1M it takes minutes a run)")
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the generated archives")
    ap.add_argument("--leave-servers", action="store_true",
                    help="leave each size's packed server, quarantine and ref update (in<N>) in --work "
                         "for bench/hook_ab.py (implies --keep)")
    a = ap.parse_args()
    a.keep = a.keep or a.leave_servers
    if not a.capsule.exists():
        sys.exit(f"{a.capsule} does not exist: build first (cargo build --release) or pass --capsule")
    capsule = a.capsule.resolve()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    load_before = os.getloadavg()[0]
    for size in a.sizes.split(","):
        rows.append(bench_size(int(size), work, a, capsule))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    # The machine may be shared: say how busy it was.
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
          f"{os.cpu_count()} cores")

    def ms(value):
        return f"{value:.1f} ms" if value is not None else "—"

    print("| deposits | hook, loose objects | hook, packed | `git diff-tree -r`, packed | git push with hook | git push, no hook |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['deposits']:,} | {ms(r['hook_loose_ms'])} (CPU {ms(r['hook_loose_cpu_ms'])}) "
              f"| {ms(r['hook_packed_ms'])} (CPU {ms(r['hook_packed_cpu_ms'])}) "
              f"| {ms(r['diff_tree_packed_ms'])} (CPU {ms(r['diff_tree_packed_cpu_ms'])}) "
              f"| {r['push_ms']:.0f} ms | {r['push_nohook_ms']:.0f} ms |")
    print()
    print("| deposits | capsule validate (all) | CPU | Python jsonschema |")
    print("|---:|---:|---:|---:|")
    for r in filter(lambda r: "validate_s" in r, rows):
        py = f"{r['python_per_s']:,.0f}/s" if r["python_per_s"] else "—"
        cpu = f"{r['validate_cpu_s']:.2f} s" if r.get("validate_cpu_s") else "—"
        print(f"| {r['deposits']:,} | {r['validate_s']:.2f} s = {r['validate_per_s']:,.0f}/s | {cpu} | {py} |")
    print(json.dumps(rows))
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
