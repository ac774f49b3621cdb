#!/usr/bin/env bash
# Where a job's time goes: the phase events of N runs of `stint --json run
# SPEC` (default bench/trivial.toml), and the whole process's wall time, as
# median, min, p95 (nearest rank) and max, and how many runs took over 100 ms.
# Usage: bench/phases.sh N ROOT STINT [SPEC]
set -euo pipefail
cd "$(dirname "$0")/.."
n=$1 root=$2 stint=$3 spec=${4:-bench/trivial.toml}
for _ in $(seq "$n"); do
  s=$(date +%s%N)
  "$stint" --root "$root" --json run --artifacts "${STINT_BENCH_DIR:-/var/lib/stint-bench}/artifacts" "$spec" |
    sed -n -e 's/.*"type":"phase".*"phase":"\([a-z]*\)".*"micros":\([0-9]*\).*/\1 \2/p' \
      -e 's/.*"type":"job_finished".*"millis":\([0-9]*\).*/job(job_started..job_finished) \1000/p'
  echo "process-wall-time $((($(date +%s%N) - s) / 1000))"
done | awk '
  { v[$1] = v[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END {
    print "| phase | median ms | min ms | p95 ms | max ms | runs over 100 ms |"
    print "|---|---:|---:|---:|---:|---:|"
    for (i = 1; i <= k; i++) {
      m = split(substr(v[order[i]], 2), a, " ")
      for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
      med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
      r = int((95 * m + 99) / 100); if (r < 1) r = 1
      over = 0; for (x = 1; x <= m; x++) if (a[x] + 0 > 100000) over++
      printf "| %s | %.1f | %.1f | %.1f | %.1f | %d of %d |\n", order[i], med / 1000, a[1] / 1000, a[r] / 1000, a[m] / 1000, over, m
    }
  }'
