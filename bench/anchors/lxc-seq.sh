#!/usr/bin/env bash
# The fastest correct LXC sequence: lxc-copy -s of a base container, then
# lxc-execute with lxc.ephemeral=1 so the copy is destroyed when it stops.
# $1: btrfs | overlay; $2: priv (default; base) | unpriv (ubase: lxc.idmap
# lines with stint's id map, its rootfs shifted into it; see setup.sh)
set -e
. "$(dirname "$0")/common.sh"
case ${1:-btrfs} in
  btrfs) P=$BTRFS/lxc; extra=() ;;
  overlay) P=$EXT/lxc; extra=(-B overlay) ;;
  *) echo "lxc-seq.sh: $1: not btrfs or overlay" >&2; exit 2 ;;
esac
case ${2:-priv} in
  priv) base=base ;;
  unpriv) base=ubase ;;
  *) echo "lxc-seq.sh: $2: not priv or unpriv" >&2; exit 2 ;;
esac
n=b$$-$RANDOM
lxc-copy -q -P "$P" -n "$base" -N "$n" -s "${extra[@]}"
lxc-execute -q -P "$P" -n "$n" -s lxc.ephemeral=1 -- /bin/true
# lxc.ephemeral destroys a started container; make sure nothing is left if it didn't.
lxc-destroy -q -P "$P" -n "$n" >/dev/null 2>&1 || true
