# Shared by the QEMU end-to-end tests: boot pibake-built images under
# qemu-system-aarch64, on a virtual cluster network, and check them over SSH.
#
# Each test gets a network namespace of its own with a Linux bridge (`br0`): every
# guest's NIC is a tap device on that bridge, so the guests share one layer-2 segment
# and the harness reaches them only from inside the namespace (the bridge carries the
# addresses the test gives it, e.g. the cluster's gateway). No packet leaves the
# machine. The images are never written: each boot runs on a throw-away qcow2 overlay
# (`cache=unsafe`: as the overlay is thrown away, the guest's flushes need not reach the
# host's disk).
# The kernel, initramfs and command line come from the image's own boot partition.
#
# On a failed check, `fail` names it and prints the tail of that node's serial console.
#
# E2E_HOLD=1 keeps the guests running after a failed check, for a look inside.
#
# Usage: source it, call `e2e_init`, `netns_up ADDR/PREFIX...`, then `vm_start`,
# `vm_ssh` or `vm_wait`, `on NODE CMD`, `vm_halt`. Needs root (namespace, bridge, taps),
# qemu-system-aarch64, qemu-img, mtools, sfdisk, iproute2, ssh.

export PATH="$PATH:/usr/sbin:/sbin"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

declare -A qemu_pid=() node_addr=() booted_at=() vm_rtc=()
vm_count=0
node=
ns=

say() { echo "e2e: $*"; }

fail() {
  echo "e2e: FAILED on ${node:-setup}: $*" >&2
  if [ -n "$node" ] && [ -s "$work/$node.console" ]; then
    echo "---- last 60 lines of $node's serial console ----" >&2
    tail -n 60 "$work/$node.console" >&2
  fi
  # E2E_HOLD=1 keeps the guests up for a look inside, until the script is killed.
  if [ -n "${E2E_HOLD:-}" ] && [ -n "$ns" ]; then
    echo "e2e: holding; guests reachable with: ip netns exec $ns ssh -i $work/admin_key ops@ADDRESS" >&2
    sleep infinity
  fi
  exit 1
}

e2e_cleanup() {
  local n
  for n in "${!qemu_pid[@]}"; do kill "${qemu_pid[$n]}" 2>/dev/null || true; done
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}

# e2e_init: a scratch directory, the e2e base, pibake built, an admin key; `$base`,
# `$pibake`, `$work` set.
e2e_init() {
  work=$(mktemp -d /tmp/pibake-e2e.XXXXXX)
  trap e2e_cleanup EXIT
  base=$(bash "$repo/tests/e2e/make-base.sh") || fail "could not build the base image"
  say "base: $base"
  (cd "$repo" && cargo build --release --locked --quiet)
  pibake="$repo/target/release/pibake"
  ssh-keygen -q -t ed25519 -N '' -C e2e -f "$work/admin_key"
}

# netns_up ADDR/PREFIX...: the namespace and its bridge, holding those addresses.
netns_up() {
  ns="pibake-e2e-$$"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add br0 type bridge
  ip -n "$ns" link set br0 up
  local a
  for a in "$@"; do ip -n "$ns" addr add "$a" dev br0; done
}

# An example (its own profiles and overlays too) for this run, in DIR: its cluster file
# with the e2e base, the run's admin key, and the admin called `ops` (so the image's `pi`
# is renamed offline), then the extra sed expressions. Each expression must change the
# file, so an example whose lines changed shape fails here instead of testing something
# else.
cluster_file() { # EXAMPLE DIR [SED_EXPR...]
  local example=$1 dir=$2 e
  shift 2
  mkdir -p "$dir"
  cp -r "$repo/examples/$example/." "$dir/"
  for e in "s|^base:.*|base: $base|" "s|^  name: pi$|  name: ops|" \
    "s|^    - ssh-ed25519 .*|    - $(cat "$work/admin_key.pub")|" "$@"; do
    sed -e "$e" "$dir/cluster.yaml" >"$dir/cluster.yaml.new"
    cmp -s "$dir/cluster.yaml" "$dir/cluster.yaml.new" &&
      fail "examples/$example/cluster.yaml changed shape: \`$e\` changes nothing"
    mv "$dir/cluster.yaml.new" "$dir/cluster.yaml"
  done
  echo "$dir/cluster.yaml"
}

