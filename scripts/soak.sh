#!/usr/bin/env bash
# `make soak`: N stint jobs, bridged and not, each hit at a random moment by
# kill -9, SIGINT, SIGHUP, SIGTERM or nothing; then `stint gc` and a count of
# what is left: containers, state records, clone volumes, mounts, loop
# devices, veths, nft rules, network leases, LXC cgroups, processes. Exits 1
# and lists each leftover when anything is left. Not in CI: root, real LXC.
#
# It touches only what it makes: a throwaway --root under /tmp, its own
# network state ($STINT_NET_STATE), its own bridge, and containers whose
# names carry its run id; traffic stays on that bridge and loopback.
#
# Usage: scripts/soak.sh [N]      (N jobs, default 200)
# Environment:
#   STINT=bin/stint    the binary under test
#   SOAK_PARALLEL=8    stint processes at once
#   SOAK_BRIDGED=50    percent of jobs on the bridge
#   SOAK_DRIVER=auto   storage driver; btrfs makes a loop-file pool (SOAK_POOL=2GiB)
#   SOAK_GARBLE=1      garble the network state once, halfway
#   SOAK_DEADLINE=1800 seconds; no job starts after it
#   SOAK_SEED=...      $RANDOM seed, to replay a run's choices
#   SOAK_KEEP=0        1: keep the root even when nothing is left
set -uo pipefail

N=${1:-${SOAK_JOBS:-200}}
STINT=$(realpath "${STINT:-bin/stint}")
PAR=${SOAK_PARALLEL:-8}
BRIDGED=${SOAK_BRIDGED:-50}
DRIVER=${SOAK_DRIVER:-auto}
GARBLE=${SOAK_GARBLE:-1}
DEADLINE=$((SECONDS + ${SOAK_DEADLINE:-1800}))
SEED=${SOAK_SEED:-$$}
JOB_LIMIT=120 # seconds before a stint process counts as hung and is killed

if [ "$(id -u)" != 0 ]; then
  echo "soak: stint runs containers as root; try: sudo make soak" >&2
  exit 2
fi
for tool in lxc-ls nft ip losetup python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is missing (make deps)" >&2; exit 2; }
done
[ -x "$STINT" ] || { echo "soak: $STINT is not built (make build)" >&2; exit 2; }

RANDOM=$SEED
ID=$(printf '%04x' $((RANDOM * 2 + RANDOM % 2)))
BASE=$(mktemp -d "/tmp/stint-soak-$ID.XXXXXX")
chmod 0755 "$BASE" # the mapped container root must reach its clone below
ROOT=$BASE/root
SPECS=$BASE/specs
RUNS=$BASE/runs
export STINT_NET_STATE=$BASE/netstate
BRIDGE=stsoak$ID
mkdir -p "$SPECS" "$RUNS"
echo "soak $ID: $N jobs, $PAR at once, ${BRIDGED}% bridged on $BRIDGE, storage $DRIVER, seed $SEED"
echo "soak $ID: root $ROOT, network state $STINT_NET_STATE"

# spec writes job i's spec file: a few run lines around a random sleep, a
# tmpfs, a read-only bind mount for some, the bridge for some.
spec() {
  local i=$1 bridged=$2 nap=$3 job="sk$ID-$1"
  {
    echo 'version = 1'
    echo "name = \"soak$ID\""
    echo '[storage]'
    echo "driver = \"$DRIVER\""
    [ "$DRIVER" = btrfs ] && echo "size = \"${SOAK_POOL:-2GiB}\""
    echo '[image.busybox]'
    echo 'builder = "busybox"'
    echo "[job.$job]"
    echo 'image = "busybox"'
    echo 'timeout = "1m"'
    [ "$bridged" = 1 ] && echo "network = { mode = \"bridge\", bridge = \"$BRIDGE\" }"
    echo "run = [\"echo start $i\", \"sleep $nap\", \"echo done $i > /tmp/done\"]"
    echo "[[job.$job.mount]]"
    echo 'type = "tmpfs"'
    echo 'target = "/tmp"'
    echo 'size = "8MiB"'
    if ((i % 3 == 0)); then
      echo "[[job.$job.mount]]"
      echo "source = \".\""
      echo 'target = "/specs"'
      echo 'readonly = true'
    fi
  } >"$SPECS/$i.toml"
}

# run_one runs job i in its own stint process and sends it sig after delay
# seconds ("none": no signal); it records the exit code.
run_one() {
  local i=$1 sig=$2 delay=$3 dir=$RUNS/$1
  mkdir -p "$dir"
  echo "$sig $delay" >"$dir/plan"
  "$STINT" --root "$ROOT" run "$SPECS/$i.toml" --artifacts "$dir/artifacts" >"$dir/out" 2>&1 &
  local pid=$!
  if [ "$sig" != none ]; then
    (sleep "$delay" && kill -s "$sig" "$pid") >/dev/null 2>&1 &
  fi
  local end=$((SECONDS + JOB_LIMIT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= end)); then
      kill -9 "$pid" 2>/dev/null
      echo hung >"$dir/hung"
    fi
    sleep 0.2
  done
  wait "$pid" 2>/dev/null
  echo $? >"$dir/rc"
}

