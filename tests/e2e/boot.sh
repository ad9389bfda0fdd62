#!/usr/bin/env bash
# End-to-end: boot what pibake bakes. Builds a head and a worker of the shipped desk
# example from a Raspberry Pi OS-like base made of Debian's real arm64 packages
# (tests/e2e/make-base.sh), boots each under qemu-system-aarch64 and checks over SSH
# that it came up as the node the inventory describes. Then rebuilds the worker from its
# kept state and boots it again: the same host key must be accepted without a warning.
#
# The images are never written: each boot runs on a throw-away qcow2 overlay. The
# kernel, initramfs and command line come from the image's own boot partition (read with
# mtools). User-mode networking forwards only the SSH port, to 127.0.0.1; the guest's
# network is the example's own 10.0.0.0/24 with QEMU's gateway at 10.0.0.1, so reaching
# the node at all proves its static address was applied.
#
# On failure it prints which check failed and the tail of the node's serial console.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
work=$(mktemp -d /tmp/pibake-e2e.XXXXXX)
qemu_pid=
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "e2e: $*"; }
node=
fail() {
  echo "e2e: FAILED on ${node:-setup}: $*" >&2
  if [ -n "$node" ] && [ -s "$work/$node.console" ]; then
    echo "---- last 60 lines of $node's serial console ----" >&2
    tail -n 60 "$work/$node.console" >&2
  fi
  exit 1
}

base=$(bash tests/e2e/make-base.sh) || fail "could not build the base image"
say "base: $base"
cargo build --release --locked --quiet
pibake="$repo/target/release/pibake"

# The desk example as shipped, but for the base, a key this run holds, an admin called
# `ops` (so the image's `pi` is renamed offline and the rename must hold at boot), and
# workers that serve a templated page with Apache: apache2 and curl are resolved by
# pibake against the base's own Debian sources and baked in, and the guests, which have
# no network beyond their own segment, install them on first boot.
ssh-keygen -q -t ed25519 -N '' -C e2e -f "$work/admin_key"
mkdir -p "$work/cluster/profiles" "$work/cluster/overlays/e2e-web/var/www/html"
sed -e "s|^base:.*|base: $base|" \
  -e "s|^  name: pi$|  name: ops|" \
  -e "s|^    - ssh-ed25519 .*|    - $(cat "$work/admin_key.pub")|" \
  -e "s|^roles: { head: {}, worker: {} }$|roles: { head: {}, worker: { profile: e2e-web } }|" \
  examples/desk/cluster.yaml >"$work/cluster/cluster.yaml"
grep -q "name: ops" "$work/cluster/cluster.yaml" || fail "the example's admin block changed shape"
grep -q " e2e$" "$work/cluster/cluster.yaml" || fail "the example's key line changed shape"
grep -q "profile: e2e-web" "$work/cluster/cluster.yaml" || fail "the example's roles line changed shape"
printf '%s\n' "description: a worker serving a templated page, its software baked in" \
  "extends: worker" "packages: [apache2, curl]" "overlays: [e2e-web]" >"$work/cluster/profiles/e2e-web.yaml"
echo '<p>Served by {{node.name}} of {{cluster.name}}</p>' >"$work/cluster/overlays/e2e-web/var/www/html/index.html.hbs"
cluster="$work/cluster/cluster.yaml"
out="$work/out"

"$pibake" build "$cluster" --out "$out" --node head --node node1 --quiet >/dev/null
[ -s "$work/cluster/pibake.lock" ] || fail "the build wrote no pibake.lock"

# Where the boot partition starts, from the partition table (sfdisk is independent of pibake).
boot_offset() { sfdisk -J "$1" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][0]; print(p["start"]*512)'; }
manifest() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); n=[e for e in m["nodes"] if e["node"]==sys.argv[2]][0]; print(eval(sys.argv[3], {}, {"n": n}))' "$out/manifest.json" "$@"; }
plan_enables() { "$pibake" plan "$cluster" --node "$1" --json | python3 -c 'import json,sys; p=json.load(sys.stdin); p=p[0] if isinstance(p,list) else p; print(" ".join(p["nodes"][0]["services"]["enable"]))'; }

ssh_node() {
  ssh -n -F /dev/null -i "$work/admin_key" -p "$port" \
    -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$out/known_hosts" \
    -o HostKeyAlias="$node" ops@127.0.0.1 "$@"
}

# boot NODE PORT ADDRESS: starts the node's image under QEMU and waits for SSH.
boot() {
  node=$1 port=$2 address=$3
  local img="$out/$node.img" off
  off=$(boot_offset "$img")
  for f in kernel8.img initramfs8 cmdline.txt; do
    mcopy -n -i "$img@@$off" "::/$f" "$work/$node.$f" || fail "no $f on the boot partition"
  done
  # The Pi's console is serial0 and tty1; QEMU's virt machine has a PL011 (ttyAMA0) and
  # virtio-net, which only keeps the name eth0 with net.ifnames=0.
  local append
  append=$(sed -e 's/console=serial0,[0-9]*/console=ttyAMA0,115200/' -e 's/console=tty1//' \
    -e 's/ quiet//' "$work/$node.cmdline.txt" | tr -s ' ')
  append="$append net.ifnames=0"
  qemu-img create -q -f qcow2 -F raw -b "$img" "$work/$node.qcow2"
  : >"$work/$node.console"
  qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 \
    -kernel "$work/$node.kernel8.img" -initrd "$work/$node.initramfs8" -append "$append" \
    -drive "file=$work/$node.qcow2,if=none,id=d0,format=qcow2" -device virtio-blk-pci,drive=d0 \
    -netdev "user,id=n0,restrict=on,net=10.0.0.0/24,host=10.0.0.1,hostfwd=tcp:127.0.0.1:$port-$address:22" \
    -device virtio-net-pci,netdev=n0,romfile= \
    -display none -monitor none -serial "file:$work/$node.console" &
  qemu_pid=$!
  local start=$SECONDS err
  while :; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited"
    if err=$(ssh_node true 2>&1); then
      break
    fi
    case "$err" in
      *"Host key verification failed"* | *"REMOTE HOST IDENTIFICATION HAS CHANGED"*)
        fail "the node's SSH host key is not the one pibake recorded: $err" ;;
      *"Permission denied"*)
        fail "the admin's key was refused: $err" ;;
    esac
    [ $((SECONDS - start)) -lt 420 ] || fail "no SSH answer from $address after 420 s (last: $err)"
    sleep 3
  done
  booted_at=$start
  say "$node: SSH answered after $((SECONDS - start)) s, host key matches known_hosts"
}

