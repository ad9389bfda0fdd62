#!/usr/bin/env bash
# End-to-end: the shipped teaching cluster runs MPI programs across its nodes. Builds its
# head and one compute node from the e2e base (Open MPI and mpi4py resolved by pibake
# against the base's own Debian sources, locked and baked in), boots both at once on one
# virtual segment (tests/e2e/lib.sh) with no way out, and checks:
#   - each node installed openmpi-bin and python3-mpi4py on first boot with no network,
#     at the versions pibake.lock holds, and removed the .debs;
#   - each node's Open MPI default hostfile is the hostfile pibake wrote beside the images;
#   - `mpirun` on the head, as the admin, starts a rank on each node over the cluster's
#     SSH with no host key prompt (each rank names its host), and the shipped merge sort
#     scatters an array over both nodes and gathers it back sorted.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init

netns_up 10.40.0.1/24
cluster=$(cluster_file teaching-mpi "$work/cluster" \
  's|^  - { name: "node\[1-3\]", role: compute }$|  - { name: node1, role: compute }|')
out="$work/out"
"$pibake" build "$cluster" --out "$out" --quiet >/dev/null

vm_start head "$out/head.img" 10.40.0.10
vm_start node1 "$out/node1.img" 10.40.0.11
for n in head node1; do vm_wait "$n" 900; done

for n in head node1; do
  packages_locked "$n" openmpi-bin python3-mpi4py
  got=$(on "$n" cat /etc/openmpi/openmpi-default-hostfile) || fail "no Open MPI default hostfile"
  [ "$got" = "$(cat "$out/hostfile")" ] || fail "the node's hostfile is not the cluster's: $got"
done
say "head, node1: Open MPI and mpi4py at the locked versions, installed offline; the hostfile is the cluster's"

# One rank per node (`--map-by node`); stdin closed, so a host key prompt would fail
# rather than wait.
node=head
mpirun="timeout 600 mpirun --hostfile /etc/openmpi/openmpi-default-hostfile --map-by node -np 2"
got=$(on head "$mpirun python3 /usr/local/share/teaching-mpi/hello.py </dev/null" 2>&1) ||
  fail "mpirun of hello.py failed: $got"
[[ "$got" == *"rank 0 of 2 on head"* && "$got" == *"rank 1 of 2 on node1"* ]] ||
  fail "hello.py did not run a rank on each node: $got"
say "mpirun: $(tr '\n' ';' <<<"$got")"
got=$(on head "$mpirun python3 /usr/local/share/teaching-mpi/merge_sort.py 20000 </dev/null" 2>&1) ||
  fail "mpirun of merge_sort.py failed: $got"
[[ "$got" == *"rank 1 on node1: sorted 10000 numbers"* && "$got" == *"merged 20000 numbers from 2 ranks: sorted"* ]] ||
  fail "the merge sort did not sort across both nodes: $got"
say "merge sort: $(grep merged <<<"$got")"

for n in head node1; do vm_halt "$n"; done
say "teaching MPI cluster: all checks passed"
