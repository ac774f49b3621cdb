package storage_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/storage"
)

// btrfsPool opens a btrfs pool on a loop file of size bytes in a
// t.TempDir(), made by the driver's own `size` option; t.Cleanup unmounts
// it and checks the loop device went with it.
func btrfsPool(t testing.TB, size int64) storage.Driver {
	t.Helper()
	root := t.TempDir()
	img := filepath.Join(root, "storage", "btrfs.img")
	t.Cleanup(func() {
		mnt := storage.PoolPath(storage.Config{Driver: "btrfs", Root: root, Size: size})
		if err := unix.Unmount(mnt, 0); err != nil && err != unix.EINVAL {
			t.Errorf("unmount btrfs pool %s: %v", mnt, err)
		}
		// An autoclear loop device is released by the kernel after the
		// last close, which can lag the unmount on a busy machine: wait a
		// little before calling it a leak.
		var s string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, _ := exec.Command("losetup", "-j", img).Output()
			if s = strings.TrimSpace(string(out)); s == "" || time.Now().After(deadline) {
				break
			}
		}
		if s != "" {
			t.Errorf("loop device still attached 10s after unmount: %s", s)
			if dev, _, ok := strings.Cut(s, ":"); ok {
				_ = exec.Command("losetup", "-d", dev).Run()
			}
		}
	})
	return openPool(t, storage.Config{Driver: "btrfs", Root: root, Size: size})
}
