#!/usr/bin/env bash
# End-to-end: boot what pibake bakes. Builds a head and a worker of the shipped desk
# example from a Raspberry Pi OS-like base made of Debian's real arm64 packages
# (tests/e2e/make-base.sh), boots both at once under qemu-system-aarch64 on a virtual
# segment whose gateway is the harness (tests/e2e/lib.sh), and checks over SSH that each
# came up as the node the inventory describes; reaching a node at all proves its static
# address was applied. Then rebuilds the worker from its kept state and boots it again:
# the same host key must be accepted without a warning. The images' roots are grown by
# pibake 2 GiB past the base's (`root_size:`), and each grows on to its card on first
# boot as the image's own first boot does. (Baked role software is booted by the cluster
# tests beside this one.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init
netns_up 10.0.0.1/24

# The desk example as shipped, but for the base, a key this run holds, an admin called
# `ops` (so the image's `pi` is renamed offline and the rename must hold at boot), and a
# root 2 GiB larger than the base's.
root_part() { sfdisk -J "$1" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][1]; print(p["size"]*512)'; }
grown=$(($(root_part "$base") + (2 << 30)))
# The worker's role gets a profile of its own over the shipped `worker`: one first-boot
# step, so the worker has a first boot for `pibake status` to follow.
cluster=$(cluster_file desk "$work/cluster" "s|^\(base: .*\)$|\1\nroot_size: $((grown >> 20))MiB|" \
  "s|^roles: { head: {}, worker: {} }$|roles: { head: {}, worker: { profile: e2e-worker } }|")
mkdir -p "$work/cluster/profiles"
printf 'extends: worker\nfirstboot:\n  - touch /var/lib/pibake-e2e-step\n' >"$work/cluster/profiles/e2e-worker.yaml"
out="$work/out"

"$pibake" build "$cluster" --out "$out" --node head --node node1 --quiet >/dev/null
for n in head node1; do
  [ "$(root_part "$out/$n.img")" = "$grown" ] || fail "$n.img's root partition is not the base's + 2 GiB"
done

plan_enables() { "$pibake" plan "$cluster" --node "$1" --json | python3 -c 'import json,sys; p=json.load(sys.stdin); print(" ".join(p["nodes"][0]["services"]["enable"]))'; }

# check NODE ADDRESS OTHER OTHER_ADDRESS: the assertions on a booted node.
check() {
  local address=$2 other=$3 other_address=$4 got
  got=$(on "$node" hostname) || fail "ssh hostname"
  [ "$got" = "$node" ] || fail "hostname is '$got', not '$node'"
  got=$(on "$node" ip -4 -o addr show dev eth0) || fail "ssh ip addr"
  [[ "$got" == *" $address/24 "* ]] || fail "eth0 does not have $address/24: $got"
  got=$(on "$node" ip -4 route show default) || fail "ssh ip route"
  [[ "$got" == "default via 10.0.0.1 dev eth0"* ]] || fail "default route is not via 10.0.0.1 on eth0: $got"
  got=$(on "$node" getent hosts "$other") || fail "$other does not resolve on $node"
  [[ "$got" == "$other_address "* ]] || fail "$other resolves to '$got', not $other_address"
  for unit in $(plan_enables "$node"); do
    got=$(on "$node" systemctl is-active "$unit" || true)
    [ "$got" = active ] || fail "$unit is '$got', the profile enables it"
  done
  local id
  id=$(manifest "$node" 'n["disk_id"]')
  got=$(on "$node" cat /proc/cmdline)
  [[ "$got" == *"root=PARTUUID=$id-02"* ]] || fail "the kernel was not given pibake's root=PARTUUID=$id-02: $got"
  got=$(on "$node" findmnt -no SOURCE /boot/firmware) || fail "/boot/firmware is not mounted (fstab's PARTUUID=$id-01)"
  got=$(on "$node" cat /boot/firmware/cmdline.txt)
  [[ "$got" == *"root=PARTUUID=$id-02"* ]] || fail "cmdline.txt on the node lacks root=PARTUUID=$id-02: $got"
  got=$(on "$node" cat /boot/firmware/config.txt)
  if [ "$node" != head ]; then
    grep -qx 'gpu_mem=16' <<<"$got" || fail "config.txt on the node lacks the worker's gpu_mem=16"
  fi
  got=$(on "$node" sudo -n true 2>&1) || fail "the admin cannot sudo without a password: $got"
  if [ "$node" = node1 ]; then
    on "$node" test -e /var/lib/pibake-e2e-step || fail "the profile's first-boot step did not run"
  fi
  root_on_card "$node"
  say "$node: hostname, eth0 $address/24 via 10.0.0.1, $other in /etc/hosts, services, config.txt, cmdline.txt, fstab, sudo: all as baked"
}

vm_start head "$out/head.img" 10.0.0.10
vm_start node1 "$out/node1.img" 10.0.0.11
vm_wait head
vm_wait node1
node=head
check head 10.0.0.10 node1 10.0.0.11
node=node1
check node1 10.0.0.11 head 10.0.0.10