boot_offset() { sfdisk -J "$1" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][0]; print(p["start"]*512)'; }

# vm_start NODE IMAGE ADDRESS [MAC] [OUTSIDE]: boots the image with a NIC on the bridge
# (each guest gets a MAC of its own unless one is given, or MAC is empty; QEMU's default is
# the same for all). OUTSIDE, QEMU user-mode options (`restrict=on,...`), adds a NIC on a
# network of its own before it: the guest's eth0, the bridge's NIC becoming eth1.
vm_start() {
  vm_count=$((vm_count + 1))
  local n=$1 img=$2 addr=$3 mac=${4:-} outside=${5:-} off append tap="tap-$1" nics=()
  [ -n "$mac" ] || mac=$(printf '52:54:00:e2:e0:%02x' "$vm_count")
  if [ -n "$outside" ]; then
    nics+=(-netdev "user,id=out,$outside"
      -device "virtio-net-pci,netdev=out,romfile=,mac=$(printf '52:54:00:e2:e1:%02x' "$vm_count")")
  fi
  nics+=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no"
    -device "virtio-net-pci,netdev=n0,romfile=,mac=$mac")
  node=$n
  node_addr[$n]=$addr
  off=$(boot_offset "$img")
  for f in kernel8.img initramfs8 cmdline.txt; do
    mcopy -n -i "$img@@$off" "::/$f" "$work/$n.$f" || fail "no $f on the boot partition"
  done
  # The Pi's console is serial0 and tty1; QEMU's virt machine has a PL011 (ttyAMA0) and
  # virtio-net, which only keeps the name eth0 with net.ifnames=0.
  append=$(sed -e 's/console=serial0,[0-9]*/console=ttyAMA0,115200/' -e 's/console=tty1//' \
    -e 's/ quiet//' "$work/$n.cmdline.txt" | tr -s ' ')
  append="$append net.ifnames=0"
  # The card is larger than the image, as real cards are, so the image's own first boot
  # grows the root to it (E2E_CARD_EXTRA bytes more; 1 GiB by default).
  # E2E_REUSE_DISK=1 boots the node's overlay again, as a card is powered on again.
  [ -n "${E2E_REUSE_DISK:-}" ] && [ -e "$work/$n.qcow2" ] ||
    qemu-img create -q -f qcow2 -F raw -b "$img" "$work/$n.qcow2" \
      $(($(stat -c %s "$img") + ${E2E_CARD_EXTRA:-$((1 << 30))}))
  ip -n "$ns" tuntap add dev "$tap" mode tap
  ip -n "$ns" link set "$tap" master br0 up
  : >"$work/$n.console"
  # One vCPU a guest: the tests boot two or three guests at once on two host cores, and
  # with two each the guests' kernels spin on locks held by vCPUs the host has put aside
  # (measured: the web cluster `running` after 514-548 s instead of 745-762 s).
  # E2E_SMP=N gives each guest N.
  # vm_rtc[NODE]=DATE (`2025-12-02T10:00:00`, UTC) starts the guest's clock there, as a
  # Pi without a battery clock starts wherever its clock was last saved.
  local rtc=()
  [ -z "${vm_rtc[$n]:-}" ] || rtc=(-rtc "base=${vm_rtc[$n]}")
  ip netns exec "$ns" qemu-system-aarch64 -M virt -cpu cortex-a53 -smp "${E2E_SMP:-1}" -m 768 "${rtc[@]}" \
    -kernel "$work/$n.kernel8.img" -initrd "$work/$n.initramfs8" -append "$append" \
    -drive "file=$work/$n.qcow2,if=none,id=d0,format=qcow2,cache=unsafe" -device virtio-blk-pci,drive=d0 \
    "${nics[@]}" -display none -monitor none -serial "file:$work/$n.console" &
  qemu_pid[$n]=$!
  booted_at[$n]=$SECONDS
}

