#!/usr/bin/env bash
# Flash benchmark: `pibake flash` (data only, then read back and compared) against
# `dd bs=4M conv=fsync` of the whole image, to the same regular-file target, same run.
# The image is the decode benchmark's 2 GiB image (1.4 GiB of data, the rest holes),
# decoded sparsely by `pibake unpack`.
#
# usage: bash benches/flash.sh [WORKDIR]   (default: target/bench-decode, shared with decode.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-decode}
[[ -f $work/bench.img.xz ]] || bash benches/decode.sh "$work" >/dev/null
cargo build --release --quiet
bin=target/release/pibake
img=$("$bin" unpack --quiet --cache-dir "$work/cache" "$work/bench.img.xz")
target=$work/flash-target.img

run() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

rm -f "$target"; touch "$target"; sync
t_dd=$(run dd if="$img" of="$target" bs=4M conv=fsync)
rm -f "$target"; touch "$target"; sync
t_pb=$(run "$bin" flash "$img" --device "$target" --yes --log "$work/flash.log")
rm -f "$target"; touch "$target"; sync
t_nv=$(run "$bin" flash "$img" --device "$target" --yes --no-verify --log "$work/flash.log")
size=$(stat -c %s "$img")
data=$(tail -1 "$work/flash.log" | sed 's/.*"bytes_written":\([0-9]*\).*/\1/')
printf 'image          %d MiB, %d MiB of data\n' $((size >> 20)) $((data >> 20))
printf 'dd bs=4M       %6.2f s, %d MiB written (baseline)\n' "$t_dd" $((size >> 20))
printf 'pibake flash   %6.2f s, %d MiB written, verified (%.2fx dd)\n' "$t_pb" $((data >> 20)) "$(echo "$t_pb / $t_dd" | bc -l)"
printf '  --no-verify  %6.2f s (%.2fx dd)\n' "$t_nv" "$(echo "$t_nv / $t_dd" | bc -l)"
