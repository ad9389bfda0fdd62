# Shared by the benchmark scripts: timing with `sync`, best of three, and a reflink
# filesystem (XFS in a loop-mounted file, since this machine's disk is ext4).

# secs CMD...: wall seconds of CMD, counting until its data is on disk.
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; sync; e=$(date +%s.%N); echo "$e - $s" | bc; }

# best OUT CMD...: the best of three runs of CMD; OUT is emptied before each.
best() {
  local out=$1 best= t; shift
  for _ in 1 2 3; do
    rm -rf "$out"; mkdir -p "$out"; sync
    t=$(secs "$@")
    best=$(awk -v a="$t" -v b="$best" 'BEGIN { print (b == "" || a < b) ? a : b }')
  done
  echo "$best"
}

# xfs_up WORK BASE: a 64 GiB sparse XFS with reflinks mounted at WORK/xfs (unmounted and
# removed on exit), holding a copy of BASE as WORK/xfs/base.img; sets `xfs`.
xfs_up() {
  local work=$1
  xfs=$work/xfs
  mkdir -p "$xfs"
  mountpoint -q "$xfs" && umount "$xfs"
  rm -f "$work/xfs.img"
  truncate -s 64G "$work/xfs.img"
  mkfs.xfs -q -m reflink=1 "$work/xfs.img"
  mount -o loop "$work/xfs.img" "$xfs"
  # shellcheck disable=SC2064
  trap "umount '$xfs' 2>/dev/null || true; rm -f '$work/xfs.img'" EXIT
  cp --sparse=always "$2" "$xfs/base.img"
}
