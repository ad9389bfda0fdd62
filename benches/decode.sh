#!/usr/bin/env bash
# Decode benchmark: `pibake unpack` of a ~2 GiB .img.xz against `xz -dc -T0 >/dev/null`
# on the same file, in the same run. The image is ~1.4 GiB of real binaries and text from
# this machine's /usr plus zero runs (free space), compressed with `xz -T0` so that it has
# independent blocks as Raspberry Pi OS releases do.
#
# usage: bash benches/decode.sh [WORKDIR]   (default: target/bench-decode; kept for reruns)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-decode}
mkdir -p "$work"
img=$work/bench.img
xzf=$work/bench.img.xz
if [[ ! -f $xzf ]]; then
    echo "building $img (2 GiB) and $xzf; this happens once" >&2
    rm -f "$img"
    truncate -s 2G "$img"
    # 1.4 GiB of file contents from /usr, then holes (zero runs) for the rest.
    # (head stops the pipeline early on purpose, so pipefail is off for it)
    (set +o pipefail
     find /usr/lib /usr/share /usr/bin -type f -size +4k -print0 2>/dev/null | sort -z |
        xargs -0 cat 2>/dev/null | head -c $((1400 << 20)) |
        dd of="$img" conv=notrunc bs=1M status=none iflag=fullblock)
    xz -T0 -6 -k -f "$img"
    rm -f "$img"
fi
cargo build --release --quiet
bin=target/release/pibake
cache=$work/cache

best() { # best wall-clock seconds of 3 runs of "$@"
    local best=
    for _ in 1 2 3; do
        rm -rf "$cache"
        local s e
        s=$(date +%s.%N)
        "$@" >/dev/null
        e=$(date +%s.%N)
        best=$(echo "$e - $s" | bc | awk -v b="$best" '{ if (b == "" || $1 < b) print $1; else print b }')
    done
    echo "$best"
}

size=$(stat -c %s "$xzf")
base=$(best xz -dc -T0 "$xzf")
ours=$(best "$bin" unpack --quiet --cache-dir "$cache" "$xzf")
rm -rf "$cache"
/usr/bin/time -f %M "$bin" unpack --quiet --cache-dir "$cache" "$xzf" >/dev/null 2>"$work/rss"
alloc=$(du -k "$cache"/*.img | cut -f1)
printf 'input        %s (%d MiB xz, 2048 MiB image), %d cores\n' "$xzf" $((size >> 20)) "$(nproc)"
printf 'xz -dc -T0   %6.2f s (baseline, output to /dev/null)\n' "$base"
printf 'pibake       %6.2f s (sha256 + decode + sparse write into the cache)\n' "$ours"
printf 'ratio        %6.2fx (target <= 1.2x)\n' "$(echo "$ours / $base" | bc -l)"
printf 'peak RSS     %6d MiB; cache entry allocates %d MiB of 2048\n' $(($(cat "$work/rss") >> 10)) $((alloc >> 10))
