#!/usr/bin/env bash
# Makes the benchmark fixtures once: a btrfs loop-file filesystem, a busybox
# rootfs as a btrfs subvolume (the floor's base), and LXC base containers on
# btrfs and on a plain directory (for lxc-copy's overlay clones): `base`
# privileged, `ubase` unprivileged with stint's id map (root's first range of
# at least 65536 ids in /etc/subuid and /etc/subgid, as internal/idmap reads
# it), its rootfs shifted into that range (lxc-create runs the template in
# the user namespace). Idempotent; a changed range remakes `ubase`.
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
range_of() { awk -F: '($1 == "root" || $1 == "0") && $3 >= 65536 { print $2, $3; exit }' "$1"; }
read -r U US < <(range_of /etc/subuid) || { echo "setup: no range of root in /etc/subuid" >&2; exit 2; }
read -r G GS < <(range_of /etc/subgid) || { echo "setup: no range of root in /etc/subgid" >&2; exit 2; }
N=$((US < GS ? US : GS))
idmap=$(mktemp)
trap 'rm -f "$idmap"' EXIT
printf 'lxc.idmap = u 0 %s %s\nlxc.idmap = g 0 %s %s\n' "$U" "$N" "$G" "$N" >"$idmap"
for spec in "$BTRFS/lxc:btrfs" "$EXT/lxc:dir"; do
  P=${spec%%:*} backing=${spec##*:}
  mkdir -p "$P"
  if [ -f "$P/ubase/config" ] && ! grep -qxF "lxc.idmap = u 0 $U $N" "$P/ubase/config"; then
    lxc-destroy -q -P "$P" -n ubase
  fi
  [ -f "$P/base/config" ] || lxc-create -q -P "$P" -n base -t busybox -B "$backing" >/dev/null
  [ -f "$P/ubase/config" ] || lxc-create -q -P "$P" -n ubase -t busybox -B "$backing" -f "$idmap" >/dev/null
  for c in base ubase; do
    # No network (there is no lxcbr0, and the trivial job needs none): loopback only, as stint's default.
    sed -i '/^lxc\.net\./d' "$P/$c/config"
    echo 'lxc.net.0.type = empty' >> "$P/$c/config"
  done
done