# on NODE CMD...: runs CMD on the node over SSH, strict host key checking against the
# known_hosts pibake wrote.
on() {
  local n=$1
  shift
  ip netns exec "$ns" ssh -n -F /dev/null -i "$work/admin_key" \
    -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$out/known_hosts" \
    -o HostKeyAlias="$n" "ops@${node_addr[$n]}" "$@"
}

# manifest NODE EXPR: a Python expression over the node's entry `n` in the build's
# manifest.json.
manifest() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); n=[e for e in m["nodes"] if e["node"]==sys.argv[2]][0]; print(eval(sys.argv[3], {}, {"n": n}))' "$out/manifest.json" "$@"; }

# packages_locked NODE PKG...: each PKG is installed on the node at the version the
# manifest records (pibake.lock's), the first-boot package files are gone, and dpkg is
# content: `dpkg --audit` finds nothing half-done, `apt-get check` no broken
# dependency, and `dpkg -V` no file that differs from its package but configuration
# files (the profile's own, or ones a postinst edits).
packages_locked() {
  local n=$1 pkg want got
  shift
  node=$n
  for pkg in "$@"; do
    want=$(manifest "$n" "[p['version'] for p in n['packages'] if p['name']=='$pkg'][0]") ||
      fail "the manifest records no $pkg for $n"
    got=$(on "$n" "dpkg-query -W -f='\${Version}' $pkg") || fail "$pkg is not installed"
    [ "$got" = "$want" ] || fail "$pkg is $got on the node, pibake.lock says $want"
  done
  on "$n" test ! -e /var/lib/pibake/packages/order || fail "the baked .debs were not cleaned up"
  got=$(on "$n" sudo -n dpkg --audit) || fail "dpkg --audit failed"
  [ -z "$got" ] || fail "dpkg --audit: $got"
  on "$n" sudo -n apt-get check -qq >/dev/null || fail "apt-get check finds broken dependencies"
  got=$(on "$n" "sudo -n dpkg -V 2>&1 | grep -v '^..5...... c /' || true")
  [ -z "$got" ] || fail "dpkg -V reports files other than changed configuration files: $got"
}

# skewed_clocks NODE...: the first node's clock starts a year behind, the second's a day
# ahead, and so on alternately (vm_rtc), as Pis without a battery clock do.
skewed_clocks() {
  local i=0 n
  for n in "$@"; do
    if [ $((i % 2)) -eq 0 ]; then
      vm_rtc[$n]=$(date -u -d '-1 year' +%Y-%m-%dT%H:%M:%S)
    else
      vm_rtc[$n]=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%S)
    fi
    i=$((i + 1))
  done
}

# clock_agrees NODE SERVER: the node's clock reads within a second of the time server's,
# read just before and just after it.
clock_agrees() {
  local n=$1 server=$2 before after got
  node=$n
  before=$(on "$server" date +%s.%N) || fail "could not read $server's clock"
  got=$(on "$n" date +%s.%N) || fail "could not read the clock"
  after=$(on "$server" date +%s.%N) || fail "could not read $server's clock"
  python3 -c 'import sys; b, g, a = map(float, sys.argv[1:]); sys.exit(0 if b - 1 <= g <= a + 1 else 1)' \
    "$before" "$got" "$after" ||
    fail "the clock is off: $(date -u -d "@$got") while $server's read $(date -u -d "@$before")"
  say "$n: clock within a second of $server's"
}

