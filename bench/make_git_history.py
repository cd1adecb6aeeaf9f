#!/usr/bin/env python3
"""Turn a folder written by bench/gen_archive.py into a git repository with the
history pushes would leave: one commit per deposit, each published as record v1 at
its own commit (annotated tag records/<id>/v1), then packed like a server after
`git gc`.

    python3 bench/make_git_history.py ARCHIVE_DIR

bench/make_git.sh with bench/tag_records.sh makes one commit that every tag points
at; here every record version reads its deposit from a different `deposits/` tree,
as in a real archive. Identity and dates are fixed, so the same folder always gives
the same commits.
"""
import os
import subprocess
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/make_git_history.py ARCHIVE_DIR")
    src = sys.argv[1]
    if not os.path.isdir(os.path.join(src, "deposits")):
        sys.exit(f"make_git_history: {src} has no deposits/ (run bench/gen_archive.py first)")
    if os.path.exists(os.path.join(src, ".git")):
        sys.exit(f"make_git_history: {src} is already a git repository")
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    git = lambda *args: subprocess.run(["git", "-C", src, *args], check=True, env=env)
    subprocess.run(["git", "init", "-q", "-b", "main", src], check=True, env=env)
    git("config", "gc.auto", "0")
    importer = subprocess.Popen(
        ["git", "-C", src, "fast-import", "--quiet"], stdin=subprocess.PIPE, env=env
    )
    out = importer.stdin
    when = 1704067200
    marks = 0

    def data(body):
        out.write(b"data %d\n" % len(body))
        out.write(body)
        out.write(b"\n")

    def files(top):
        full_top = os.path.join(src, top)
        if os.path.isfile(full_top):
            yield top, open(full_top, "rb").read()
            return
        for folder, dirs, names in os.walk(full_top):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, src), open(path, "rb").read()

    def commit(message, entries):
        nonlocal marks, when
        marks += 1
        when += 60
        out.write(b"commit refs/heads/main\nmark :%d\n" % marks)
        out.write(b"committer Capsule Bench <bench@example.org> %d +0000\n" % when)
        data(message.encode())
        if marks > 1:
            out.write(b"from :%d\n" % (marks - 1))
        for path, content in entries:
            out.write(b"M 100644 inline %s\n" % path.encode())
            data(content)
        return marks

    setup = [
        entry
        for top in sorted(os.listdir(src))
        if top not in (".git", "deposits")
        for entry in files(top)
    ]
    commit("Set up the archive", setup)
    deposits = os.path.join(src, "deposits")
    ids = sorted(
        (deposit, shard)
        for shard in os.listdir(deposits)
        if os.path.isdir(os.path.join(deposits, shard))
        for deposit in os.listdir(os.path.join(deposits, shard))
    )
    for deposit, shard in ids:
        mark = commit(f"Publish {deposit}", list(files(f"deposits/{shard}/{deposit}")))
        out.write(b"tag records/%s/v1\nfrom :%d\n" % (deposit.encode(), mark))
        out.write(b"tagger Capsule Bench <bench@example.org> %d +0000\n" % when)
        data(f"Publish {deposit} v1\n".encode())
    out.close()
    if importer.wait() != 0:
        sys.exit("make_git_history: git fast-import failed")
    git("reset", "-q", "--hard", "main")
    git("repack", "-adq")
    git("pack-refs", "--all")
    print(f"{len(ids)} deposits in {src}, one commit and record tag each", file=sys.stderr)


if __name__ == "__main__":
    main()
