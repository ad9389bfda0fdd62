#!/usr/bin/env bash
# dpkg itself as the oracle for pibake's offline unpacking. For real Debian arm64
# closures (the web worker's apache2 set, Open MPI with mpi4py, docker.io with
# containerd and runc), pibake builds one node per set from the e2e base, unpacking the
# packages into the image; then the same .debs (from pibake's cache, as pibake.lock
# names them) are unpacked by the base's own dpkg, `dpkg --unpack` in the same order,
# under qemu-user in a chroot made from a copy of the same base. The two roots are
# compared path by path (tests/e2e/dpkg-compare.py): every path the packages list, their
# conffiles' .dpkg-new, dpkg's info files, trigger interests, status records, and the
# pending triggers. Emulation is used here only, as the oracle; never by pibake.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init

dir="$work/cluster"
mkdir -p "$dir/profiles"
declare -A sets=(
  [web]="apache2 curl"
  [mpi]="openmpi-bin libopenmpi-dev python3-mpi4py"
  [docker]="docker.io"
)
roles=""
nodes=""
for role in "${!sets[@]}"; do
  words=$(sed 's/ /, /g' <<<"${sets[$role]}")
  printf 'packages: [%s]\ninstall_recommends: false\n' "$words" >"$dir/profiles/oracle-$role.yaml"
  roles="$roles  $role: { profile: oracle-$role }"$'\n'
  nodes="$nodes  - { name: $role, role: $role }"$'\n'
done
cat >"$dir/cluster.yaml" <<EOF
cluster: oracle
base: $base
admin:
  name: ops
  locked: true
  ssh_keys: ["$(cat "$work/admin_key.pub")"]
roles:
$roles
nodes:
$nodes
EOF
cache="$work/cache"
"$pibake" --cache-dir "$cache" build "$dir/cluster.yaml" --out "$work/out" 2>&1 | grep '^pibake: role' || true
[ -s "$dir/pibake.lock" ] || fail "the build wrote no pibake.lock"
"$pibake" --cache-dir "$cache" plan "$dir/cluster.yaml" --json >"$work/plan.json"

# mount_root IMAGE DIR: the image's root partition, read-only.
mount_root() {
  local off
  off=$(sfdisk -J "$1" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][1]; print(p["start"]*512)')
  mkdir -p "$2"
  mount -o ro,loop,offset="$off" "$1" "$2"
}
mounted=()
cleanup_mounts() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap 'cleanup_mounts; e2e_cleanup' EXIT

mount_root "$base" "$work/base"
mounted+=("$work/base")
for role in "${!sets[@]}"; do
  node=$role
  mount_root "$work/out/$role.img" "$work/pibake-$role"
  mounted+=("$work/pibake-$role")
  # The oracle's root: a copy of the base, the .debs pibake unpacked, dpkg inside.
  oracle="$work/dpkg-$role"
  cp -a "$work/base" "$oracle"
  mkdir -p "$oracle/tmp/debs"
  debs=()
  mapfile -t unpacked <"$work/pibake-$role/var/lib/pibake/packages/unpacked"
  for line in "${unpacked[@]}"; do
    read -r pkg arch _info <<<"$line"
    sha=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["packages"]["roles"][sys.argv[2]]["packages"]; print(next((p["sha256"] for p in r if p["name"]==sys.argv[3] and p["architecture"]==sys.argv[4]), ""))' \
      "$work/plan.json" "$role" "$pkg" "$arch")
    [ -n "$sha" ] || fail "$pkg ($arch) is not in pibake.lock's role $role"
    cp "$cache/apt/sha256/$sha" "$oracle/tmp/debs/$pkg.deb"
    debs+=("/tmp/debs/$pkg.deb")
  done
  say "$role: ${#debs[@]} packages unpacked by pibake; dpkg --unpack of the same files under qemu-user"
  chroot "$oracle" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    dpkg --unpack --no-triggers --force-unsafe-io "${debs[@]}" >"$work/dpkg-$role.log" 2>&1 ||
    { tail -n 30 "$work/dpkg-$role.log"; fail "dpkg --unpack failed in the oracle's chroot"; }
  python3 "$repo/tests/e2e/dpkg-compare.py" "$work/pibake-$role" "$oracle" "$work/base" ||
    fail "pibake's offline unpack differs from dpkg's"
  say "$role: pibake's root equals dpkg's (directory and info-file times, and when triggers are incorporated, aside)"
done
say "dpkg oracle: all sets equal"
