#!/usr/bin/env bash
# `make bench`: stint side by side with the kernel floor, the LXC sequence,
# LXD and podman (when installed), on the same machine in one run, with
# warm-up and interleaved repetitions. Not a test: CI never runs it.
# Root. REPS (default 30) sets the repetitions of the single-job table,
# PHASE_RUNS (default 20) the runs of each phase table, ARTIFACT_RUNS
# (default 50) the runs of the job with an artifact, ROUNDS (default 3) the
# interleaved rounds of the throughput table; LXD=0 leaves LXD out (on a
# host where others use it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
. bench/anchors/common.sh
REPS=${REPS:-30} PHASE_RUNS=${PHASE_RUNS:-20} ARTIFACT_RUNS=${ARTIFACT_RUNS:-50} ROUNDS=${ROUNDS:-3} LXD=${LXD:-1}
STINT=$PWD/bin/stint
[ "$(id -u)" = 0 ] || { echo "make bench: run as root" >&2; exit 2; }
[ -x "$STINT" ] || { echo "make bench: build stint first (make build)" >&2; exit 2; }

bash bench/setup.sh
go build -o bin/harness ./bench/harness
# The fast path's model (bench/agentseq): stint-agent as PID 1 under lxc-start -F.
go build -o bin/agentseq ./bench/agentseq
CGO_ENABLED=0 go build -o bin/stint-agent ./cmd/stint-agent
mkdir -p "$BTRFS/agentseq"

# stint's own roots: one on the btrfs loop filesystem (auto picks btrfs), one
# on the host's ext4 (auto picks overlay). The first run builds the busybox
# image and its golden volume; the runs timed below find both.
SB=$BTRFS/stint SO=$EXT/stint
mkdir -p "$SB" "$SO"
for r in "$SB" "$SO"; do
  "$STINT" --root "$r" run --artifacts "$B/artifacts" bench/trivial.toml >/dev/null
done
run="run --artifacts $B/artifacts bench/trivial.toml"

FLOOR="floor btrfs (priv)" LXCU="lxc-copy+execute btrfs (unpriv)" LXCP="lxc-copy+execute btrfs (priv)" LXDR="lxd launch+exec+stop (unpriv)"
refs=(-ref "$FLOOR" -ref "$LXCU" -ref "$LXCP")
contenders=(
  "$FLOOR=bash bench/anchors/floor.sh"
  "$LXCP=bash bench/anchors/lxc-seq.sh btrfs priv"
  "lxc-copy+execute ovl (priv)=bash bench/anchors/lxc-seq.sh overlay priv"
  "$LXCU=bash bench/anchors/lxc-seq.sh btrfs unpriv"
  "lxc-copy+execute ovl (unpriv)=bash bench/anchors/lxc-seq.sh overlay unpriv"
  "model: agent fast path btrfs (unpriv)=bin/agentseq -base $BTRFS/lxc/ubase/rootfs -agent $PWD/bin/stint-agent -dir $BTRFS/agentseq"
  "stint run btrfs (unpriv)=$STINT --root $SB $run"
  "stint run overlay (unpriv)=$STINT --root $SO $run"
  "stint run btrfs, attach path (unpriv)=STINT_AGENT=off $STINT --root $SB $run"
  "stint exec btrfs (unpriv)=$STINT --root $SB exec busybox -- /bin/true"
  "stint exec overlay (unpriv)=$STINT --root $SO exec busybox -- /bin/true"
)
notes=()
lxd_pid=
if [ "$LXD" = 0 ]; then
  notes+=("LXD: left out (LXD=0)")
elif command -v lxd >/dev/null && command -v lxc >/dev/null; then
  lxd_pid=$(bash bench/lxd.sh "$STINT" "$SB")
  contenders+=("$LXDR=bash bench/anchors/lxd.sh")
  refs+=(-ref "$LXDR")
else
  notes+=("LXD: not installed (apt-get install lxd), not measured")
fi
stop_lxd() { if [ -n "$lxd_pid" ]; then lxd shutdown --timeout 60 >/dev/null 2>&1 || kill "$lxd_pid"; fi; }
trap stop_lxd EXIT
if command -v podman >/dev/null; then
  podman image exists busybox 2>/dev/null || notes+=("podman: no local busybox image (the network is closed): its row fails")
  contenders+=("podman run --rm (runc, priv)=podman run --rm --runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 busybox true")
else
  notes+=("podman: not installed on this machine, not measured")
fi

