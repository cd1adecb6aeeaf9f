#!/usr/bin/env bash
# capsule and Hugo building the same records, interleaved in the same minutes.
#
#   bash bench/site_vs_hugo.sh N [ROUNDS]     (ROUNDS default 3)
#
# CAPSULE=path picks the binary; CAPSULES="old=path new=path" compares several
# binaries with Hugo in the same rounds (the order rotates between rounds).
#
# Uses the one-commit archive of bench/site.sh ($WORK/a$N; run that first, or this
# generates it the same way) and the Hugo site bench/hugo_pages.py makes of it. Each
# round builds with each tool in turn (the order rotates between rounds), each
# into a folder deleted just before, as users replace a site, with `sync` before and
# after the delete so that neither pays for the other's writes. Prints one line per
# build: tool, elapsed seconds, user and system CPU seconds, peak RSS, files and
# folders written, and the 1-minute load average just before the build.
# OUT=dir puts the outputs on another disk.
set -euo pipefail
n=$1
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
capsules=${CAPSULES:-capsule=${CAPSULE:-$root/target/release/capsule}}
work=${WORK:-/tmp/capsule-site-bench}
out=${OUT:-$work}
repo=$work/a$n
mkdir -p "$work" "$out"
if [ ! -d "$repo/.git" ]; then
  python3 "$root/bench/gen_archive.py" "$repo" --deposits "$n" --seed 1 --public
  bash "$root/bench/make_git.sh" "$repo" --pack
  bash "$root/bench/tag_records.sh" "$repo"
fi
hugo_src=$work/hugo-src$n
if [ ! -d "$hugo_src/content" ]; then
  python3 "$root/bench/hugo_pages.py" "$repo" "$hugo_src"
fi
one() {
  local tool=$1 binary=$2 dest=$out/vs-$1$n
  sync
  rm -rf "$dest"
  sync
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$tool" = hugo ]; then
    (cd "$hugo_src" && /usr/bin/time -f "%e %U %S %M" -o "$work/vs-time" \
      hugo --quiet -d "$dest" > /dev/null)
  else
    (cd "$repo" && /usr/bin/time -f "%e %U %S %M" -o "$work/vs-time" \
      "$binary" build --full --out "$dest" > /dev/null)
  fi
  read -r elapsed user sys rss < "$work/vs-time"
  local files dirs
  files=$(find "$dest" -type f | wc -l)
  dirs=$(find "$dest" -type d | wc -l)
  printf "%-10s %7.2f s  user %6.2f  sys %6.2f  %5d MB  %7d files  %7d folders  load %s\n" \
    "$tool" "$elapsed" "$user" "$sys" "$((rss / 1024))" "$files" "$dirs" "$load"
}
tools=(hugo=hugo $capsules)
for r in $(seq 1 "$rounds"); do
  for i in $(seq 0 $((${#tools[@]} - 1))); do
    t=${tools[$(( (i + r - 1) % ${#tools[@]} ))]}
    one "${t%%=*}" "${t#*=}"
  done
done
