#!/usr/bin/env bash
# Makes the binary seeds of fuzz/corpus: small partition tables, FAT boot partitions,
# compressed bases, bmaps and .debs, each a real tool's output (sfdisk, mkfs.fat, mcopy, xz,
# zstd, gzip, zip, bmaptool, dpkg-deb), kept to a few KiB so libFuzzer mutates them quickly. Run
# once; the outputs are committed (the tools write random GUIDs and serials). The text
# seeds are copies of real files (see README.md); the ext4 target's image is made by
# crates/pibake-fuzz/seed/make-ext4-seed.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export MTOOLS_SKIP_CHECK=1
mkdir -p "$corpus"/{partition,fat,decoders,bmap}

# A boot partition's files: the stock config.txt and cmdline.txt, long overlay names.
mkdir -p boot/overlays
cp "$here"/../testdata/raspios/bookworm/{config,cmdline}.txt boot/
printf 'dtbo' >boot/overlays/dwc2.dtbo
printf 'dtbo' >boot/overlays/vc4-kms-v3d.dtbo
printf 'readme\n' >boot/overlays/README
fat() { # fat NAME TYPE SIZE: a FAT filesystem of SIZE holding boot/
  truncate -s "$3" "$1"
  local root=(-r 32)
  [ "$2" = 32 ] && root=()
  mkfs.fat -F "$2" -s 1 "${root[@]}" -n BOOTFS "$1" >/dev/null
  mcopy -s -i "$1" boot/* ::/
}
fat f12.img 12 60K
fat f16.img 16 2200K
fat f32.img 32 34M
cp f12.img "$corpus"/fat/fat12-boot.img
python3 "$here"/shrink_fat.py f16.img "$corpus"/fat/fat16-shrunk.img 24
python3 "$here"/shrink_fat.py f32.img "$corpus"/fat/fat32-shrunk.img 24
zstd -dcq "$here"/../crates/pibake-fuzz/seed/ext4.img.zst >ext4.img

# Partition tables whose partitions start with a FAT boot sector and an ext4 superblock,
# so Layout::read gets through; and the first bytes of real-size layouts, which it refuses.
table() { # table NAME SIZE FAT_SECTOR EXT4_SECTOR: sfdisk script on stdin
  truncate -s "$2" "$1"
  sfdisk -q "$1"
  dd if=f12.img of="$1" bs=512 seek="$3" count=4 conv=notrunc status=none
  dd if=ext4.img of="$1" bs=512 seek="$4" count=4 conv=notrunc status=none
  cp "$1" "$corpus/partition/$1"
}
printf 'label: dos\nlabel-id: 0x6c8ae5ad\nunit: sectors\n\nstart=1, size=4, type=c\nstart=5, size=4, type=83\n' |
  table mbr-boot-root.img 5K 1 5
printf 'label: gpt\nunit: sectors\ntable-length: 4\nfirst-lba: 3\n\nstart=3, size=4, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="bootfs"\nstart=7, size=4, type=0FC63DAF-8483-4772-8E79-3D47D8E4477D, name="rootfs"\n' |
  table gpt-boot-root.img 6656 3 7
printf 'label: dos\nunit: sectors\n\nstart=1, size=4, type=c\nstart=5, size=11, type=5\nstart=6, size=4, type=83\nstart=11, size=4, type=83\n' |
  table mbr-extended-logical.img 8K 1 6
truncate -s 6G big.img
printf 'label: dos\nlabel-id: 0x3e247b30\nunit: sectors\n\nstart=16384, size=1048576, type=c\nstart=1064960, type=83\n' | sfdisk -q big.img
head -c 1024 big.img >"$corpus"/partition/raspios-trixie-mbr-truncated.bin
rm big.img && truncate -s 6G big.img
printf 'label: gpt\nunit: sectors\n\nstart=8192, size=1048576, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="bootfs"\nstart=1056768, type=0FC63DAF-8483-4772-8E79-3D47D8E4477D, name="rootfs"\n' | sfdisk -q big.img
head -c 17408 big.img >"$corpus"/partition/gpt-header-truncated.bin
rm big.img

# Compressed bases of a 5 KiB image: each container, concatenated streams, padding.
d=$corpus/decoders
cp "$corpus"/partition/mbr-boot-root.img base.img
xz -c base.img >"$d"/tiny.img.xz
xz -c --check=sha256 base.img >"$d"/sha256-check.img.xz
xz -T2 --block-size=2048 -c base.img >"$d"/multi-block.img.xz
{ xz -c base.img; xz -c base.img; } >"$d"/two-streams.img.xz
zstd -q -c base.img >"$d"/tiny.img.zst
{ zstd -q -c base.img; zstd -q -c base.img; head -c 64 /dev/zero; } >"$d"/two-frames-padded.img.zst
gzip -nc base.img >"$d"/tiny.img.gz
{ gzip -nc base.img; gzip -nc base.img; } >"$d"/two-members.img.gz
printf 'notes\n' >README.txt
rm -f "$d"/*.zip
zip -q -X "$d"/tiny.zip base.img
zip -q -X -0 "$d"/stored.zip base.img
zip -q -X "$d"/image-and-readme.zip base.img README.txt

# A bmap by bmaptool, of an image with data in three places.
truncate -s 64K sparse.img
printf 'data' | dd of=sparse.img bs=4096 seek=0 conv=notrunc status=none
printf 'more' | dd of=sparse.img bs=4096 seek=5 conv=notrunc status=none
head -c 8192 /dev/urandom | dd of=sparse.img bs=4096 seek=9 conv=notrunc status=none
bmaptool create sparse.img -o "$corpus"/bmap/bmaptool-v2.bmap

# .debs by dpkg-deb, one per data compression: a file, a setuid file, a directory, a
# symlink, a hard link, a conffile and a preinst.
mkdir -p "$corpus"/deb deb/DEBIAN deb/etc deb/usr/bin
printf 'Package: seed\nVersion: 1.0-1\nArchitecture: arm64\nMaintainer: Seed <seed@example.org>\nDepends: libc6 (>= 2.34)\nDescription: fuzz seed\n' >deb/DEBIAN/control
printf '/etc/seed.conf\n' >deb/DEBIAN/conffiles
printf '#!/bin/sh\nexit 0\n' >deb/DEBIAN/preinst
chmod 0755 deb/DEBIAN/preinst
printf 'key=value\n' >deb/etc/seed.conf
printf 'tool\n' >deb/usr/bin/seed && chmod 4755 deb/usr/bin/seed
ln deb/usr/bin/seed deb/usr/bin/seed-too
ln -s seed deb/usr/bin/seed-link
for z in none gzip xz zstd; do
  dpkg-deb --root-owner-group -Z"$z" --build deb "$corpus/deb/seed-$z.deb" >/dev/null
done