echo "# $(date -u '+%F %H:%M UTC'), $(uname -r), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## single trivial job (/bin/true, fully torn down): $REPS interleaved repetitions after 3 warm-ups"
echo
bin/harness -reps "$REPS" -warmup 3 "${refs[@]}" "${contenders[@]}"
for n in "${notes[@]}"; do echo "- $n"; done
echo "- (priv): privileged, no user namespace; (unpriv): container root is an unprivileged host uid;"
echo "  the unprivileged LXC rows use stint's id map ($(grep -h '^lxc.idmap = u' "$BTRFS/lxc/ubase/config"))"
echo "- attach path: STINT_AGENT=off, jobs under init.lxc with each line through the attach helper (as before issue 16)"
echo "- model: bench/agentseq, stint's fast path without stint (snapshot, lean config, lxc-start -F, stint-agent as PID 1, one line, exit)"
echo "- issue 16's bar: stint run btrfs (unpriv) at ratio A <= 2.0x and ratio B <= 1.0x"
echo
echo "## where a trivial stint job's time goes: phase events of --json ($PHASE_RUNS runs each)"
echo
echo "btrfs:"; echo; bash bench/phases.sh "$PHASE_RUNS" "$SB" "$STINT"; echo
echo "overlay:"; echo; bash bench/phases.sh "$PHASE_RUNS" "$SO" "$STINT"; echo
echo "## a job with an artifact (bench/artifact.toml), btrfs: $ARTIFACT_RUNS runs"
echo
art=$(bash bench/phases.sh "$ARTIFACT_RUNS" "$SB" "$STINT" bench/artifact.toml)
echo "$art"
echo
echo "- artifacts phase, max over $ARTIFACT_RUNS jobs: $(echo "$art" | awk -F'|' '$2 ~ /^ artifacts / { gsub(/ /, "", $6); print $6 " ms" }') (issue 16's bar: no job over 100 ms)"
echo
echo "One start of each binary a job runs (the attach path: stint 3 times, as itself and as its start and attach helpers;"
echo "the fast path: stint once, its monitor (spawned ahead, before the Go runtime: lxc-start's part), stint-agent as PID 1):"
echo
bin/harness -reps 20 -warmup 3 -ref "/bin/true" "stint --help=$STINT --help >/dev/null" "lxc-start --version=lxc-start --version >/dev/null" \
  "stint-agent (exits at once)=bin/stint-agent 3</dev/null 2>/dev/null; true" "/bin/true=/bin/true"
echo
echo "## throughput: 40 jobs, 4 at once, $ROUNDS interleaved round(s)"
echo
J4="stint run -j 4 btrfs, 1 process"
bin/harness -throughput 40 -parallel 4 -rounds "$ROUNDS" -batch "$J4" -ref "$LXCU" \
  "floor btrfs (priv)=bash bench/anchors/floor.sh" \
  "lxc-copy+execute btrfs (priv)=bash bench/anchors/lxc-seq.sh btrfs priv" \
  "$LXCU=bash bench/anchors/lxc-seq.sh btrfs unpriv" \
  "stint run btrfs, 4 processes=$STINT --root $SB $run" \
  "$J4=$STINT --root $SB run -j 4 --artifacts $B/artifacts bench/forty.toml"
echo "- issue 16's bar: $J4 at ratio A >= 1.0x"
echo
echo "## stint's peak RSS (one trivial job, btrfs)"
echo
rss() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -n 1; }
echo "- stint run: $(rss "$STINT" --root "$SB" $run) KiB"
echo "- stint run -j 4, 40 jobs: $(rss "$STINT" --root "$SB" run -j 4 --artifacts "$B/artifacts" bench/forty.toml) KiB"
echo
echo "## stint validate of hostile specs (issue 18: exit 2, under 1 s and 100 MB each)"
echo
bash bench/validate.sh "$STINT" || echo "- a spec missed a bar (marked above)"
echo
echo "## clone cost, 1 MiB vs 1 GiB golden volume (storage's Go benchmark, clone + destroy; 3 runs of 50: compare the runs, the 1 GiB golden was just written and its writeback competes)"
echo
go test -run '^$' -bench 'Clone/(btrfs|overlay)/' -benchtime 50x -count 3 ./storage/ 2>&1 | grep -E '^Benchmark' || echo "(storage benchmarks failed)"
echo
# issue 13: stint --remote run against lxc launch+exec+stop on a private LXD (bench/remote.sh)
if [ "$LXD" != 0 ]; then bash bench/remote.sh "$STINT" "${REMOTE_REPS:-10}"; fi
