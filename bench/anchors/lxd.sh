#!/usr/bin/env bash
# LXD 5.0.2: launch --ephemeral + exec + stop --force (unprivileged, its default).
set -e
n=b$$-$RANDOM
lxc launch -q stint-bench-busybox "$n" --ephemeral >/dev/null
lxc exec "$n" -- /bin/true
lxc stop -q --force "$n"
