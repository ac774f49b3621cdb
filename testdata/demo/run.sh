#!/usr/bin/env bash
# `make demo`: build the busybox image, run the demo job, show its artifacts.
# Usage: testdata/demo/run.sh STINT_BINARY ROOT ARTIFACTS_DIR
set -euo pipefail
stint=${1:-bin/stint} root=${2:-/var/lib/stint} art=${3:-artifacts/demo}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "make demo: stint runs containers as root; try: sudo make demo" >&2
  exit 1
fi
rm -rf "$art"
echo "==> stint --root $root run $here/demo.toml --artifacts $art"
"$stint" --root "$root" run "$here/demo.toml" --artifacts "$art"
echo
echo "==> the job's artifacts are in $art:"
ls -lR "$art"
for f in $(find "$art" -type f | sort); do
  echo "--- $f"
  cat "$f"
done
echo
echo "==> and nothing is left behind (stint ps):"
"$stint" --root "$root" ps
