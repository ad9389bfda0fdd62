#!/usr/bin/env bash
# Makes ext4.img.zst and ext4-nocsum.img.zst, the fixed ext4 images the `ext4` fuzz
# target patches. Run once; the outputs are committed (mkfs is not reproducible byte for
# byte: UUIDs and times differ).
#
# What it holds, so every structure the reader walks is there to be damaged:
#   /etc/hostname, /etc/os-release   small files in a linear directory
#   /big/f000 .. /big/f199            a directory of 200 names, hash-indexed (htree)
#   /tree/a/b/c/deep                  nested directories
#   /sparse                           40 one-block extents with holes between them: an
#                                     extent tree with an index in the inode and a leaf block
#   /empty                            a zero-length file
#   /link-fast, /link-slow            a symlink in the inode and one in a data block
#   /hard                             a second name of /etc/hostname
# Features: Raspberry Pi OS's (extents, flex_bg, metadata_csum, 64bit, dir_index, ...)
# without the journal, which would make the image 1 MiB larger for nothing to read.
# ext4-nocsum.img.zst is the same tree without metadata_csum: almost every random patch
# to a checksummed image is caught by a checksum, so this one lets the fuzzer past them
# to the structures themselves.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/tree
mkdir -p "$tree/etc" "$tree/big" "$tree/tree/a/b/c"
printf 'raspberrypi\n' >"$tree/etc/hostname"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n' >"$tree/etc/os-release"
for i in $(seq -w 0 199); do printf '%s\n' "$i" >"$tree/big/f$i"; done
printf 'deep\n' >"$tree/tree/a/b/c/deep"
: >"$tree/empty"
for i in $(seq 0 39); do
  printf 'block %02d' "$i" | dd of="$tree/sparse" bs=1024 seek=$((2 * i)) conv=notrunc status=none
done
ln -s etc/hostname "$tree/link-fast"
ln -s "tree/a/b/c/$(printf 'x%.0s' $(seq 1 70))/../deep" "$tree/link-slow"
ln "$tree/etc/hostname" "$tree/hard"
mkimage() {
  local img=$work/$1.img
  mkfs.ext4 -q -F -b 1024 -I 256 -N 320 -O "$2" -L rootfs -E root_owner=0:0 \
    -d "$tree" "$img" 640k
  # mkfs -d writes directories linearly; e2fsck -D indexes those over one block.
  e2fsck -fyD "$img" >/dev/null 2>&1 || [ $? -le 1 ]
  e2fsck -fn "$img" >/dev/null 2>&1
  zstd -q -19 -f "$img" -o "$1.img.zst"
}
mkimage ext4 ^has_journal
mkimage ext4-nocsum ^has_journal,^metadata_csum
