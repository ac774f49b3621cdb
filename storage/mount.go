package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stintdev/stint/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// Filesystem magic numbers (statfs f_type) for the filesystems stint cares
// about; see statfs(2).
var fsNames = map[int64]string{
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	unix.EXT4_SUPER_MAGIC:      "ext4",
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	0x2fc12fc1:                 "zfs",
	0x01021997:                 "9p",
}

// fsType names the filesystem holding path, or the nearest existing
// ancestor of path when path does not exist yet.
func fsType(path string) (string, error) {
	p := filepath.Clean(path)
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if n, ok := fsNames[int64(st.Type)]; ok {
				return n, nil
			}
			return fmt.Sprintf("fs 0x%x", uint32(st.Type)), nil
		}
		if !errors.Is(err, unix.ENOENT) || p == "/" {
			return "", fmt.Errorf("statfs %s: %w", p, err)
		}
		p = filepath.Dir(p)
	}
}

// kernelHas reports whether /proc/filesystems lists fs.
func kernelHas(fs string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == fs {
			return true
		}
	}
	return false
}

// isMountPoint reports whether path is a mount point.
func isMountPoint(path string) (bool, error) {
	mps, err := mountinfo.Points()
	if err != nil {
		return false, err
	}
	path = filepath.Clean(path)
	for _, m := range mps {
		if m == path {
			return true, nil
		}
	}
	return false, nil
}

// unmountAll unmounts every mount at or below dir, deepest first, and
// each as often as it is stacked.
func unmountAll(dir string) error {
	dir = filepath.Clean(dir)
	for range 16 { // stacked mounts: a bounded number of passes
		under, err := mountinfo.Beneath(dir)
		if err != nil {
			return err
		}
		if len(under) == 0 {
			return nil
		}
		for _, m := range under {
			if err := unix.Unmount(m, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", m, err)
			}
		}
	}
	return fmt.Errorf("unmount %s: mounts keep reappearing", dir)
}

// bindReadOnly makes dir a read-only bind mount of itself, unless it
// already is a mount point.
func bindReadOnly(dir string) error {
	if ok, err := isMountPoint(dir); err != nil || ok {
		return err
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		_ = unix.Unmount(dir, 0)
		return fmt.Errorf("make %s read-only: %w", dir, err)
	}
	return nil
}
