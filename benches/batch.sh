#!/usr/bin/env bash
# Batch benchmark (issue: BitScope-scale batches). Synthesizes a Raspberry Pi OS
# Lite-sized base: 2.7 GiB image, 512 MiB FAT32 bootfs at 8 MiB, ext4 rootfs holding about
# 1.8 GiB of real binaries and text from this machine's /usr on top of the demo's Pi OS
# skeleton (os-release, fstab, users, units), hash-indexed as a filled root is. Then, in
# the same run:
#   1. one node, raw:     pibake build --node head   vs  cp --reflink=auto --sparse=always
#   2. one node, .img.zst: pibake build --format zst  vs  cp of the base's .img.zst
#   3. the 151-node BitScope example, raw, on a reflink filesystem (XFS in a loop-mounted
#      file, since this machine's disk is ext4), with peak memory; and the space check's
#      answer for the same batch on the ext4 disk.
# Every timed command ends with `sync`, so data written counts, not just data queued.
# Needs root (loop mount), xfsprogs, e2fsprogs, dosfstools, mtools, fdisk, zstd, GNU time.
#
# usage: bash benches/batch.sh [WORKDIR]   (default: target/bench-batch; the base is kept)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
source benches/lib.sh
work=$(mkdir -p "${1:-target/bench-batch}" && cd "${1:-target/bench-batch}" && pwd)
cargo build --release --quiet
bin=$PWD/target/release/pibake
base=$work/base.img
cache=$work/cache