# in_ns CMD...: runs CMD on the harness's side of the cluster network.
in_ns() { ip netns exec "$ns" "$@"; }

# vm_ssh NODE [TIMEOUT]: waits for the node's SSH to answer with the recorded host key.
vm_ssh() {
  local n=$1 limit=${2:-600} err
  node=$n
  while :; do
    kill -0 "${qemu_pid[$n]}" 2>/dev/null || fail "QEMU exited"
    if err=$(on "$n" true 2>&1); then break; fi
    case "$err" in
      *"Host key verification failed"* | *"REMOTE HOST IDENTIFICATION HAS CHANGED"*)
        fail "the node's SSH host key is not the one pibake recorded: $err" ;;
      *"Permission denied"*) fail "the admin's key was refused: $err" ;;
    esac
    [ $((SECONDS - booted_at[$n])) -lt "$limit" ] || fail "no SSH answer after $limit s (last: $err)"
    sleep 3
  done
  say "$n: SSH answered after $((SECONDS - booted_at[$n])) s, host key matches known_hosts"
}

# vm_wait NODE [TIMEOUT]: waits for SSH, then (up to twice as long again) for systemd to
# finish starting up, the first-boot work included; anything but `running` fails, with the
# failed units' journal.
vm_wait() {
  local n=$1 limit=${2:-600} got
  vm_ssh "$@"
  got=$(on "$n" timeout "$((limit * 2))" systemctl is-system-running --wait || true)
  [ -n "$got" ] || got="still starting $((limit * 2)) s after SSH answered"
  if [ "$got" != running ]; then
    local failed units=""
    failed=$(on "$n" systemctl --failed --no-legend --plain | awk '{ print $1 }' | tr '\n' ' ')
    for u in $failed; do units="$units -u $u"; done
    echo "---- journal of the failed units on $n ----" >&2
    on "$n" sudo -n journalctl -b --no-pager -n 60 "$units" >&2 || true
    fail "systemctl is-system-running says '$got'; failed units: $failed"
  fi
  say "$n: system running after $((SECONDS - booted_at[$n])) s"
}

# root_on_card NODE: the image's first boot grew the root partition to the end of the
# card and the filesystem with it, and removed its trigger from cmdline.txt.
root_on_card() {
  local n=$1 got
  node=$n
  got=$(on "$n" 'set -e; p=$(findmnt -no SOURCE /); p=${p#/dev/}; d=$(basename "$(readlink -f /sys/class/block/$p/..)"); echo $(( $(cat /sys/class/block/$p/start) + $(cat /sys/class/block/$p/size) )) $(cat /sys/class/block/$d/size) $(( $(cat /sys/class/block/$p/size) * 512 )) $(df -B1 --output=size / | tail -n1)') ||
    fail "could not read the root's partition and filesystem"
  read -r end disk part fs <<<"$got"
  [ "$end" = "$disk" ] || fail "the root partition ends at sector $end, the card at $disk: not grown on first boot"
  [ "$fs" -gt $((part * 9 / 10)) ] || fail "the root filesystem ($fs bytes) does not fill its partition ($part bytes)"
  on "$n" grep -q raspberrypi-sys-mods/firstboot /boot/firmware/cmdline.txt &&
    fail "cmdline.txt still has the first-boot trigger"
  say "$n: root grown to the card on first boot ($((part >> 20)) MiB partition, filesystem $((fs >> 20)) MiB)"
}

# vm_halt NODE: stops the guest at once. Its disk is a throw-away overlay, so nothing
# needs a clean shutdown (waiting for one cost up to 30 s a node).
vm_halt() {
  local n=$1
  kill "${qemu_pid[$n]}" 2>/dev/null || true
  wait "${qemu_pid[$n]}" 2>/dev/null || true
  unset "qemu_pid[$n]"
  ip -n "$ns" link del "tap-$n" 2>/dev/null || true
  rm -f "$work/$n.qcow2"
}
