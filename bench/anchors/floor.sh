#!/usr/bin/env bash
# The kernel floor: btrfs snapshot + unshare(pid,mnt,uts,ipc,net) + chroot + true + subvolume delete.
set -e
. "$(dirname "$0")/common.sh"
snap=$BTRFS/floor-$$-$RANDOM
btrfs -q subvolume snapshot "$BTRFS/base" "$snap" >/dev/null
unshare --pid --mount --uts --ipc --net --fork chroot "$snap" /bin/true
btrfs -q subvolume delete "$snap" >/dev/null
