# Shared settings for the benchmark anchors. Sourced, not run.
B=${STINT_BENCH_DIR:-/var/lib/stint-bench}
BTRFS=$B/btrfs          # a btrfs loop-file filesystem
EXT=$B/ext              # a plain directory on the host's filesystem (ext4 here)