# pibake status, from the harness's side of the segment, through the build's ssh_config:
# both nodes ready; then, with the head stopped, the head unreachable and the exit
# status not 0.
status() { "$pibake" status "$cluster" --out "$out" --node head --node node1 --identity "$work/admin_key" --ssh-command "ip netns exec $ns ssh" "$@"; }
node=head
got=$(status) || fail "pibake status says the cluster is not ready: $got"
grep -q '^2 ready' <<<"$got" || fail "pibake status does not count both nodes ready: $got"
json=$(status --json) || fail "pibake status --json exits non-zero"
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); v={n["node"]: n["verdict"] for n in s["nodes"]}; assert v == {"head": "ready", "node1": "ready"}, v' "$json" ||
  fail "pibake status --json: $json"
python3 -c '
import json, sys
s = json.loads(sys.argv[1])
for n in s["nodes"]:
    assert n["ssh"]["exit"] == 0 and n["hostname"] == n["node"], n
    want = {"head": "none", "node1": "done"}[n["node"]]
    assert n["first_boot"]["state"] == want and n["first_boot"]["failed_step"] is None, n
    assert n["system"] == "running" and n["failed_units"] == [] and n["problems"] == [], n
    assert all(u["active"] == "active" for u in n["units"]), n["units"]
    assert all(p["ok"] for p in n["packages"]), n["packages"]
    assert n["root"]["filesystem_bytes"] > 0 and n["rebuild"] is None, n
assert s["summary"]["ready"] == 2 and s["summary"]["all_ready"] is True, s["summary"]
assert s["summary"]["failed"] == s["summary"]["unreachable"] == s["summary"]["wrong_host_key"] == 0, s["summary"]
' "$json" || fail "pibake status --json, field by field: $json"

# A card in the wrong slot: the head's name reaches node1's machine (ssh's -o options win
# over the build's ssh_config; the alias keeps the key looked up as the head's), whose
# host key is node1's, not the head's.
if got=$("$pibake" status "$cluster" --out "$out" --node head --identity "$work/admin_key" \
  --ssh-command "ip netns exec $ns ssh -o HostName=10.0.0.11 -o HostKeyAlias=head"); then
  fail "pibake status exits 0 with node1 answering for the head: $got"
fi
grep -q '^head .*wrong host key' <<<"$got" || fail "pibake status does not name the head's wrong host key: $got"

# A first-boot step that fails: dropped onto node1 and run by its own runner through the
# unit, as a profile's failing `firstboot:` step runs. status names the step, shows the
# runner's log, exits non-zero and says how to rebuild; once the step is gone and the
# runner has run again, node1 is ready again.
step=/usr/local/lib/pibake/firstboot.d/99-e2e-fails.sh
on node1 "sudo sh -c 'rm -f /var/lib/pibake/firstboot.done; printf \"echo e2e: this step fails >&2\nexit 3\n\" >$step; systemctl restart pibake-firstboot.service'" &&
  fail "the failing first-boot step did not fail"
if got=$(status); then fail "pibake status exits 0 with node1's first boot failed: $got"; fi
grep -q '^node1 .*failed.*first boot failed at step 99-e2e-fails (exit 3)' <<<"$got" ||
  fail "pibake status does not name node1's failed step: $got"
grep -q '99-e2e-fails failed (exit 3); retried on the next boot' <<<"$got" || fail "pibake status does not show the runner's log: $got"
grep -q 'pibake build .* --node node1' <<<"$got" || fail "pibake status does not say how to rebuild node1: $got"
on node1 "sudo sh -c 'rm $step; systemctl restart pibake-firstboot.service'" || fail "node1's runner did not finish once the step was gone"
got=$(status) || fail "pibake status: node1 is not ready again: $got"
say "pibake status: a wrong host key named, a failed first-boot step named with its log, ready again once it is gone"

vm_halt head
if got=$(status --connect-timeout 5); then fail "pibake status exits 0 with the head stopped: $got"; fi
grep -q '^head .*unreachable' <<<"$got" || fail "pibake status does not name the stopped head unreachable: $got"
say "pibake status: both nodes ready, then the stopped head unreachable"
vm_halt node1

# Rebuild the worker from its kept state: the same image, byte for byte, and the host key
# the first boot served is accepted again with strict checking.
before=$(manifest node1 'n["image"]["sha256_4m"]')
rm "$out/node1.img"
"$pibake" build "$cluster" --out "$out" --node node1 --quiet >/dev/null
after=$(manifest node1 'n["image"]["sha256_4m"]')
[ "$before" = "$after" ] || fail "the rebuilt node1 differs from the first build ($before, $after)"
vm_start node1 "$out/node1.img" 10.0.0.11
vm_ssh node1
got=$(on node1 hostname)
[ "$got" = node1 ] || fail "the rebuilt node1 says it is '$got'"
vm_halt node1
say "rebuilt node1: same image, same host key, accepted without a warning"
say "all checks passed"
