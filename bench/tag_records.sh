#!/usr/bin/env bash
# Publish every deposit of a bench repository as record v1, cheaply: one
# `git fast-import` run writes all the annotated tags records/<id>/v1 on HEAD.
#
#   bash bench/tag_records.sh REPO_DIR
#
# Fixed tagger and date, so the same repository always gets the same tags.
set -euo pipefail
dir=$1
cd "$dir"
head=$(git rev-parse HEAD)
# Deposits live in deposits/<shard>/<id>/: the ids are the folder names two levels down.
git ls-tree -d -r --name-only HEAD deposits/ | awk -F/ 'NF == 3 { print $3 }' | awk -v head="$head" '{
  msg = "Publish " $0 " v1\n"
  printf "tag records/%s/v1\nfrom %s\ntagger Capsule Bench <bench@example.org> 1704067200 +0000\ndata %d\n%s\n", $0, head, length(msg), msg
}' | git fast-import --quiet
git pack-refs --all
echo "$(git tag -l 'records/*' | wc -l) record tags in $dir" >&2
