#!/usr/bin/env bash
# Packages benchmark. The 151-node BitScope module built raw from the e2e base (Debian's
# real arm64 packages, tests/e2e/make-base.sh) onto XFS with reflinks (a loop-mounted
# file, since this machine's disk is ext4), in the same run:
#   1. as shipped (no packages);
#   2. with its workers asking for apache2, resolved by pibake against the base's own
#      Debian sources, with the lock written and the package cache warm (a first build
#      fetched everything);
# best of three each, every timed command ending in `sync`. Then what the cache holds
# against what the nodes carry.
# Needs root (loop mount), xfsprogs, the e2e base's tools, and the Debian archive.
#
# usage: bash benches/packages.sh [WORKDIR]   (default: target/bench-packages)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
source benches/lib.sh
work=$(mkdir -p "${1:-target/bench-packages}" && cd "${1:-target/bench-packages}" && pwd)
cargo build --release --quiet
bin=$PWD/target/release/pibake
base=$(bash tests/e2e/make-base.sh)

xfs_up "$work" "$base"
rm -f "$work/key" "$work/key.pub"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key"

cluster() { # name [packages] -> cluster file
  local dir=$work/$1
  rm -rf "$dir"
  mkdir -p "$dir/profiles"
  sed -e "s|^base:.*|base: $xfs/base.img|" -e "s|^    - ssh-ed25519 .*|    - $(cat "$work/key.pub")|" \
    examples/bitscope-module/cluster.yaml >"$dir/cluster.yaml"
  if [[ -n ${2:-} ]]; then
    printf 'extends: worker\npackages: [%s]\n' "$2" >"$dir/profiles/web-worker.yaml"
    sed -i 's|^roles: { head: {}, worker: {} }$|roles: { head: {}, worker: { profile: web-worker } }|' "$dir/cluster.yaml"
    grep -q "profile: web-worker" "$dir/cluster.yaml"
  fi
  echo "$dir/cluster.yaml"
}
plain=$(cluster plain)
pkgs=$(cluster pkgs apache2)


cache=$xfs/cache
# Warm: the base's chunk index, then the lock and the package cache (this fetches).
"$bin" build "$plain" --node mgmt --out "$xfs/warm" --cache-dir "$cache" --quiet >/dev/null
t_fetch=$(secs "$bin" build "$pkgs" --node node001 --out "$xfs/warm" --cache-dir "$cache" --quiet)
rm -rf "$xfs/warm"

t_plain=$(best "$xfs/out" "$bin" build "$plain" --out "$xfs/out" --cache-dir "$cache" --quiet)
t_pkgs=$(best "$xfs/out" "$bin" build "$pkgs" --out "$xfs/out" --cache-dir "$cache" --quiet)
used=$(df -k --output=used "$xfs" | tail -1)

debs=$(grep -c '^    - name:' "$work/pkgs/pibake.lock")
deb_bytes=$(awk '/^      size:/ { s += $2 } END { print s }' "$work/pkgs/pibake.lock")
cached=$(find "$cache/apt/sha256" -type f | wc -l)
cached_debs=$(python3 -c 'import os,sys; d=sys.argv[1]; print(sum(open(os.path.join(d,f),"rb").read(8)==b"!<arch>\n" for f in os.listdir(d)))' "$cache/apt/sha256")
workers=$(python3 -c 'import json,sys; print(sum(1 for n in json.load(open(sys.argv[1]))["nodes"] if n["packages"]))' "$xfs/out/manifest.json")

printf 'machine        %d cores; outputs on XFS (reflink) in a loop file on %s\n' "$(nproc)" "$(df -T "$work" | awk 'NR == 2 { print $2 }')"
printf 'base           %s (%d MiB)\n' "$(basename "$base")" $(($(stat -c %s "$base") >> 20))
printf 'first build    node001 with apache2: resolve + fetch %d packages (%d KiB) + build: %.2f s\n' "$debs" $((deb_bytes >> 10)) "$t_fetch"
printf 'BitScope       151 nodes raw: as shipped %.2f s; workers with apache2 (lock kept, cache warm) %.2f s = %.2fx (target <= 1.2x)\n' \
  "$t_plain" "$t_pkgs" "$(echo "$t_pkgs / $t_plain" | bc -l)"
printf 'cache          %d files: %d .debs (the lock names %d) and %d indices, for %d nodes carrying them; %d MiB used on the XFS after\n' \
  "$cached" "$cached_debs" "$debs" $((cached - cached_debs)) "$workers" $((used >> 10))
[ "$cached_debs" -eq "$debs" ] || { echo "the cache does not hold each .deb exactly once" >&2; exit 1; }
