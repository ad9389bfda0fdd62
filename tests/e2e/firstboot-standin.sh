#!/bin/sh
# A stand-in for Raspberry Pi OS's /usr/lib/raspberrypi-sys-mods/firstboot (not in
# Debian), for the end-to-end base: run once as `init=` from the kernel's command line,
# it grows the root partition to the end of its disk and the mounted filesystem online
# (as the bullseye and bookworm script does with parted and resize2fs), removes its own
# trigger from cmdline.txt, and hands over to systemd. Unlike the real one it keeps the
# disk identifier and does not reboot. Each step says on the console what it did; a
# failed growth leaves the root as it was and is seen by the tests, not hidden here.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "firstboot-standin: $*" >/dev/console; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -o remount,rw /
root=$(findmnt -no SOURCE /)
name=${root#/dev/}
part=$(cat "/sys/class/block/$name/partition")
disk=/dev/$(basename "$(readlink -f "/sys/class/block/$name/..")")
if echo ', +' | sfdisk -q -N "$part" --no-reread "$disk" && partx -u -n "$part" "$disk" &&
  resize2fs "$root" >/dev/console 2>&1; then
  say "grew $root to $(($(cat "/sys/class/block/$name/size") / 2048)) MiB"
else
  say "growing $root failed"
fi
if mount /boot/firmware; then
  sed -i 's| init=/usr/lib/raspberrypi-sys-mods/firstboot||' /boot/firmware/cmdline.txt
  umount /boot/firmware
fi
sync
mount -o remount,ro /
umount /sys /proc
exec /sbin/init
