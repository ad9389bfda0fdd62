#!/usr/bin/env bash
# End-to-end: the shipped HPC cluster forms itself and runs jobs under Slurm, on clocks
# that start apart. Builds its controller and two compute nodes from the e2e base
# (Slurm, munge, Open MPI and mpi4py resolved against the base's own Debian sources,
# baked in), boots them at once on one virtual segment with no way out, one compute's
# clock a year behind and the other's a day ahead (QEMU's -rtc base=, as Pis without a
# battery clock), and checks:
#   - each node configured its packages offline at the locked versions;
#   - the munge key is the state directory's, 0400 munge:munge on every node;
#   - every compute's clock came within a second of the controller's (chrony there,
#     systemd-timesyncd here);
#   - `sinfo` shows both computes idle in the default partition, and `scontrol show node`
#     the CPUs and memory the plan gave them;
#   - `srun -N2 hostname` runs on both, and the shipped merge sort job, submitted with
#     `sbatch`, sorts across both nodes through srun and PMIx;
#   - `pibake status` finds every node ready and both computes Ready in sinfo.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init

netns_up 10.50.0.1/22
# Two computes of one vCPU and 768 MiB each (vm_start), no spares.
cluster=$(cluster_file hpc-cluster "$work/cluster" \
  's|^  - { name: "node\[001-144\]", role: compute }$|  - { name: "node[001-002]", role: compute }|' \
  '/^  - { name: "spare\[1-6\]"/d' \
  's|^  cpus: 4$|  cpus: 1|' 's|^  memory_mb: 768$|  memory_mb: 512|')
out="$work/out"
plan=$("$pibake" plan "$cluster") || fail "pibake plan failed"
grep -q "slurm   compute with 1 CPUs and 512 MiB in compute" <<<"$plan" ||
  fail "the plan does not give the computes 1 CPU and 512 MiB: $(grep slurm <<<"$plan")"
"$pibake" build "$cluster" --out "$out" --quiet >/dev/null

nodes=(controller node001 node002)
skewed_clocks node001 node002
vm_start controller "$out/controller.img" 10.50.0.10
vm_start node001 "$out/node001.img" 10.50.0.11
vm_start node002 "$out/node002.img" 10.50.0.12
for n in "${nodes[@]}"; do vm_wait "$n" 900; done

key=$(sha256sum <"$work/cluster/.pibake/state/_cluster/munge.key" | cut -c1-64)
for n in "${nodes[@]}"; do
  packages_locked "$n" munge slurm-client openmpi-bin python3-mpi4py
  got=$(on "$n" "sudo -n stat -c '%a %U %G' /etc/munge/munge.key") || fail "no munge key"
  [ "$got" = "400 munge munge" ] || fail "the munge key is $got, not 400 munge munge"
  got=$(on "$n" "sudo -n sha256sum /etc/munge/munge.key" | cut -c1-64)
  [ "$got" = "$key" ] || fail "the munge key is not the state directory's"
done
packages_locked controller slurmctld chrony
packages_locked node001 slurmd
say "controller, node001, node002: Slurm, munge and MPI at the locked versions; one munge key, 0400 munge"

for n in node001 node002; do clock_agrees "$n" controller; done

node=controller
deadline=$((SECONDS + 180))
until got=$(on controller "sinfo -h -N -o '%N %T %P'") &&
  [ "$(grep -c ' idle compute\*$' <<<"$got")" = 2 ]; do
  [ $SECONDS -lt $deadline ] || fail "sinfo does not show both computes idle in the default partition: $got"
  sleep 5
done
say "sinfo: $(tr '\n' ';' <<<"$got")"
for n in node001 node002; do
  got=$(on controller scontrol show node "$n") || fail "scontrol show node $n failed"
  [[ "$got" == *"CPUTot=1 "* && "$got" == *"RealMemory=512 "* ]] ||
    fail "scontrol reports other CPUs or memory for $n than the plan: $got"
done
say "scontrol: both computes with the CPUs and memory of the plan"

got=$(on controller timeout 300 srun -N2 hostname </dev/null 2>&1) || fail "srun -N2 hostname failed: $got"
[ "$(sort <<<"$got" | tr '\n' ' ')" = "node001 node002 " ] || fail "srun -N2 hostname printed: $got"
say "srun -N2 hostname: $(tr '\n' ' ' <<<"$got")"

job=$(on controller sbatch --parsable --wait /usr/local/share/slurm/merge-sort.sbatch 20000 </dev/null 2>&1) ||
  fail "the merge sort job failed: $job"
node=node001
got=$(on node001 cat "merge-sort-$job.out") || fail "no output of job $job on its first node"
[[ "$got" == *"rank 1 on node002: sorted 10000 numbers"* && "$got" == *"merged 20000 numbers from 2 ranks: sorted"* ]] ||
  fail "the merge sort job did not sort across both nodes: $got"
say "sbatch merge sort (job $job): $(grep merged <<<"$got")"

# pibake status, from the harness's side of the segment: every node ready, and the
# controller's view of its computes through sinfo.
got=$("$pibake" status "$cluster" --out "$out" --identity "$work/admin_key" --ssh-command "ip netns exec $ns ssh") ||
  fail "pibake status says the cluster is not ready: $got"
grep -q '^3 ready' <<<"$got" && grep -q 'slurm: 2 of 2 Ready' <<<"$got" ||
  fail "pibake status does not report three nodes ready and both computes in sinfo: $got"
say "pibake status: 3 ready; the controller's sinfo lists both computes"

for n in "${nodes[@]}"; do vm_halt "$n"; done
say "HPC cluster: all checks passed"
