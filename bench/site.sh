#!/usr/bin/env bash
# Site benchmarks: full build, rebuild after one record changed, search payloads, and
# Hugo on the same records.
#
#   bash bench/site.sh N          (needs target/release/capsule, python3, hugo, /usr/bin/time)
#
# Generates a public archive of N deposits with one record tag each (bench/gen_archive.py
# --public, bench/make_git.sh --pack, bench/tag_records.sh) under $WORK (default
# /tmp/capsule-site-bench), then measures. HISTORY=1 gives the archive the history
# pushes leave instead (bench/make_git_history.py: one commit and record tag per
# deposit), in $WORK/h$N. HUGO=0 leaves Hugo out.
set -euo pipefail
n=$1
root=$(cd "$(dirname "$0")/.." && pwd)
capsule=${CAPSULE:-$root/target/release/capsule}
work=${WORK:-/tmp/capsule-site-bench}
mkdir -p "$work"
if [ "${HISTORY:-0}" = 1 ]; then
  repo=$work/h$n
  if [ ! -d "$repo/.git" ]; then
    python3 "$root/bench/gen_archive.py" "$repo" --deposits "$n" --seed 1 --public
    python3 "$root/bench/make_git_history.py" "$repo"
  fi
else
  repo=$work/a$n
  if [ ! -d "$repo/.git" ]; then
    python3 "$root/bench/gen_archive.py" "$repo" --deposits "$n" --seed 1 --public
    bash "$root/bench/make_git.sh" "$repo" --pack
    bash "$root/bench/tag_records.sh" "$repo"
  fi
fi
label=${repo##*/}   # a$N or h$N, so that the outputs of the two shapes do not mix
cd "$repo"
rm -rf "$work/site$label"
echo "== full build of $n records"
/usr/bin/time -v "$capsule" build --full --json --out "$work/site$label" > "$work/report$label.json" 2> "$work/time$label.txt"
grep -E "Elapsed|Maximum resident" "$work/time$label.txt"
python3 - "$work/report$label.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"records {r['records']}, pages {r['pages']}, files {r['files']}, bytes {r['bytes']/1e6:.1f} MB")
print("search", json.dumps(r["search"]))
print("phases (ms)", json.dumps(r["phases"]))
PY
echo "== rebuild after one record changed (a new version of ana-000001)"
git tag -a records/ana-000001/v2 -m "Publish ana-000001 v2" HEAD 2>/dev/null || true
/usr/bin/time -v "$capsule" build --json --out "$work/site$label" > "$work/inc$label.json" 2> "$work/inctime$label.txt"
grep -E "Elapsed|Maximum resident" "$work/inctime$label.txt"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('rendered records', r['rendered_records'], 'files written', r['files_written']); print('phases (ms)', json.dumps(r['phases']))" "$work/inc$label.json"
git tag -d records/ana-000001/v2 >/dev/null
echo "== first query payload for 'higgs boson' (manifest + shards + result chunks)"
python3 - "$work/site$label" <<'PY'
import json, os, sys
site = sys.argv[1]
def body(path):
    text = open(path, encoding="utf-8").read()
    return text[text.index("(") + 1: text.rindex(")")]
m = json.loads(body(f"{site}/search/manifest.js"))
size = os.path.getsize(f"{site}/search/manifest.js")
total = None
for term in ["higgs", "boson"]:
    keys = [k for k in m["shards"] if term.startswith(k)]
    key = max(keys, key=len)
    path = f"{site}/search/t/{key.encode().hex() or '_'}.js"
    size += os.path.getsize(path)
    inner = body(path)
    terms = json.loads("[" + inner + "]")[1]
    docs, d = {}, 0
    for i in range(0, len(terms.get(term, [])), 2):
        d = terms[term][0] if i == 0 else d + terms[term][i]
        docs[d] = terms[term][i + 1]
    total = docs if total is None else {k: total[k] + v for k, v in docs.items() if k in total}
top = sorted(total, key=lambda k: (-total[k], k))[:20]
chunks = {d // m["chunk"] for d in top}
size += sum(os.path.getsize(f"{site}/search/d/{c}.js") for c in chunks)
print(f"{len(total)} matches; first query loads {size/1e3:.0f} kB ({len(chunks)} result chunks)")
PY
if [ "${HUGO:-1}" = 1 ] && command -v hugo >/dev/null; then
  echo "== hugo on the same records"
  rm -rf "$work/hugo$label"
  python3 "$root/bench/hugo_pages.py" "$repo" "$work/hugo$label"
  (cd "$work/hugo$label" && /usr/bin/time -v hugo --quiet > /dev/null 2> "$work/hugotime$label.txt") || true
  grep -E "Elapsed|Maximum resident" "$work/hugotime$label.txt"
fi
