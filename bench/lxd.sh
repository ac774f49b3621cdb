#!/usr/bin/env bash
# Brings LXD up for the benchmark the way images/lxdtest does: start the
# daemon when it is not running (`lxd init --auto` fails here), initialise it
# once with a preseed (a dir pool, no network: there is no lxdbr0), and import
# stint's busybox image as stint-bench-busybox. Prints the daemon's pid when
# this script started it (run.sh stops it again), nothing otherwise.
# Usage: bench/lxd.sh STINT ROOT
set -euo pipefail
STINT=$1 ROOT=$2
started=
if ! lxd waitready --timeout 2 >/dev/null 2>&1; then
  lxd --group root --logfile /tmp/stint-bench-lxd.log >/dev/null 2>&1 &
  started=$!
  lxd waitready --timeout 60 >/dev/null
fi
if ! lxc storage show default >/dev/null 2>&1; then
  lxd init --preseed >/dev/null <<'YAML'
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
YAML
fi
if ! lxc image info stint-bench-busybox >/dev/null 2>&1; then
  d=$(mktemp -d)
  trap 'rm -rf "$d"' EXIT
  # The [image.busybox] of bench/trivial.toml has no alias: its fingerprint.
  fp=$("$STINT" --root "$ROOT" --json image list | sed -n 's/.*"fingerprint": "\([0-9a-f]*\)".*/\1/p' | head -n 1)
  "$STINT" --root "$ROOT" image export "$fp" "$d" >/dev/null 2>&1
  lxc image import "$d"/* --alias stint-bench-busybox >/dev/null
fi
echo "$started"
