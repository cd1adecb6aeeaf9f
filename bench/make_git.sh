#!/usr/bin/env bash
# Turn a directory written by bench/gen_archive.py into a git repository with one commit.
#
#   bash bench/make_git.sh ARCHIVE_DIR [--pack]
#
# Author, committer and dates are fixed and the user's git configuration is ignored, so
# the same directory always gives the same commit id. --pack repacks the loose objects
# into one pack afterwards, like a server repository after `git gc`.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bash bench/make_git.sh ARCHIVE_DIR [--pack]" >&2
    exit 2
fi
dir=$1
pack=${2:-}
if [ -n "$pack" ] && [ "$pack" != "--pack" ]; then
    echo "make_git: unknown option $pack" >&2
    exit 2
fi
if [ ! -d "$dir/deposits" ]; then
    echo "make_git: $dir has no deposits/ (run bench/gen_archive.py first)" >&2
    exit 2
fi
if [ -e "$dir/.git" ]; then
    echo "make_git: $dir is already a git repository" >&2
    exit 2
fi

# Reproducible: no user or system config, no hooks, fixed identity and time.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="Capsule Bench" GIT_AUTHOR_EMAIL="bench@example.org"
export GIT_COMMITTER_NAME="Capsule Bench" GIT_COMMITTER_EMAIL="bench@example.org"
export GIT_AUTHOR_DATE="2024-01-01T00:00:00+0000" GIT_COMMITTER_DATE="2024-01-01T00:00:00+0000"

cd "$dir"
git init -q -b main
git config gc.auto 0            # no background gc in the middle of a measurement
git config core.autocrlf false
git add -A
n=$(find deposits -mindepth 1 -maxdepth 1 -type d | wc -l)
git commit -q --no-verify --no-gpg-sign -m "Import $n generated deposits"
if [ "$pack" = "--pack" ]; then
    git repack -adq
    git prune-packed
fi
echo "$(git rev-parse HEAD) $n deposits in $dir" >&2
