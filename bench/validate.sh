#!/usr/bin/env bash
# `stint validate` of issue 18's hostile specs: each must be refused with
# exit 2 (file:line naming the limit) in under a second and 100 MB of peak
# RSS. Prints a markdown table; exits 1 if a spec is accepted, refused with
# another code, or over a bar. Needs no root. Called by bench/run.sh; alone:
# bench/validate.sh [path/to/stint].
set -euo pipefail
cd "$(dirname "$0")/.."
STINT=${1:-$PWD/bin/stint}
[ -x "$STINT" ] || { echo "bench/validate.sh: build stint first (make build)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/validate.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# The shapes, as the issue reproduced them; each file named after its row.
python3 - "$dir" <<'EOF'
import sys, os
d = sys.argv[1]
head = 'version = 1\n[image.busybox]\nbuilder = "busybox"\n'
specs = {
    # 40 KB and 400 KB of nested inline tables (BurntSushi/toml is
    # quadratic in depth: 13.7 s / 4.2 GB and a host OOM before the limits).
    "inline tables 10,000 deep": "version = 1\nx = " + "{a=" * 10_000 + "1" + "}" * 10_000 + "\n",
    "inline tables 100,000 deep": "version = 1\nx = " + "{a=" * 100_000 + "1" + "}" * 100_000 + "\n",
    "arrays 100,000 deep": "version = 1\nx = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "dotted key 100,000 deep": "version = 1\n" + ".".join(["a"] * 100_000) + " = 1\n",
    # 337 bytes: 10^9 variants.
    "matrix of 10^9 variants": head + '[job.x]\nimage = "busybox"\nrun = ["true"]\n[job.x.matrix]\n'
        + "".join(f'{k} = ["0","1","2","3","4","5","6","7","8","9"]\n' for k in "abcdefghi"),
    "10 MB run line": head + '[job.x]\nimage = "busybox"\nrun = ["' + "a" * 10_000_000 + '"]\n',
    "100 KB run line": head + '[job.x]\nimage = "busybox"\nrun = ["' + "a" * 100_000 + '"]\n',
    "200 KB env value": head + '[job.x]\nimage = "busybox"\nrun = ["true"]\nenv = { A = "' + "a" * 200_000 + '" }\n',
    "2 MB file": head + "# " + "x" * 2_000_000 + "\n",
    # Each variant copies the job: 20 million env entries to expand.
    "20,000 env keys x 1,000 variants": head + '[job.x]\nimage = "busybox"\nrun = ["true"]\n'
        + 'matrix = { a = [' + ",".join(f'"{i}"' for i in range(10)) + '], b = ['
        + ",".join(f'"{i}"' for i in range(10)) + '], c = [' + ",".join(f'"{i}"' for i in range(10)) + '] }\n[job.x.env]\n'
        + "".join(f"A{i} = \"1\"\n" for i in range(20_000)),
}
for i, (name, body) in enumerate(specs.items()):
    with open(os.path.join(d, f"{i:02d}.toml"), "w") as f:
        f.write(body)
    with open(os.path.join(d, f"{i:02d}.name"), "w") as f:
        f.write(name)
EOF

fail=0
echo "| hostile spec | size | exit | time | peak RSS | refused with |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for f in "$dir"/*.toml; do
  name=$(cat "${f%.toml}.name")
  size=$(stat -c %s "$f")
  set +e
  /usr/bin/time -o "$dir/time" -f "%e %M" "$STINT" validate "$f" >"$dir/out" 2>&1
  code=$?
  set -e
  read -r secs kib < <(tail -n 1 "$dir/time") # GNU time says "Command exited ..." first
  why=$(grep -m1 -o 'limit[^;]*\|over the limit[^;]*' "$dir/out" | head -c 60 || true)
  [ -n "$why" ] || why=$(head -c 60 "$dir/out" | tr '\n' ' ')
  verdict=
  if [ "$code" != 2 ]; then verdict=" (want exit 2)"; fail=1; fi
  if awk -v s="$secs" 'BEGIN { exit !(s >= 1.0) }'; then verdict="$verdict (over 1 s)"; fail=1; fi
  if [ "$kib" -ge 102400 ]; then verdict="$verdict (over 100 MB)"; fail=1; fi
  printf '| %s | %s | %s | %s s | %s MiB | %s%s |\n' "$name" "$(numfmt --to=iec "$size")" "$code" "$secs" \
    "$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')" "$why" "$verdict"
done
exit $fail
