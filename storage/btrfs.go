package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stintdev/stint/internal/sysexec"
	"golang.org/x/sys/unix"
)

// btrfsBackend keeps each volume's rootfs as a btrfs subvolume: a golden
// one is made read-only, a clone is a writable snapshot of it (O(1)).
type btrfsBackend struct{ noOrphans }

func (btrfsBackend) name() string { return "btrfs" }

// Subvolumes are made, sealed, snapshotted and deleted by ioctl
// (btrfs_ioctl.go); only usage asks the btrfs tool.

func (btrfsBackend) create(_ context.Context, dir string, _ *meta) error {
	return btrfsSubvolCreate(filepath.Join(dir, rootfsDir))
}

func (btrfsBackend) seal(_ context.Context, dir string, _ *meta) error {
	return btrfsSetReadonly(filepath.Join(dir, rootfsDir))
}

func (btrfsBackend) clone(_ context.Context, pdir string, _ *meta, dir string, _ *meta) error {
	return btrfsSnapshot(filepath.Join(pdir, rootfsDir), filepath.Join(dir, rootfsDir))
}

func (btrfsBackend) activate(context.Context, string, *meta, string) error { return nil }

func (btrfsBackend) remove(_ context.Context, dir string, _ *meta) error {
	rootfs := filepath.Join(dir, rootfsDir)
	sub, err := isSubvolume(rootfs)
	if err != nil || !sub {
		return err
	}
	return btrfsSubvolDelete(rootfs)
}

func (btrfsBackend) usage(ctx context.Context, dir string, m *meta) (Usage, error) {
	// A clone's exclusive bytes are what it holds beyond what it shares
	// with its golden volume; a golden volume counts in full.
	out, err := sysexec.Run(ctx, "btrfs", "filesystem", "du", "-s", "--raw", filepath.Join(dir, rootfsDir))
	if err != nil {
		return Usage{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 3 {
		return Usage{}, fmt.Errorf("btrfs filesystem du: unexpected output %q", out)
	}
	col := f[1]
	if m.Kind == KindGolden {
		col = f[0]
	}
	n, err := strconv.ParseInt(col, 10, 64)
	if err != nil {
		return Usage{}, fmt.Errorf("btrfs filesystem du: unexpected output %q", out)
	}
	return Usage{Bytes: n}, nil
}

// isSubvolume reports whether path is the root of a btrfs subvolume (inode
// 256 on a btrfs filesystem).
func isSubvolume(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return sfs.Type == unix.BTRFS_SUPER_MAGIC && st.Ino == 256, nil
}

// btrfsLoopPool makes (once) and mounts the loop-file pool img at mnt: the
// `size` option of [storage]. After a reboot it mounts the existing file.
func btrfsLoopPool(ctx context.Context, img, mnt string, size int64) error {
	if t, err := fsType(mnt); err == nil && t == "btrfs" {
		if ok, _ := isMountPoint(mnt); ok {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(img), 0o711); err != nil {
		return fmt.Errorf("btrfs pool %s: %w", img, err)
	}
	if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) {
		tmp := img + ".tmp"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("btrfs pool %s: %w", img, err)
		}
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			_, err = sysexec.Run(ctx, "mkfs.btrfs", "-q", "-f", tmp)
		}
		if err == nil {
			err = os.Rename(tmp, img)
		}
		if err != nil {
			os.Remove(tmp)
			return fmt.Errorf("btrfs pool %s: %w", img, err)
		}
	}
	if err := os.MkdirAll(mnt, 0o711); err != nil {
		return fmt.Errorf("btrfs pool %s: %w", mnt, err)
	}
	// mount -o loop sets up the loop device with autoclear: unmounting the
	// pool also detaches it.
	if _, err := sysexec.Run(ctx, "mount", "-t", "btrfs", "-o", "loop", img, mnt); err != nil {
		return fmt.Errorf("mount btrfs pool %s on %s: %w", img, mnt, err)
	}
	return nil
}

// btrfsDriver: subvolumes and snapshots, on a btrfs path or a loop-file pool.
var btrfsDriver = driver{
	name: "btrfs",
	probe: func(_ context.Context, cfg Config, path string) error {
		if err := needTools("btrfs"); err != nil {
			return err
		}
		if cfg.Size > 0 {
			if !kernelHas("btrfs") {
				return unsupported("the kernel has no btrfs")
			}
			return needTools("mkfs.btrfs", "mount")
		}
		t, err := fsType(path)
		if err != nil {
			return err
		}
		if t != "btrfs" {
			return unsupported("path %s is %s, not btrfs (set size to make a loop-file pool)", path, t)
		}
		return nil
	},
	open: func(ctx context.Context, cfg Config, path string) (backend, error) {
		if cfg.Size > 0 {
			if err := btrfsLoopPool(ctx, filepath.Join(cfg.Root, "storage", "btrfs.img"), path, cfg.Size); err != nil {
				return nil, err
			}
		}
		return btrfsBackend{}, nil
	},
}
