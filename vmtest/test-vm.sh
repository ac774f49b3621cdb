#!/bin/bash
# make test-vm: run the storage conformance suite for the zfs and lvm
# drivers inside a QEMU (TCG) guest with a stock Debian kernel, since the
# host kernel has neither ZFS nor device-mapper. One VM, two scratch disks:
# /dev/vda for LVM, /dev/vdb for ZFS.
#
# Fails unless both TestZFS and TestLVM ran and passed (the tests skip
# outside the guest, so a skip here would otherwise look green).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
[ "$(id -u)" = 0 ] || { echo "test-vm: must run as root" >&2; exit 1; }

# One-time host setup (cached under $VMTEST_CACHE, default /var/cache/vmtest;
# the ZFS module build takes ~5 minutes cold).
./vmtest/setup-host.sh --zfs

work="$(mktemp -d /tmp/stint-test-vm.XXXXXX)"
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/storage.test" ./storage

rc=0
./vmtest/run-in-vm.sh -u -m 2048 -t "${VMTEST_TIMEOUT:-1500}" -d 4G -d 4G \
    -e VMTEST_DISK=/dev/vda -e VMTEST_ZFS_DISK=/dev/vdb \
    -e STINT_VM=1 -e STINT_INTEGRATION=1 -o "$work/output" -- \
    "$work/storage.test" -test.v -test.count=1 -test.timeout=20m -test.run '^Test(ZFS|LVM)$' || rc=$?

for t in TestZFS TestLVM; do
    if ! grep -q -- "^--- PASS: $t " "$work/output" 2>/dev/null; then
        echo "test-vm: $t did not pass in the guest" >&2
        [ "$rc" = 0 ] && rc=1
    fi
done
[ "$rc" = 0 ] && echo "test-vm: zfs and lvm suites passed in the guest"
exit "$rc"
