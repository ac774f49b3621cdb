#!/usr/bin/env bash
# The remote row of `make bench` (issue 13): the per-job cost of
# `stint --remote NAME run` against the bare LXD CLI sequence for the same
# work (`lxc launch --ephemeral` + `lxc exec` + `lxc stop --force`), both on
# a private LXD started here (its own LXD_DIR under the bench directory, a
# dir pool, no network, no HTTPS listener, a dead loopback proxy for the
# downloads LXD attempts by itself) and removed afterwards. The host's own
# LXD, if any, is not touched. Root; needs lxd and lxc.
# Usage: bench/remote.sh STINT [REPS]   prints a markdown section
#        bench/remote.sh anchor          one lxc sequence (LXD_DIR set)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/anchors/common.sh
if [ "${1:-}" = anchor ]; then
  n=b$$-$RANDOM
  lxc launch -q stint-remote-busybox "$n" --ephemeral >/dev/null 2>&1  # (its "no network attached" notice)
  lxc exec "$n" -- /bin/true
  lxc stop -q --force "$n"
  exit 0
fi
STINT=$1 REPS=${2:-20}
if ! command -v lxd >/dev/null || ! command -v lxc >/dev/null; then
  echo "- remote: LXD not installed (apt-get install lxd), not measured"
  exit 0
fi
[ -x bin/harness ] || go build -o bin/harness ./bench/harness
export LXD_DIR=$B/lxd-remote LXD_CONF=$B/lxd-remote/lxcconf
RR=$B/stint-remote # stint's root for this row: the remote and the image store
pid=
stop_lxd() {
  if [ -S "$LXD_DIR/unix.socket" ]; then
    for n in $(lxc list -c n -f csv 2>/dev/null); do lxc delete -q --force "$n" || true; done
    lxd shutdown --timeout 60 >/dev/null 2>&1 || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    sleep 2
    kill -9 "$pid" 2>/dev/null || true
  fi
  # What the daemon mounted under its directory, deepest first.
  awk -v d="$LXD_DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf "$LXD_DIR"
}
trap stop_lxd EXIT
stop_lxd
mkdir -p "$LXD_DIR" "$RR" "$LXD_CONF"
# An lxc client without a config.yml prints a welcome ("To start your first
# container...") into make bench's output; an empty one is its defaults.
touch "$LXD_CONF/config.yml"
chmod 0711 "$LXD_DIR" # the containers' mapped root searches its way to their rootfs
HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY= \
  lxd --group root --logfile "$LXD_DIR/lxd.log" >"$LXD_DIR/daemon.out" 2>&1 &
pid=$!
lxd waitready --timeout 60
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
"$STINT" --root "$RR" remote remove bench >/dev/null 2>&1 || true
"$STINT" --root "$RR" remote add bench "unix://$LXD_DIR/unix.socket" >/dev/null
run="--root $RR --remote bench run --artifacts $B/artifacts bench/trivial.toml"
# The first run builds the busybox image locally and uploads it; the lxc
# sequence launches the same image by an alias.
"$STINT" $run >/dev/null
fp=$("$STINT" --root "$RR" --json image list | sed -n 's/.*"fingerprint": "\([0-9a-f]*\)".*/\1/p' | head -n 1)
lxc image alias create stint-remote-busybox "$fp" >/dev/null

LX="lxc launch --ephemeral+exec+stop (private LXD)"
echo "## a job on a remote (issue 13): private LXD $(lxd --version), dir pool, unix socket; $REPS interleaved repetitions after 3 warm-ups"
echo
bin/harness -reps "$REPS" -warmup 3 -ref "$LX" \
  "$LX=bash bench/remote.sh anchor" \
  "stint --remote run (unpriv)=$STINT $run"
echo "- both: create from the same image, start, run /bin/true, stop, delete; stint also makes the job's"
echo "  workdir and user, journals the job, reads /etc/passwd through the file API (issue 13's bar: <= 1.2x)"
echo
echo "where stint's remote job's time goes (phase events of --json, $REPS runs):"
echo
STINT_REMOTE=bench bash bench/phases.sh "$REPS" "$RR" "$STINT"
