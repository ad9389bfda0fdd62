#!/usr/bin/env python3
"""Shrinks a FAT16 or FAT32 image made by mkfs.fat into a fuzz seed of a few KiB.

FAT16 needs 4085 clusters and FAT32 65525, so a real image is megabytes of FAT and free
space. The seed keeps the boot sector (and FAT32's FSInfo), cuts each FAT to one sector,
keeps the fixed root directory and the first CLUSTERS data clusters, and leaves the
total sector count as it was: the seed still claims to be a FAT16/FAT32 filesystem, as
the type is told by cluster count, and everything in use fits in the file.

usage: shrink_fat.py IN OUT CLUSTERS
"""
import struct
import sys

src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
img = open(src, "rb").read()
bps, spc, reserved, fats, root_entries = struct.unpack_from("<HBHBH", img, 11)
spf16 = struct.unpack_from("<H", img, 22)[0]
fat32 = spf16 == 0
spf = struct.unpack_from("<I", img, 36)[0] if fat32 else spf16
root_sectors = (root_entries * 32 + bps - 1) // bps
old_data = (reserved + fats * spf + root_sectors) * bps

# FAT32 keeps boot sector, FSInfo and the backup boot sector (sector 6) in 8 reserved
# sectors; FAT16 keeps its one.
new_reserved = 8 if fat32 else reserved
boot = bytearray(img[: new_reserved * bps])
struct.pack_into("<H", boot, 14, new_reserved)
if fat32:
    struct.pack_into("<I", boot, 36, 1)
    boot[6 * bps : 7 * bps] = boot[:bps]
else:
    struct.pack_into("<H", boot, 22, 1)
fat = img[reserved * bps : reserved * bps + bps]
root = img[(reserved + fats * spf) * bps : old_data]
data = img[old_data : old_data + keep * spc * bps]
open(dst, "wb").write(bytes(boot) + fat * fats + root + data)
