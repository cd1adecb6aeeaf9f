#!/usr/bin/env python3
"""Measure the search index on generated archives and print the figures for BENCHMARKS.md.

    cargo build --release
    python3 bench/search.py [--sizes 10000,100000] [--work /tmp/capsule-search-bench] [--pack]

For each size it generates an archive (bench/gen_archive.py, bench/make_git.sh) and measures:
  * a full index (`capsule index --rebuild`): deposits per second, wall clock;
  * `capsule search` end to end (one process per query, output to a pipe), median of
    --repeat runs, for a word, a phrase, a prefix, a field query and a query with facets;
  * the index update after a commit that changes one deposit, median over --updates
    commits, in two places: in a clone (`capsule index` after a commit, which is what
    `capsule search` does after `git pull`), and on the server after a push through the
    installed hook (post-receive is set aside and its update run by hand, to time it
    alone; with deposits in shards it reads the few small trees the push changed);
  * `git grep` for the same word over the same archive, for comparison: in the working
    tree, and in the committed tree (`git grep ... HEAD`).
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import server as bare_server  # bench/run.py: a bare clone with the hook installed

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
CAPSULE = TARGET / "release" / "capsule"
ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
           GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.org",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.org",
           NO_COLOR="1")

QUERIES = [
    ("word", ["higgs"]),
    ("phrase", ['"top quark mass"']),
    ("prefix", ["lepto*"]),
    ("field", ["basic_info.keywords:ttbar"]),
    ("two words + filter", ["dark matter", "--status", "draft"]),
    ("word + facets", ["higgs", "--facets"]),
]


def deposit_path(dep_id: str) -> str:
    """deposits/<shard>/<id>/deposit.json, as capsule's deposit::metadata_path makes it."""
    return f"deposits/{hashlib.sha256(dep_id.encode()).hexdigest()[:2]}/{dep_id}/deposit.json"


def run(args, **kw):
    return subprocess.run(args, check=True, env=ENV, capture_output=True, text=True, **kw)


