#!/usr/bin/env bash
# Medians of the phase events of N trivial jobs (`stint --json run`), and the
# whole process's wall time: where a trivial job's time goes.
# Usage: bench/phases.sh N ROOT STINT
set -euo pipefail
cd "$(dirname "$0")/.."
n=$1 root=$2 stint=$3
for _ in $(seq "$n"); do
  s=$(date +%s%N)
  "$stint" --root "$root" --json run --artifacts "${STINT_BENCH_DIR:-/var/lib/stint-bench}/artifacts" bench/trivial.toml
  echo "{\"type\":\"wall\",\"micros\":$((($(date +%s%N) - s) / 1000))}"
done | python3 -c '
import json, sys, statistics, collections
d = collections.defaultdict(list)
for l in sys.stdin:
    e = json.loads(l)
    if e["type"] == "phase":
        d[e["phase"]].append(e["micros"] / 1000)
    elif e["type"] == "job_finished":
        d["job (job_started..job_finished)"].append(e["millis"])
    elif e["type"] == "wall":
        d["process wall time"].append(e["micros"] / 1000)
print("| phase | median ms | min ms |")
print("|---|---|---|")
for k, v in d.items():
    print("| %s | %.1f | %.1f |" % (k, statistics.median(v), min(v)))
'
