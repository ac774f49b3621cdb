#!/usr/bin/env bash
# LXD 5.0.2: launch --ephemeral + exec + stop --force (unprivileged, its default).
set -e
n=b$$-$RANDOM
lxc launch -q stint-bench-busybox "$n" --ephemeral >/dev/null 2>&1  # (its "no network attached" notice)
lxc exec "$n" -- /bin/true
lxc stop -q --force "$n"
