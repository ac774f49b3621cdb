#!/usr/bin/env bash
# The fastest correct LXC sequence (privileged): lxc-copy -s of a base container,
# then lxc-execute with lxc.ephemeral=1 so the copy is destroyed when it stops.
# $1: btrfs | overlay
set -e
. "$(dirname "$0")/common.sh"
case ${1:-btrfs} in
  btrfs) P=$BTRFS/lxc; extra=() ;;
  overlay) P=$EXT/lxc; extra=(-B overlay) ;;
esac
n=b$$-$RANDOM
lxc-copy -q -P "$P" -n base -N "$n" -s "${extra[@]}"
lxc-execute -q -P "$P" -n "$n" -s lxc.ephemeral=1 -- /bin/true
# lxc.ephemeral destroys a started container; make sure nothing is left if it didn't.
lxc-destroy -q -P "$P" -n "$n" >/dev/null 2>&1 || true
