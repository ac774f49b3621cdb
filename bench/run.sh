#!/usr/bin/env bash
# `make bench`: stint side by side with the kernel floor, the LXC sequence,
# LXD and podman (when installed), on the same machine in one run, with
# warm-up and interleaved repetitions. Not a test: CI never runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/anchors/common.sh
REPS=${REPS:-30}
STINT=$PWD/bin/stint

bash bench/setup.sh
go build -o bin/harness ./bench/harness

# stint's own roots: one on the btrfs loop filesystem (auto picks btrfs), one on ext4 (auto picks overlay).
mkdir -p "$BTRFS/stint" "$EXT/stint"
for r in "$BTRFS/stint" "$EXT/stint"; do
  "$STINT" --root "$r" run bench/trivial.toml >/dev/null # builds the image and the golden volume once
done

contenders=(
  "floor (btrfs, privileged)=bash bench/anchors/floor.sh"
  "lxc-copy+execute btrfs (priv)=bash bench/anchors/lxc-seq.sh btrfs"
  "lxc-copy+execute overlay (priv)=bash bench/anchors/lxc-seq.sh overlay"
  "stint run btrfs (unpriv)=$STINT --root $BTRFS/stint run bench/trivial.toml"
  "stint run overlay (unpriv)=$STINT --root $EXT/stint run bench/trivial.toml"
  "stint exec btrfs (unpriv)=$STINT --root $BTRFS/stint exec busybox -- /bin/true"
)
if command -v lxd >/dev/null && lxc info >/dev/null 2>&1; then
  lxc image info stint-bench-busybox >/dev/null 2>&1 || {
    d=$(mktemp -d); "$STINT" --root "$BTRFS/stint" image export busybox "$d" >/dev/null
    lxc image import "$d"/* --alias stint-bench-busybox >/dev/null; rm -rf "$d"; }
  contenders+=("lxd launch+exec+stop (unpriv)=bash bench/anchors/lxd.sh")
fi
if command -v podman >/dev/null; then
  contenders+=("podman run --rm (runc)=podman run --rm --runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 busybox true")
fi

echo "# single trivial job (/bin/true, fully torn down), $REPS interleaved repetitions, $(date -u +%F)"
bin/harness -reps "$REPS" -warmup 3 -ref "stint run btrfs (unpriv)" "${contenders[@]}"
echo
echo "# throughput: 40 jobs, 4 at once"
bin/harness -throughput 40 -parallel 4 \
  "floor=bash bench/anchors/floor.sh" \
  "lxc-copy+execute btrfs=bash bench/anchors/lxc-seq.sh btrfs" \
  "stint run btrfs=$STINT --root $BTRFS/stint run bench/trivial.toml"
echo
echo "# stint peak RSS (KiB) for one trivial job"
/usr/bin/time -f "%M" "$STINT" --root "$BTRFS/stint" run bench/trivial.toml 2>&1 >/dev/null | tail -1
echo
echo "# clone cost, 1 MiB vs 1 GiB golden volume (Go benchmarks)"
go test -run '^$' -bench 'Clone' -benchtime 20x ./storage/... 2>/dev/null | grep -E '^Benchmark' || echo "(storage benchmarks unavailable)"
