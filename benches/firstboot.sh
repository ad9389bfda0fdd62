#!/usr/bin/env bash
# First-boot benchmark: power-on to the role answering, for a web worker whose apache2
# and curl pibake unpacked at build time (configured on first boot), against the same
# node with the same packages already installed and configured: the very same card
# powered on a second time (what an image with its software preinstalled, as sdm or
# pi-gen would make it, does on every boot; it skips the root's grow-to-card, so the
# baseline is if anything a little fast). One guest under QEMU (software emulation,
# one vCPU), on the e2e base and harness (tests/e2e/lib.sh); "answering" is the worker's
# templated page served on its address, polled every second from the cluster segment.
#
# Needs root (network namespace, taps), like the boot tests.
#
# usage: bash benches/firstboot.sh
set -euo pipefail
source "$(dirname "$0")/../tests/e2e/lib.sh"
e2e_init

netns_up 192.168.50.1/24
cluster=$(cluster_file web-cluster "$work/cluster" \
  's|^  - { name: "web\[01-04\]", role: worker }$|  - { name: "web[01-02]", role: worker }|')
out="$work/out"
"$pibake" build "$cluster" --out "$out" --node web01 --quiet >/dev/null

# until_page NODE: seconds from the node's power-on until its page answers.
until_page() {
  local n=$1
  until in_ns curl -fsS --max-time 5 "http://${node_addr[$n]}/" 2>/dev/null | grep -q "Served by $n"; do
    [ $((SECONDS - booted_at[$n])) -lt 1800 ] || fail "$n's page did not answer within 1800 s"
    sleep 1
  done
  echo $((SECONDS - booted_at[$n]))
}

vm_start web01 "$out/web01.img" 192.168.50.11
first=$(until_page web01)
vm_wait web01 900
on web01 sudo -n sync
kill "${qemu_pid[web01]}"
wait "${qemu_pid[web01]}" 2>/dev/null || true
ip -n "$ns" link del tap-web01
E2E_REUSE_DISK=1 vm_start web01 "$out/web01.img" 192.168.50.11
again=$(until_page web01)
say "page served after ${first} s on first boot (unpacked at build time, configured now), ${again} s when already installed: $(python3 -c "print(f'{$first/$again:.2f}')")x"
