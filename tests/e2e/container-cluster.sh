#!/usr/bin/env bash
# End-to-end: the shipped container cluster forms a Docker swarm and runs its stack by
# itself. Builds its manager and one worker from the e2e base (docker.io resolved by
# pibake against the base's own Debian sources, locked and baked in), with the stack's
# image made here without Docker (examples/container-cluster/make-image.py, from the
# busybox-static package pibake fetches and verifies like any other), boots both at once
# on one virtual segment (tests/e2e/lib.sh) with no way out, and checks:
#   - docker.io does not fit the base's root (sized as pi-gen sizes it): pibake grows the
#     roles' roots at build time, and each node's root then grows on to its card on
#     first boot;
#   - each node installed docker.io on first boot with no network, at the version
#     pibake.lock holds, and removed the .debs;
#   - `docker node ls` on the manager shows both nodes Ready, each labelled with its role
#     and its `labels` var from the inventory;
#   - the stack's two-replica service runs one task on each node, and answers on its
#     published port on both nodes;
#   - the join token is in no log: not in either node's journal, not in the build's
#     outputs;
#   - the worker's clock, started a year behind (QEMU's -rtc base=, as a Pi without a
#     battery clock), came within a second of the manager's, the cluster's time server,
#     before it joined (the swarm's TLS refuses certificates "not yet valid").
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init

netns_up 10.20.0.1/24
cluster=$(cluster_file container-cluster "$work/cluster" \
  's|^  - { name: "worker\[1-3\]", role: worker, |  - { name: worker1, role: worker, |')

# The stack's image: busybox-static for the nodes' architecture, fetched by pibake for a
# scratch role (its .deb from pibake's cache, as pibake.lock names it).
mkdir -p "$work/bb/profiles"
sed -n '/^admin:/,/^    - ssh-ed25519/p' "$cluster" >"$work/bb/admin.yaml"
{
  printf 'cluster: bb\nbase: %s\n' "$base"
  cat "$work/bb/admin.yaml"
  printf 'roles: { bb: {} }\nnodes: [ { name: bb, role: bb } ]\n'
} >"$work/bb/cluster.yaml"
printf 'extends: base\npackages: [busybox-static]\ninstall_recommends: false\n' >"$work/bb/profiles/bb.yaml"
"$pibake" --cache-dir "$work/bb/cache" build "$work/bb/cluster.yaml" --out "$work/bb/out" --quiet >/dev/null
sha=$("$pibake" --cache-dir "$work/bb/cache" plan "$work/bb/cluster.yaml" --json |
  python3 -c 'import json,sys; print(next(p["sha256"] for p in json.load(sys.stdin)["packages"]["roles"]["bb"]["packages"] if p["name"] == "busybox-static"))') ||
  fail "pibake.lock has no busybox-static"
deb=busybox-static.deb
cp "$work/bb/cache/apt/sha256/$sha" "$work/$deb"
# And it was unpacked into the scratch image.
root=$(sfdisk -J "$work/bb/out/bb.img" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][1]; print(p["start"]*512)')
debugfs -R "dump /bin/busybox $work/busybox.unpacked" "$work/bb/out/bb.img?offset=$root" 2>/dev/null
[ -s "$work/busybox.unpacked" ] || fail "busybox-static was not unpacked into the scratch image"
python3 "$work/cluster/make-image.py" "$work/$deb" "$work/cluster/overlays/app/var/lib/pibake/images/hello.tar" >/dev/null

out="$work/out"
grown=$("$pibake" plan "$cluster" | grep -c "^role \(manager\|worker\): root partition .* grown from the base's .*: the role's software takes") ||
  fail "pibake plan does not grow the roots for docker.io"
[ "$grown" = 2 ] || fail "pibake plan grows $grown of the two roles' roots"
"$pibake" build "$cluster" --out "$out" --quiet >/dev/null

skewed_clocks worker1
vm_start manager "$out/manager.img" 10.20.0.10
vm_start worker1 "$out/worker1.img" 10.20.0.11
for n in manager worker1; do vm_wait "$n" 900; done
clock_agrees worker1 manager
for n in manager worker1; do packages_locked "$n" docker.io; done
say "manager, worker1: docker.io at the locked version, installed offline"
for n in manager worker1; do root_on_card "$n"; done

# The swarm forms by itself; the stack follows once both nodes are Ready.
node=manager
start=$SECONDS
until got=$(on manager "sudo -n docker service ls --format '{{.Name}} {{.Replicas}}'" 2>/dev/null) &&
  [[ "$got" == *"app_hello 2/2"* ]]; do
  [ $((SECONDS - start)) -lt 900 ] || fail "the stack's service is not 2/2 after 900 s: '$got'; $(on manager sudo -n journalctl -b -u pibake-swarm --no-pager | tail -n 20)"
  sleep 10
done
say "stack app deployed, service app_hello 2/2 after $((SECONDS - start)) s"
got=$(on manager "sudo -n docker node ls --format '{{.Hostname}} {{.Status}}'")
for n in manager worker1; do
  grep -qx "$n Ready" <<<"$got" || fail "docker node ls does not show $n Ready: $got"
done
for want in "manager role=manager zone=desk" "worker1 role=worker zone=rack"; do
  n=${want%% *}
  got=$(on manager "sudo -n docker node inspect --format '{{range \$k, \$v := .Spec.Labels}}{{\$k}}={{\$v}} {{end}}' $n")
  [ "$n $got" = "$want " ] || fail "$n is labelled '$got', the inventory says '${want#* }'"
done
say "docker node ls: manager and worker1 Ready, labelled with their roles and zones"
got=$(on manager "sudo -n docker service ps app_hello --filter desired-state=running --format '{{.Node}}'" | sort | tr '\n' ' ')
[ "$got" = "manager worker1 " ] || fail "the two tasks do not run one on each node: $got"
for a in 10.20.0.10 10.20.0.11; do
  got=$(in_ns curl -fsS --max-time 20 "http://$a:8080/") || fail "nothing answers on $a:8080"
  [ "$got" = "<p>hello from a pibake swarm</p>" ] || fail "$a:8080 answered '$got'"
done
say "app_hello: one task on each node; port 8080 answers on both"

# The token: in no journal, in nothing the build wrote.
token=$(on manager sudo -n docker swarm join-token -q worker)
[ -n "$token" ] || fail "no join token on the manager"
for n in manager worker1; do
  node=$n
  if on "$n" sudo -n journalctl -b --no-pager | grep -qF "$token"; then fail "the join token is in $n's journal"; fi
done
if grep -rqF "$token" "$out" "$work/cluster"; then fail "the join token is in the build's outputs"; fi
say "the join token is in no journal and in no output"

for n in manager worker1; do vm_halt "$n"; done
say "container cluster: all checks passed"
