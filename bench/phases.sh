#!/usr/bin/env bash
# Medians of the phase events of N trivial jobs (`stint --json run`), and the
# whole process's wall time: where a trivial job's time goes.
# Usage: bench/phases.sh N ROOT STINT
set -euo pipefail
cd "$(dirname "$0")/.."
n=$1 root=$2 stint=$3
for _ in $(seq "$n"); do
  s=$(date +%s%N)
  "$stint" --root "$root" --json run --artifacts "${STINT_BENCH_DIR:-/var/lib/stint-bench}/artifacts" bench/trivial.toml |
    sed -n -e 's/.*"type":"phase".*"phase":"\([a-z]*\)".*"micros":\([0-9]*\).*/\1 \2/p' \
      -e 's/.*"type":"job_finished".*"millis":\([0-9]*\).*/job(job_started..job_finished) \1000/p'
  echo "process-wall-time $((($(date +%s%N) - s) / 1000))"
done | awk '
  { v[$1] = v[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END {
    print "| phase | median ms | min ms |"; print "|---|---|---|"
    for (i = 1; i <= k; i++) {
      m = split(substr(v[order[i]], 2), a, " ")
      for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
      med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
      printf "| %s | %.1f | %.1f |\n", order[i], med / 1000, a[1] / 1000
    }
  }'
