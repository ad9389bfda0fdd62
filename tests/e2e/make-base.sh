#!/usr/bin/env bash
# Builds a Raspberry Pi OS-like arm64 base image from Debian's real packages, for the
# end-to-end boot test (tests/e2e/boot.sh), and prints its path.
#
# The layout is the one real Raspberry Pi OS bookworm images have: an MBR, a FAT32
# `bootfs` at 8 MiB holding the kernel, the initramfs, config.txt and a cmdline.txt with
# `root=PARTUUID=...`, and an ext4 `rootfs` formatted with pi-gen's feature edits and
# filled so that large directories are hash-indexed (`mkfs.ext4 -d`, then `e2fsck -fyD`,
# as the kernel would have left them). The default user `pi` (UID 1000) has a locked
# password and pi-gen's passwordless sudo drop-in, and the image holds no SSH host keys,
# as real images do not.
#
# The root partition is sized as pi-gen sizes it (the root's apparent size + 20% + 200 MiB,
# aligned to 4 MiB), so role software meets the room real cards have, and the image grows
# itself to the card on first boot as bookworm does: `init=/usr/lib/raspberrypi-sys-mods/firstboot`
# on the command line runs a stand-in for that Raspberry Pi OS script (which is not in
# Debian) that grows the root partition to the end of the disk and the filesystem online,
# as the bullseye and bookworm script does, removes its trigger from cmdline.txt and
# hands over to systemd. The real one also gives the disk a random identifier and
# reboots; the stand-in does neither.
#
# Other differences from a real image, on purpose: Debian's generic arm64 kernel (QEMU's
# `virt` machine boots it; a Pi's firmware never runs here) and an initramfs with only the
# virtio modules (under emulation Debian's full one takes 12 minutes).
#
# Building takes about 5 minutes under emulation. The result is cached by this script's
# own hash (the package list and every layout choice are in it), so later runs on the same
# machine reuse it. Needs root (mmdebstrap's root mode and the machine-wide binfmt
# registration), mmdebstrap, qemu-user-static, sfdisk, mkfs.vfat, mtools and e2fsprogs.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

here=$(cd "$(dirname "$0")" && pwd)
cache=${PIBAKE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pibake-e2e}
# By content alone, so every checkout (and CI's fresh clone) finds the same entry.
key=$(cat "$0" "$here/firstboot-standin.sh" "$here/../../testdata/raspios/bookworm/config.txt" | sha256sum | cut -c1-16)
out="$cache/base-bookworm-arm64-$key.img"
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"

log() { echo "make-base: $*" >&2; }

# Foreign-architecture binaries run through qemu-user, registered machine-wide with
# binfmt_misc. Neither the mount nor the registration may be there yet on a fresh VM.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
boot="$work/boot"
mkdir -p "$boot"

# The disk identifier real images carry before first boot re-randomizes it.
disk_id=$(printf '%08x' $((0x$(echo "$key" | cut -c1-8) | 0x10000000)))

# netbase (/etc/services, /etc/protocols) is in every Debian and Raspberry Pi OS image, and
# packages assume it without depending on it: without it RPC (autofs probing NFS) fails.
# fdisk (sfdisk) and e2fsprogs (resize2fs) are what the first-boot growth uses; Raspberry
# Pi OS has both, and systemd-timesyncd keeps its clock.
packages=systemd-sysv,systemd-timesyncd,udev,dbus,openssh-server,network-manager,iproute2,kmod,sudo,initramfs-tools,linux-image-arm64,procps,iputils-ping,libpam-systemd,tzdata,netbase,fdisk,e2fsprogs

log "mmdebstrap bookworm arm64 (about 5 minutes under emulation)"
mmdebstrap --mode=root --variant=apt --architectures=arm64 --include="$packages" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"; echo MODULES=list > "$1/etc/initramfs-tools/conf.d/pibake-e2e.conf"; printf "%s\n" virtio_pci virtio_mmio virtio_blk virtio_net ext4 sd_mod mmc_block >> "$1/etc/initramfs-tools/modules"' \
  --customize-hook='chroot "$1" useradd --create-home --uid 1000 --user-group --groups sudo,adm,dialout,video,plugdev --shell /bin/bash pi' \
  --customize-hook='chroot "$1" passwd --lock pi' \
  --customize-hook='echo "pi ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/010_pi-nopasswd"; chmod 0440 "$1/etc/sudoers.d/010_pi-nopasswd"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='echo raspberrypi > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n127.0.1.1\t\traspberrypi\n" > "$1/etc/hosts"' \
  --customize-hook=': > "$1/etc/machine-id"' \
  --customize-hook='mkdir -p "$1/boot/firmware"' \
  --customize-hook="install -D -m 0755 '$here/firstboot-standin.sh' \"\$1/usr/lib/raspberrypi-sys-mods/firstboot\"" \
  --customize-hook="printf 'proc            /proc           proc    defaults          0       0\nPARTUUID=$disk_id-01  /boot/firmware  vfat    defaults          0       2\nPARTUUID=$disk_id-02  /               ext4    defaults,noatime  0       1\n' > \"\$1/etc/fstab\"" \
  --customize-hook="cp \"\$1\"/boot/vmlinuz-* '$boot/kernel8.img'; cp \"\$1\"/boot/initrd.img-* '$boot/initramfs8'" \
  --customize-hook='rm -rf "$1/var/cache/apt/archives"/*.deb "$1/var/lib/apt/lists"/*_Packages' \
  bookworm "$root" >&2

cp "$here/../../testdata/raspios/bookworm/config.txt" "$boot/config.txt"
echo "console=serial0,115200 console=tty1 root=PARTUUID=$disk_id-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot" >"$boot/cmdline.txt"

# 8 MiB alignment and a 512 MiB bootfs, as real images have; the rootfs as pi-gen sizes it
# (export-image/prerun.sh): apparent size + 20% + 200 MiB, aligned to 4 MiB.
boot_start=16384
boot_sectors=$((512 * 2048))
root_start=$((boot_start + boot_sectors))
root_bytes=$(du -x --apparent-size -s --block-size=1 --exclude=var/cache/apt/archives --exclude=boot/firmware "$root" | cut -f1)
align=$((4 << 20))
root_bytes=$(((root_bytes + root_bytes / 5 + (200 << 20) + align - 1) / align * align))
root_sectors=$((root_bytes / 512))
log "rootfs partition: $((root_bytes >> 20)) MiB"
img="$work/base.img"
truncate -s $(((root_start + root_sectors) * 512)) "$img"
printf 'label: dos\nlabel-id: 0x%s\n%s,%s,c\n%s,%s,83\n' "$disk_id" \
  "$boot_start" "$boot_sectors" "$root_start" "$root_sectors" | sfdisk -q "$img"

log "bootfs and rootfs"
mkfs.vfat -F 32 -n bootfs -i "$disk_id" --offset=$boot_start "$img" $((boot_sectors / 2)) >/dev/null
mcopy -s -i "$img@@$((boot_start * 512))" "$boot"/* ::/
mkfs.ext4 -q -F -L rootfs -b 4096 -I 256 -O '^huge_file,^64bit,^orphan_file,^metadata_csum_seed' \
  -E offset=$((root_start * 512)) -d "$root" "$img" $((root_sectors / 2))k
e2fsck -fyD "$img?offset=$((root_start * 512))" >/dev/null 2>&1 || [ $? -eq 1 ]
e2fsck -fn "$img?offset=$((root_start * 512))" >/dev/null

rm -f "$cache"/base-bookworm-arm64-*.img # bases of earlier versions of this script
mv "$img" "$out"
log "done: $out"
echo "$out"
