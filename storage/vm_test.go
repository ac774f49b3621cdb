package storage_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// This kernel has neither ZFS nor device-mapper, so the zfs and lvm suites
// run only inside the vmtest QEMU guest (make test-vm), which sets
// STINT_VM=1 and names its scratch disks in VMTEST_ZFS_DISK and
// VMTEST_DISK. Elsewhere they skip, even under STINT_INTEGRATION=1: make
// test-vm is what fails when they do not run.
func vmGate(t testing.TB, diskVar string, tools ...string) string {
	t.Helper()
	if os.Getenv("STINT_VM") != "1" {
		t.Skip("runs in make test-vm (a QEMU guest with ZFS and device-mapper)")
	}
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, tools...)
	disk := os.Getenv(diskVar)
	if disk == "" {
		testenv.Unavailable(t, diskVar+" names no scratch disk")
	}
	return disk
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// zfsTestPool makes a ZFS pool on the guest's scratch disk for one test.
func zfsTestPool(t testing.TB) string {
	disk := vmGate(t, "VMTEST_ZFS_DISK", "zpool", "zfs", "modprobe")
	run(t, "modprobe", "zfs")
	const pool = "stinttest"
	run(t, "zpool", "create", "-f", "-m", "none", pool, disk)
	t.Cleanup(func() { run(t, "zpool", "destroy", "-f", pool) })
	return pool
}

var seq atomic.Int64

// zfsDataset opens a zfs driver on a fresh dataset of pool, destroyed in
// t.Cleanup after checking the driver left no dataset behind.
func zfsDataset(t testing.TB, pool string) storage.Driver {
	ds := fmt.Sprintf("%s/t%d", pool, seq.Add(1))
	run(t, "zfs", "create", "-o", "mountpoint=none", ds)
	t.Cleanup(func() {
		if left := strings.TrimSpace(run(t, "zfs", "list", "-H", "-o", "name", "-r", "-t", "all", ds)); left != ds {
			t.Errorf("datasets left behind:\n%s", left)
		}
		run(t, "zfs", "destroy", "-r", ds)
	})
	return openPool(t, storage.Config{Driver: "zfs", Path: t.TempDir(), Dataset: ds})
}

const lvmTestCfg = "activation { udev_sync=0 udev_rules=0 monitoring=0 } devices { obtain_device_list_from_udev=0 use_devicesfile=0 }"

func lvmCmd(t testing.TB, args ...string) string {
	t.Helper()
	cfg := "activation { monitoring=0 } devices { use_devicesfile=0 }"
	if _, err := os.Stat("/run/udev/control"); err != nil {
		cfg = lvmTestCfg
	}
	return run(t, "lvm", append([]string{args[0], "--config", cfg}, args[1:]...)...)
}

// lvmTestVG makes a volume group on the guest's scratch disk for one test.
func lvmTestVG(t testing.TB) string {
	disk := vmGate(t, "VMTEST_DISK", "lvm", "mkfs.ext4", "modprobe")
	run(t, "modprobe", "dm-thin-pool")
	const vg = "stinttest"
	lvmCmd(t, "pvcreate", "-y", "-ff", disk)
	lvmCmd(t, "vgcreate", vg, disk)
	t.Cleanup(func() {
		lvmCmd(t, "vgremove", "-y", "-ff", vg)
		lvmCmd(t, "pvremove", "-y", disk)
	})
	return vg
}

// lvmThinPool opens an lvm driver on a fresh thin pool of vg, removed in
// t.Cleanup after checking the driver left no LV behind.
func lvmThinPool(t testing.TB, vg string) storage.Driver {
	return lvmThinPoolSized(t, vg, 384<<20, 64<<20)
}

// lvmThinPoolSized is lvmThinPool with a pool of poolSize bytes and golden
// LVs of lvSize bytes.
func lvmThinPoolSized(t testing.TB, vg string, poolSize, lvSize int64) storage.Driver {
	tp := fmt.Sprintf("tp%d", seq.Add(1))
	lvmCmd(t, "lvcreate", "-q", "-L", fmt.Sprintf("%db", poolSize), "-T", vg+"/"+tp)
	t.Cleanup(func() {
		out := lvmCmd(t, "lvs", "--noheadings", "-o", "lv_name,pool_lv", vg)
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[1] == tp {
				t.Errorf("LV left behind in %s: %s", tp, f[0])
			}
		}
		lvmCmd(t, "lvremove", "-q", "-y", "-ff", vg+"/"+tp)
	})
	return openPool(t, storage.Config{Driver: "lvm", Path: t.TempDir(), VG: vg, Thinpool: tp, Size: lvSize})
}