def timed(args, repeat, cwd):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        p = subprocess.run(args, env=ENV, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if p.returncode not in (0, 1):
            sys.exit(f"{args} failed: {p.stderr}")
    return statistics.median(times), p


def bench_size(n, work, repeat, updates, pack, reuse, full_runs):
    base = work / f"s{n}"
    if not (reuse and (base / ".git").exists()):
        if base.exists():
            shutil.rmtree(base)
        run([sys.executable, str(ROOT / "bench/gen_archive.py"), str(base), "--deposits", str(n), "--seed", "1"])
        run(["bash", str(ROOT / "bench/make_git.sh"), str(base)] + (["--pack"] if pack else []))

    full = []
    for _ in range(full_runs):
        start = time.perf_counter()
        p = run([str(CAPSULE), "index", "--rebuild", "--json"], cwd=base)
        full.append(time.perf_counter() - start)
        report = json.loads(p.stdout)
        assert report["drafts_indexed"] == n, report
    full_s = min(full)
    index_dir = base / ".git" / "capsule" / "index"
    size_mb = sum(f.stat().st_size for f in index_dir.iterdir()) / 1e6
    segments = len({f.name.split(".")[0] for f in index_dir.iterdir() if f.name.endswith(".idx")})

    searches = {}
    for name, args in QUERIES:
        median, p = timed([str(CAPSULE), "search", *args], repeat, base)
        total = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        searches[name] = (median * 1000, total)

    update_times = []
    for k in range(updates):
        target = base / deposit_path(f"ana-{(k * 7919) % n + 1:06d}")
        doc = json.loads(target.read_text())
        doc["general_title"] = doc["general_title"] + f" (revision {k})"
        target.write_text(json.dumps(doc, indent=2))
        run(["git", "commit", "-q", "-am", f"Revise one analysis ({k})"], cwd=base)
        start = time.perf_counter()
        p = run([str(CAPSULE), "index", "--json"], cwd=base)
        update_times.append(time.perf_counter() - start)
        report = json.loads(p.stdout)
        assert report["mode"] == "incremental" and report["drafts_indexed"] == 1, report
    update_ms = statistics.median(update_times) * 1000

    server_times = server_updates(base, n, updates)
    server_ms = statistics.median(server_times) * 1000

    grep_wt, _ = timed(["git", "grep", "-l", "-i", "-w", "higgs"], max(3, repeat // 4), base)
    grep_head, _ = timed(["git", "grep", "-l", "-i", "-w", "higgs", "HEAD"], max(3, repeat // 4), base)
    total = json.loads(run([str(CAPSULE), "search", "higgs", "--json", "--limit", "1"], cwd=base).stdout)["total"]
    greps = len(run(["git", "grep", "-l", "-i", "-w", "higgs"], cwd=base).stdout.splitlines())
    return {"deposits": n, "full_s": full_s, "full_per_s": n / full_s, "index_mb": size_mb,
            "segments": segments, "searches": searches, "update_ms": update_ms,
            "update_all_ms": [round(t * 1000, 1) for t in update_times],
            "server_update_ms": server_ms,
            "server_update_all_ms": [round(t * 1000, 1) for t in server_times],
            "grep_worktree_ms": grep_wt * 1000, "grep_head_ms": grep_head * 1000,
            "search_total": total, "grep_files": greps}


def server_updates(base, n, updates):
    """Times the index update that follows a push to a server with the hook installed."""
    srv = bare_server(base, base.parent / f"{base.name}-server.git", CAPSULE)
    (srv / "hooks" / "post-receive").rename(srv / "hooks" / "post-receive.off")
    # The clone's index reflects the same commit: start the server from a copy of it.
    shutil.copytree(base / ".git" / "capsule" / "index", srv / "capsule" / "index")
    assert json.loads(run([str(CAPSULE), "index", "--json"], cwd=srv).stdout)["mode"] == "up-to-date"
    pusher = dict(ENV, CAPSULE_USER="alice")
    times, k = [], 0
    while len(times) < updates:
        k += 1
        target = base / deposit_path(f"ana-{(k * 6007) % n + 1:06d}")
        doc = json.loads(target.read_text())
        if doc.get("_deposit", {}).get("owners") != ["alice"]:
            continue
        doc["general_title"] = doc["general_title"] + f" (pushed {k})"
        target.write_text(json.dumps(doc, indent=2))
        run(["git", "commit", "-q", "-am", f"Revise one analysis (push {k})"], cwd=base)
        subprocess.run(["git", "push", "-q", str(srv), "HEAD:main"], cwd=base, env=pusher,
                       check=True, capture_output=True, text=True)
        start = time.perf_counter()
        p = run([str(CAPSULE), "index", "--json"], cwd=srv)
        times.append(time.perf_counter() - start)
        report = json.loads(p.stdout)
        assert report["mode"] == "incremental" and report["drafts_indexed"] == 1, report
    shutil.rmtree(srv)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--work", default="/tmp/capsule-search-bench")
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--updates", type=int, default=11)
    ap.add_argument("--pack", action="store_true", help="pack the archive's objects (as a server after gc)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse archives already generated in --work (their history grows by --updates commits)")
    ap.add_argument("--full-runs", type=int, default=2, help="full index runs (the best is reported)")
    a = ap.parse_args()
    if not CAPSULE.exists():
        sys.exit(f"build first: cargo build --release ({CAPSULE} is missing)")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = [bench_size(int(s), work, a.repeat, a.updates, a.pack, a.reuse, a.full_runs) for s in a.sizes.split(",")]
    print("| deposits | full index | index size | update after a push, server (median) | update after a commit, clone (median) | git grep -w higgs: worktree / HEAD |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['deposits']:,} | {r['full_s']:.2f} s = {r['full_per_s']:,.0f}/s | {r['index_mb']:.0f} MB, {r['segments']} segments "
              f"| {r['server_update_ms']:.1f} ms | {r['update_ms']:.1f} ms | {r['grep_worktree_ms']:.0f} ms / {r['grep_head_ms']:.0f} ms |")
    print()
    print("| query | " + " | ".join(f"{r['deposits']:,} deposits" for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for name, args in QUERIES:
        cells = [f"{r['searches'][name][0]:.1f} ms" for r in rows]
        print(f"| `capsule search {' '.join(args)}` | " + " | ".join(cells) + " |")
    print(json.dumps(rows))
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
