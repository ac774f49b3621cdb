#!/usr/bin/env bash
# Makes the benchmark fixtures once: a btrfs loop-file filesystem, a busybox
# rootfs as a btrfs subvolume (the floor's base), and LXC base containers on
# btrfs and on a plain directory (for lxc-copy's overlay clones). Idempotent.
set -euo pipefail
. "$(dirname "$0")/anchors/common.sh"
mkdir -p "$B" "$BTRFS" "$EXT"
if ! mountpoint -q "$BTRFS"; then
  [ -f "$B/btrfs.img" ] || { truncate -s 8G "$B/btrfs.img"; mkfs.btrfs -q "$B/btrfs.img"; }
  mount -o loop "$B/btrfs.img" "$BTRFS"
fi
if [ ! -d "$BTRFS/base" ]; then
  btrfs -q subvolume create "$BTRFS/base"
  mkdir -p "$BTRFS/base/bin"
  cp /bin/busybox "$BTRFS/base/bin/busybox"
  for a in sh true; do ln -s busybox "$BTRFS/base/bin/$a"; done
fi
for spec in "$BTRFS/lxc:btrfs" "$EXT/lxc:dir"; do
  P=${spec%%:*} backing=${spec##*:}
  mkdir -p "$P"
  if [ ! -f "$P/base/config" ]; then
    lxc-create -q -P "$P" -n base -t busybox -B "$backing" >/dev/null
  fi
  # No network (there is no lxcbr0, and the trivial job needs none): loopback only, as stint's default.
  sed -i '/^lxc\.net\./d' "$P/base/config"
  echo 'lxc.net.0.type = empty' >> "$P/base/config"
done