# remove_base unmounts what is left under the root (golden volumes, the
# btrfs pool) and removes the soak's directory.
remove_base() {
  awk -v r="$ROOT/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  if awk -v r="$ROOT/" 'index($5, r) == 1' /proc/self/mountinfo | grep -q .; then
    echo "soak $ID: mounts remain under $ROOT; not removing $BASE" >&2
    return 1
  fi
  rm -rf "$BASE"
}

# The image first, untouched by signals: a build killed halfway is another
# soak (issue 18 lists its leftovers). Retried: today any stint's start-up
# gc, of any root, removes the empty LXC cgroups of "stint-*" containers it
# has no record of, and may catch a starting container's monitor cgroup
# ("Failed to enter monitor cgroup"; runner/cgroups.go gcCgroups).
spec 0 0 0
for try in 1 2 3; do
  "$STINT" --root "$ROOT" run "$SPECS/0.toml" --artifacts "$RUNS/warmup" >"$BASE/warmup.out" 2>&1 && break
  echo "soak: the warm-up job failed (try $try):" >&2
  cat "$BASE/warmup.out" >&2
  if ((try == 3)); then
    "$STINT" --root "$ROOT" gc >/dev/null 2>&1
    remove_base
    exit 2
  fi
done

SIGS=(none KILL INT HUP TERM)
started=0
for ((i = 1; i <= N; i++)); do
  if ((SECONDS >= DEADLINE)); then
    echo "soak: deadline reached after $started jobs" >&2
    break
  fi
  while (($(jobs -rp | wc -l) >= PAR)); do sleep 0.05; done
  bridged=$((RANDOM % 100 < BRIDGED ? 1 : 0))
  spec "$i" "$bridged" "$((RANDOM % 3)).$((RANDOM % 10))"
  sig=${SIGS[RANDOM % ${#SIGS[@]}]}
  delay=$((RANDOM % 3)).$((RANDOM % 10))$((RANDOM % 10))
  echo "$bridged" >"$SPECS/$i.bridged"
  run_one "$i" "$sig" "$delay" 2>/dev/null & # bash's "Killed" notes: rc has it
  started=$((started + 1))
  if [ "$GARBLE" = 1 ] && ((i == N / 2)); then
    # A torn state file, as a full disk or a stray editor leaves it, while
    # other jobs attach and release.
    mkdir -p "$STINT_NET_STATE"
    printf '{"bridges": {"%s": {"name": "%s", "sub' "$BRIDGE" "$BRIDGE" >"$STINT_NET_STATE/state.json"
    echo "soak: garbled $STINT_NET_STATE/state.json after job $i"
  fi
done
wait

# What happened, per signal: exit codes as stint reported them.
echo
echo "soak $ID: $started jobs ran; exit codes by signal (code:count):"
for sig in "${SIGS[@]}"; do
  codes=$(for d in "$RUNS"/*/; do
    [ -f "$d/plan" ] && [ "$(cut -d' ' -f1 "$d/plan")" = "$sig" ] && cat "$d/rc"
  done | sort -n | uniq -c | awk '{printf "%s:%s ", $2, $1}')
  printf '  %-5s %s\n' "$sig" "$codes"
done
hung=$(find "$RUNS" -name hung | wc -l)
corrupt=$(grep -l "is corrupt" "$RUNS"/*/out 2>/dev/null | wc -l)
echo "  hung (killed after ${JOB_LIMIT}s): $hung; processes that met the garbled state: $corrupt"
for d in "$RUNS"/*/; do
  if [ -f "$d/rc" ] && [ "$(cat "$d/rc")" = 3 ]; then
    echo "  exit 3 (host failure) in $(basename "$d") ($(cat "$d/plan")):"
    grep -v '^\[' "$d/out" | tail -4 | sed 's/^/      /'
  fi
done

# What the last processes left for gc (a later `stint run` removes what
# earlier ones left, as gc does).
echo "  before gc: $(lxc-ls -P "$ROOT/containers" -1 2>/dev/null | wc -l) container(s), $(ls "$ROOT/state" 2>/dev/null | grep -c '\.json$') state record(s)"

echo
echo "soak $ID: stint gc"
"$STINT" --root "$ROOT" gc 2>&1 | tail -40 | sed 's/^/  /'
echo "  gc exit code: ${PIPESTATUS[0]}"

# --- the leftover count ---
left=0
report() { # report WHAT ITEMS...: count and print what is left
  local what=$1
  shift
  if (($# > 0)); then
    echo "LEFT $what: $#"
    printf '  %s\n' "$@"
    left=$((left + $#))
  else
    echo "ok   $what: 0"
  fi
}
lines() { grep -v '^$' || true; }

names=$( (ls "$ROOT/logs" 2>/dev/null | sed -n 's/\.log$//p'; ls "$ROOT/state" 2>/dev/null | sed -n 's/\.json$//p'
  lxc-ls -P "$ROOT/containers" -1 2>/dev/null) | grep "^stint-sk$ID-" | sort -u)
veths=$(for n in $names; do printf 'vst%s\n' "$(printf %s "$n" | sha256sum | cut -c1-12)"; done)

echo
echo "soak $ID: leftovers after gc"
mapfile -t a < <(lxc-ls -P "$ROOT/containers" -1 2>/dev/null | lines)
report "containers (lxc-ls -P $ROOT/containers)" "${a[@]}"
mapfile -t a < <(ls "$ROOT/state" 2>/dev/null | grep '\.json$' | lines)
report "state records ($ROOT/state)" "${a[@]}"
mapfile -t a < <(find "$ROOT/storage" -maxdepth 3 -path "*/volumes/*" -name "stint-sk$ID-*" 2>/dev/null | lines)
report "clone volumes under $ROOT/storage" "${a[@]}"
# Golden volumes and the btrfs pool stay mounted on purpose (reused).
mapfile -t a < <(awk -v r="$ROOT/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo |
  grep -v -e '/storage/volumes/golden-' -e "^$ROOT/storage/btrfs\$" | lines)
report "mounts under $ROOT" "${a[@]}"
mapfile -t a < <(losetup -nO NAME,BACK-FILE 2>/dev/null | grep -F "$BASE/" | grep -vF "$ROOT/storage/btrfs.img" | lines)
report "loop devices backed under $BASE" "${a[@]}"
mapfile -t a < <( (ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1
  for v in $veths; do ip -o link show "$v" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1; done) | sort -u | lines)
report "veths of soak containers" "${a[@]}"
mapfile -t a < <(nft list table ip stint 2>/dev/null | grep -E "comment \"stint ports stint-sk$ID-" | sed 's/^[[:space:]]*//' | lines)
report "nft port rules of soak containers (table ip stint)" "${a[@]}"
mapfile -t a < <(python3 - "$STINT_NET_STATE/state.json" <<'EOF'
import json, sys
try:
    st = json.load(open(sys.argv[1]))
except FileNotFoundError:
    sys.exit(0)
for name in st.get("leases") or {}:
    print("lease " + name)
for r in st.get("reserved") or []:
    print("reserved %s on %s (%s)" % (r.get("ipv4") or "?", r.get("bridge"), r.get("host_veth") or "/".join(r.get("names") or [])))
EOF
)
report "leases in $STINT_NET_STATE/state.json" "${a[@]}"
mapfile -t a < <(find /sys/fs/cgroup -maxdepth 5 -type d \( -name "lxc.payload.stint-sk$ID-*" -o -name "lxc.monitor.stint-sk$ID-*" \) 2>/dev/null | lines)
report "LXC cgroups of soak containers" "${a[@]}"
# A container's monitor is stint's binary as "stint-monitor" (its cmdline
# names no root): in the container's monitor cgroup, or a spare never used.
mapfile -t a < <(for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") cg=$(cat "$p/cgroup" 2>/dev/null)
  if [[ $cg == *"lxc.payload.stint-sk$ID-"* || $cg == *"lxc.monitor.stint-sk$ID-"* || $cmd == *"$ROOT"* ||
    ($cmd == "stint-monitor " && $(readlink "$p/exe" 2>/dev/null) == "$STINT") ]]; then
    echo "${p#/proc/} ${cmd:0:120}"
  fi
done | lines)
report "processes of the soak's root or containers" "${a[@]}"

# The bridge is shared infrastructure, kept for the next job like a golden
# volume; `stint net prune` removes it with its rules once nothing uses it.
echo
echo "soak $ID: stint net prune"
"$STINT" --root "$ROOT" net prune 2>&1 | sed 's/^/  /'
mapfile -t a < <( (ip -o link show "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}'
  nft list table ip stint 2>/dev/null | grep -E "comment \"stint bridge $BRIDGE\"" | sed 's/^[[:space:]]*//') | lines)
report "bridge $BRIDGE and its nft rules after net prune" "${a[@]}"

echo
if ((left > 0)); then
  echo "soak $ID: FAIL: $left leftover(s) after $started jobs; kept $BASE for inspection"
  echo "  clean up: STINT_NET_STATE=$STINT_NET_STATE $STINT --root $ROOT gc; umount the mounts under $ROOT; rm -rf $BASE"
  exit 1
fi
echo "soak $ID: PASS: 0 leftovers after $started jobs"
if [ "${SOAK_KEEP:-0}" = 1 ]; then
  echo "soak $ID: kept $BASE"
  exit 0
fi
remove_base