# served: the worker installed its baked packages with no network and serves its page.
served() {
  local got want
  got=$(ssh_node curl -fsS http://localhost/) || fail "Apache does not answer on $node"
  [ "$got" = "<p>Served by $node of bramble</p>" ] || fail "the page is '$got', not the one the overlay templated"
  say "$node: Apache answered $((SECONDS - booted_at)) s after power-on"
  for pkg in apache2 curl; do
    want=$(manifest "$node" "[p['version'] for p in n['packages'] if p['name']=='$pkg'][0]")
    got=$(ssh_node "dpkg-query -W -f='\${Version}' $pkg") || fail "$pkg is not installed"
    [ "$got" = "$want" ] || fail "$pkg is $got on the node, the lock says $want"
  done
  ssh_node test ! -e /var/lib/pibake/packages/order || fail "the baked .debs were not cleaned up"
  say "$node: apache2 and curl at the locked versions, installed offline, .debs removed"
}

halt() {
  ssh_node sudo -n systemctl poweroff >/dev/null 2>&1 || true
  for _ in $(seq 30); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  rm -f "$work/$node.qcow2"
}

# check NODE ADDRESS OTHER OTHER_ADDRESS: the assertions on a booted node.
check() {
  local address=$2 other=$3 other_address=$4 got
  got=$(ssh_node hostname) || fail "ssh hostname"
  [ "$got" = "$node" ] || fail "hostname is '$got', not '$node'"
  got=$(ssh_node ip -4 -o addr show dev eth0) || fail "ssh ip addr"
  [[ "$got" == *" $address/24 "* ]] || fail "eth0 does not have $address/24: $got"
  got=$(ssh_node ip -4 route show default) || fail "ssh ip route"
  [[ "$got" == "default via 10.0.0.1 dev eth0"* ]] || fail "default route is not via 10.0.0.1 on eth0: $got"
  got=$(ssh_node getent hosts "$other") || fail "$other does not resolve on $node"
  [[ "$got" == "$other_address "* ]] || fail "$other resolves to '$got', not $other_address"
  for unit in $(plan_enables "$node"); do
    got=$(ssh_node systemctl is-active "$unit" || true)
    [ "$got" = active ] || fail "$unit is '$got', the profile enables it"
  done
  local id
  id=$(manifest "$node" 'n["disk_id"]')
  got=$(ssh_node cat /proc/cmdline)
  [[ "$got" == *"root=PARTUUID=$id-02"* ]] || fail "the kernel was not given pibake's root=PARTUUID=$id-02: $got"
  got=$(ssh_node findmnt -no SOURCE /boot/firmware) || fail "/boot/firmware is not mounted (fstab's PARTUUID=$id-01)"
  got=$(ssh_node cat /boot/firmware/cmdline.txt)
  [[ "$got" == *"root=PARTUUID=$id-02"* ]] || fail "cmdline.txt on the node lacks root=PARTUUID=$id-02: $got"
  got=$(ssh_node cat /boot/firmware/config.txt)
  if [ "$node" != head ]; then
    grep -qx 'gpu_mem=16' <<<"$got" || fail "config.txt on the node lacks the worker's gpu_mem=16"
  fi
  got=$(ssh_node systemctl is-system-running --wait || true)
  if [ "$got" != running ]; then
    fail "systemctl is-system-running says '$got'; failed units: $(ssh_node systemctl --failed --no-legend --plain | tr '\n' ';')"
  fi
  got=$(ssh_node sudo -n true 2>&1) || fail "the admin cannot sudo without a password: $got"
  say "$node: hostname, eth0 $address/24 via 10.0.0.1, $other in /etc/hosts, services, config.txt, cmdline.txt, fstab, system running: all as baked"
}

boot head 20022 10.0.0.10
check head 10.0.0.10 node1 10.0.0.11
halt

boot node1 20023 10.0.0.11
check node1 10.0.0.11 head 10.0.0.10
served
halt

# Rebuild the worker from its kept state: the same image, byte for byte, and the host key
# the first boot served is accepted again with strict checking.
before=$(manifest node1 'n["image"]["sha256_4m"]')
rm "$out/node1.img"
"$pibake" build "$cluster" --out "$out" --node node1 --quiet >/dev/null
after=$(manifest node1 'n["image"]["sha256_4m"]')
[ "$before" = "$after" ] || fail "the rebuilt node1 differs from the first build ($before, $after)"
boot node1 20024 10.0.0.11
got=$(ssh_node hostname)
[ "$got" = node1 ] || fail "the rebuilt node1 says it is '$got'"
halt
say "rebuilt node1: same image, same host key, accepted without a warning"
say "all checks passed"
