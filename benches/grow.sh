#!/usr/bin/env bash
# Growing benchmark. A stock-size Raspberry Pi OS Lite layout (bookworm arm64 2024-11-19:
# bootfs at 8 MiB, a 2112 MiB rootfs made as pi-gen makes it, `-O ^huge_file,^64bit`,
# holding about 600 MiB of this machine's /usr/share) grown by 2 GiB and by 30 GiB:
#   1. `pibake grow IMG --root-size SIZE` (the file, the MBR entry and the ext4, in-process);
#   2. what tools do without pibake (sdm's `--extend`, by hand): `truncate -s +N`,
#      `sfdisk -N 2` to move the root's end, and `resize2fs` on a loop device over the
#      partition (root only). The rootless `resize2fs 'IMG?offset=BYTES'` is no
#      baseline: e2fsprogs 1.47.0 then takes the whole file for the device (growing past
#      the partition without a size) and, with a size, cuts the file to the filesystem's
#      size counted from byte 0, losing the metadata it wrote into the last OFFSET bytes
#      (`e2fsck` then finds the last group's bitmap gone);
# each on a fresh sparse copy of the same image, best of three, every timed command
# ending in `sync`. Both results are checked by `e2fsck -fn` and must have the same
# block count.
#
# Needs root (the baseline's loop device). pibake itself needs none.
#
# usage: bash benches/grow.sh [WORKDIR]   (default: target/bench-grow)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
source benches/lib.sh
work=$(mkdir -p "${1:-target/bench-grow}" && cd "${1:-target/bench-grow}" && pwd)
cargo build --release --quiet
bin=$PWD/target/release/pibake

boot_start=16384 boot_sectors=$((512 * 2048))
root_start=$((boot_start + boot_sectors)) root_mib=2112
stock=$work/stock.img
if [ ! -s "$stock" ]; then
  rm -f "$stock.part"
  truncate -s $((root_start * 512 + root_mib * 1048576)) "$stock.part"
  printf 'label: dos\nlabel-id: 0x5e3da0b5\n%s,%s,c\n%s,,83\n' "$boot_start" "$boot_sectors" "$root_start" |
    sfdisk -q "$stock.part"
  mkfs.vfat -F 32 -n bootfs --offset=$boot_start "$stock.part" $((boot_sectors / 2)) >/dev/null
  mkfs.ext4 -q -F -L rootfs -O '^huge_file,^64bit' -E offset=$((root_start * 512)) \
    -d /usr/share "$stock.part" $((root_mib * 1024))k
  mv "$stock.part" "$stock"
fi

copy() { rm -f "$work/$1.img"; cp --sparse=always "$stock" "$work/$1.img"; sync; }

pibake_grow() { # MIB
  "$bin" grow "$work/a.img" --root-size "$1MiB"
}
resize2fs_grow() { # MIB
  local loop
  truncate -s "+$(($1 - root_mib))M" "$work/b.img"
  echo ",+" | sfdisk -q -N 2 --no-reread "$work/b.img"
  loop=$(losetup --show -f -o $((root_start * 512)) --sizelimit $(($1 << 20)) "$work/b.img")
  resize2fs -f "$loop" >/dev/null 2>&1
  losetup -d "$loop"
}

# time_best FUNC NAME MIB: the best of three, each on a fresh copy.
time_best() {
  local best= t
  for _ in 1 2 3; do
    copy "$2"
    t=$(secs "$1" "$3")
    best=$(awk -v a="$t" -v b="$best" 'BEGIN { print (b == "" || a < b) ? a : b }')
  done
  echo "$best"
}

# check IMG: the root partition copied out (e2fsprogs 1.47.0's `?offset=` reads fail past
# 4 GiB into some images), `e2fsck -fn` on it, and its block count.
check() {
  local part=$work/part.img
  dd if="$1" of="$part" bs=4M skip=$((root_start * 512 / (4 << 20))) conv=sparse status=none
  truncate -s $(($(stat -c %s "$1") - root_start * 512)) "$part"
  e2fsck -fn "$part" >/dev/null 2>&1 || { echo "$1: e2fsck -fn is not clean" >&2; exit 1; }
  dumpe2fs -h "$part" 2>/dev/null | awk -F: '/^Block count/ { print $2 + 0 }'
  rm -f "$part"
}

printf '%-8s %12s %20s %8s\n' growth pibake truncate+resize2fs ratio
for add in 2048 30720; do
  size=$((root_mib + add))
  a=$(time_best pibake_grow a $size)
  b=$(time_best resize2fs_grow b $size)
  [ "$(check "$work/a.img")" = "$(check "$work/b.img")" ] || { echo "block counts differ" >&2; exit 1; }
  printf '%-8s %11.2fs %19.2fs %7.2fx\n' "+$((add / 1024)) GiB" "$a" "$b" "$(echo "$a / $b" | bc -l)"
done
rm -f "$work/a.img" "$work/b.img"