if [[ ! -f $base ]]; then
  echo "synthesizing $base (2.7 GiB, about 1.8 GiB used); this happens once" >&2
  rm -rf "$work/demo" "$work/root" "$work/boot"
  "$bin" demo "$work/demo" --quiet --cache-dir "$work/demo-cache" >/dev/null
  demo=$work/demo/demo-base.img
  offsets=$(sfdisk -J "$demo" | python3 -c 'import json,sys; print(" ".join(str(p["start"]*512) for p in json.load(sys.stdin)["partitiontable"]["partitions"]))')
  read -r demo_boot demo_root <<<"$offsets"
  mkdir -p "$work/root" "$work/boot"
  debugfs -R "rdump / $work/root" "$demo?offset=$demo_root" 2>/dev/null
  mcopy -s -n -i "$demo@@$demo_boot" '::/*' "$work/boot/"
  # About 1.75 GiB of files from /usr/lib and /usr/share, under the root's /usr.
  # (awk stops the pipeline early on purpose, so pipefail is off for it)
  (set +o pipefail; cd / && find usr/lib usr/share -xdev -type f -printf '%s\t%p\n' 2>/dev/null | sort -t "$(printf '\t')" -k2 |
    awk -F '\t' '{ s += $1; if (s > 1.75 * 2^30) exit; print $2 }' >"$work/files")
  tar -C / -cf - -T "$work/files" 2>/dev/null | tar -C "$work/root" -xf -
  boot_start=16384 boot_sectors=$((512 * 2048))
  root_start=$((boot_start + boot_sectors))
  total=$((2700 * 2048))
  truncate -s $((total * 512)) "$base.part"
  printf 'label: dos\nlabel-id: 0x70696261\n%s,%s,c\n%s,%s,83\n' \
    $boot_start $boot_sectors $root_start $((total - root_start)) | sfdisk -q "$base.part"
  mkfs.vfat -F 32 -n bootfs --offset=$boot_start "$base.part" $((boot_sectors / 2)) >/dev/null
  mcopy -s -i "$base.part@@$((boot_start * 512))" "$work/boot"/* ::/
  mkfs.ext4 -q -F -L rootfs -b 4096 -I 256 -O '^huge_file,^64bit,^orphan_file,^metadata_csum_seed' \
    -E offset=$((root_start * 512)) -d "$work/root" "$base.part" $(((total - root_start) / 2))k
  e2fsck -fyD "$base.part?offset=$((root_start * 512))" >/dev/null 2>&1 || [ $? -eq 1 ]
  zstd -q -T0 -3 -f "$base.part" -o "$base.zst"
  mv "$base.part" "$base"
  rm -rf "$work/root" "$work/boot" "$work/demo-cache"
fi

# The desk example (head + 3 workers) and the BitScope module, on this base, with an
# admin key made for the run (builds refuse the examples' placeholder).
rm -f "$work/key" "$work/key.pub"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key"
cluster() { # example dir -> cluster file
  mkdir -p "$work/$1"
  sed -e "s|^base:.*|base: $3|" -e "s|^    - ssh-ed25519 .*|    - $(cat "$work/key.pub")|" \
    "examples/$2/cluster.yaml" >"$work/$1/cluster.yaml"
  echo "$work/$1/cluster.yaml"
}
desk=$(cluster desk desk "$base")

ratio() { echo "$1 / $2" | bc -l; }

# First builds make the base's chunk index and zstd frames (once per base, cached).
rm -rf "$cache"
t_index=$(secs "$bin" build "$desk" --node head --out "$work/o" --cache-dir "$cache" --quiet)
t_frames=$(secs "$bin" build "$desk" --node head --format zst --out "$work/o" --cache-dir "$cache" --quiet)

o=$work/o
t_cp=$(best "$o" cp --reflink=auto --sparse=always "$base" "$o/copy.img")
t_raw=$(best "$o" "$bin" build "$desk" --node head --out "$o" --cache-dir "$cache" --quiet)
t_zcp=$(best "$o" cp "$base.zst" "$o/copy.img.zst")
t_zst=$(best "$o" "$bin" build "$desk" --node head --format zst --out "$o" --cache-dir "$cache" --quiet)
zsize=$(stat -c %s "$base.zst")
nsize=$(stat -c %s "$o/head.img.zst")

# The BitScope module: refused on ext4 (not enough space), built on XFS with reflinks.
bits=$(cluster bitscope bitscope-module "$base")
refusal=$("$bin" build "$bits" --out "$work/bits-ext4" --cache-dir "$cache" --quiet 2>&1 || true)
xfs_up "$work" "$base"
bits_xfs=$(cluster bitscope-xfs bitscope-module "$xfs/base.img")
"$bin" build "$bits_xfs" --node mgmt --out "$xfs/warm" --cache-dir "$xfs/cache" --quiet >/dev/null
sync
s=$(date +%s.%N)
/usr/bin/time -f %M -o "$work/rss" "$bin" build "$bits_xfs" --out "$xfs/out" --cache-dir "$xfs/cache" --quiet >"$work/bits.log"
sync
e=$(date +%s.%N)
t_bits=$(echo "$e - $s" | bc)
nodes=$(grep -c '\.img ' "$work/bits.log")
used=$(df -k --output=used "$xfs" | tail -1)

printf 'machine        %d cores, %s; outputs on %s\n' "$(nproc)" "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 2^20 }' /proc/meminfo)" "$(df -T "$work" | awk 'NR == 2 { print $2 }')"
printf 'base           %d MiB image, %d MiB allocated; .img.zst %d MiB\n' $(($(stat -c %s "$base") >> 20)) $(($(du -k "$base" | cut -f1) >> 10)) $((zsize >> 20))
printf 'once per base  chunk index %.2f s, zstd frames %.2f s (first builds, cached after)\n' "$t_index" "$t_frames"
printf 'one node raw   %6.2f s  vs cp --reflink=auto --sparse=always %6.2f s  = %.2fx (target <= 1.1x)\n' "$t_raw" "$t_cp" "$(ratio "$t_raw" "$t_cp")"
printf 'one node zst   %6.2f s  vs cp of the base .img.zst           %6.2f s  = %.2fx (target <= 1.5x); %d MiB vs %d MiB\n' "$t_zst" "$t_zcp" "$(ratio "$t_zst" "$t_zcp")" $((nsize >> 20)) $((zsize >> 20))
printf 'BitScope       %d nodes raw on XFS (reflink) in %.1f s (target < 60 s); peak RSS %d MiB; %d MiB used on the XFS after\n' "$nodes" "$t_bits" $(($(cat "$work/rss") >> 10)) $((used >> 10))
printf 'on ext4        %s\n' "$(echo "$refusal" | head -1)"
